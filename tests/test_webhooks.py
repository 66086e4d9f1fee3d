"""Outgoing webhooks on SQLite and PostgreSQL, delivered to real HTTP receivers on 127.0.0.1.

Events travel the real path: a service call publishes to the outbox, ``kith.bus.drain()`` hands
them to the webhooks plugin's subscriber, which signs and POSTs them. Signatures are checked with
the verification code from docs/plugins/webhooks.md itself. Time is the bus's clock, moved on
by hand, so backoff never makes a test sleep.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import io
import json
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import structlog
from _privacy_storage import pg_dump_binary
from _webhook_receiver import Receiver
from click.testing import CliRunner
from kith import hookimpl
from kith.bootstrap import open_kith
from kith.cli import main
from kith.events import Event, utcnow
from kith.logs import configure_logging
from kith.plugins.webhooks.delivery import WebhookDeliverer, backoff
from kith.plugins.webhooks.schemas import SubscriptionCreate, WebhookSettings
from kith.plugins.webhooks.service import WebhookService
from kith.plugins.webhooks.tables import WebhookDelivery, WebhookSubscription
from kith.privacy.encryption import plaintext_migration, plaintext_scan
from kith.privacy.encryption.protector import protector_of
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.consent import ConsentService
from kith.runtime import Kith
from kith.schemas import ContactCreate, ContactPatch, EmailIn, InteractionCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.settings import Settings, SettingsError
from kith.subjects import Access
from kith.testing import settings_for

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "plugins" / "webhooks.md"
START = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)

TIMEOUT_S = 2.0
BACKOFF_S = 60.0
MAX_ATTEMPTS = 4
SETTINGS_TOML = f"""
[webhooks]
timeout_seconds = {TIMEOUT_S}
backoff_base_seconds = {BACKOFF_S}
max_attempts = {MAX_ATTEMPTS}
poll_seconds = 0.1
"""


def dead_url() -> str:
    """A URL on a port nothing listens on: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone"


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path) -> Settings:
    """Short timeouts and a round backoff for these tests, through kith.toml like an operator."""
    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(SETTINGS_TOML, encoding="utf-8")
    return settings_for(home, kith_database_url)


@pytest.fixture
def clock(kith: Kith) -> FakeClock:
    fake = FakeClock()
    kith.bus.clock = fake
    return fake


def documented_verifier() -> dict[str, Any]:
    """The verification code block of docs/plugins/webhooks.md, executed."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    code = next(block for block in blocks if "def verify_kith_signature" in block)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    return namespace


async def subscribe(kith: Kith, url: str, *events: str, personal: bool = False) -> tuple[Any, str]:
    created = await WebhookService(kith).create(
        SubscriptionCreate(url=url, events=list(events or ["*"]), include_personal_data=personal)
    )
    return created.subscription, created.secret


async def deliveries_of(kith: Kith, subscription_id: uuid.UUID) -> list[Any]:
    page = await WebhookService(kith).deliveries(subscription_id=subscription_id, limit=200)
    return sorted(page.items, key=lambda delivery: delivery.id)


# -- signing -----------------------------------------------------------------------------------


async def test_a_delivery_verifies_with_the_documented_snippet_and_fails_when_altered(
    kith: Kith, kith_client, kith_auth, receiver: Receiver
):
    admin = await kith_auth("admin")
    created = await kith_client.post(
        "/api/webhooks",
        json={"url": receiver.url("/hook"), "events": ["contact.*"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    contact = await kith_client.post(
        "/api/contacts", json={"name": "Ada Lovelace"}, headers=await kith_auth("agent")
    )
    assert contact.status_code == 201

    await kith.bus.drain()

    [request] = receiver.at("/hook")
    body = request.json()
    assert request.headers["kith-event"] == "contact.created" == body["event"]
    assert request.headers["kith-event-id"] == body["id"]
    assert request.headers["kith-delivery-attempt"] == "1"
    assert request.headers["content-type"] == "application/json"
    assert body["contact_id"] == contact.json()["id"]

    docs = documented_verifier()
    verify, invalid = docs["verify_kith_signature"], docs["InvalidSignature"]
    header = request.headers["kith-signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    signed_at = verify(secret, request.body, header)
    assert abs(signed_at - time.time()) < 60

    altered = request.body.replace(b"contact.created", b"contact.archived")
    with pytest.raises(invalid, match="does not match"):
        verify(secret, altered, header)
    with pytest.raises(invalid, match="does not match"):
        verify(secret, request.body + b" ", header)
    with pytest.raises(invalid, match="does not match"):
        verify("whsec_another-secret-entirely", request.body, header)
    # Replaying the same request after the tolerance window is refused.
    with pytest.raises(invalid, match="tolerance"):
        verify(secret, request.body, header, now=signed_at + 301)
    # A timestamp moved forward (to extend the window) breaks the signature.
    forged = header.replace(f"t={signed_at}", f"t={signed_at + 100}")
    with pytest.raises(invalid, match="does not match"):
        verify(secret, request.body, forged, now=signed_at + 100)


async def test_secrets_rest_sealed_and_still_sign(kith: Kith, receiver: Receiver):
    own = "a-secret-of-our-own-choosing"
    created = await WebhookService(kith).create(
        SubscriptionCreate(url=receiver.url("/sealed"), events=["contact.created"], secret=own)
    )
    rows = await WebhookSubscription.select().run()
    assert own not in repr(rows)
    assert rows[0]["sealed_secret"].startswith("$k1$") and rows[0]["secret"] == ""
    await ContactService(kith).create(ContactCreate(name="Ada Lovelace"))
    await kith.bus.drain()
    [request] = receiver.at("/sealed")
    verify = documented_verifier()["verify_kith_signature"]
    verify(own, request.body, request.headers["kith-signature"])
    assert created.secret == own


async def test_a_rotated_secret_signs_beside_the_new_one_for_the_grace_period(
    kith: Kith, receiver: Receiver
):
    service = WebhookService(kith)
    subscription, old = await subscribe(kith, receiver.url("/rotating"), "contact.created")
    new = (await service.rotate_secret(subscription.id)).secret
    assert new != old
    assert old not in repr(await WebhookSubscription.select().run())
    await ContactService(kith).create(ContactCreate(name="Ada Lovelace"))
    await kith.bus.drain()
    docs = documented_verifier()
    verify, invalid = docs["verify_kith_signature"], docs["InvalidSignature"]
    [during] = receiver.at("/rotating")
    header = during.headers["kith-signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}", header)
    # A receiver still on the old secret and one already on the new both accept it.
    verify(old, during.body, header)
    verify(new, during.body, header)

    # Once the grace period is over, only the new secret signs.
    await WebhookSubscription.update(
        {WebhookSubscription.previous_secret_until: utcnow() - dt.timedelta(seconds=1)}
    ).where(WebhookSubscription.id == subscription.id)
    await ContactService(kith).create(ContactCreate(name="Grace Hopper"))
    await kith.bus.drain()
    after = receiver.at("/rotating")[-1]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", after.headers["kith-signature"])
    verify(new, after.body, after.headers["kith-signature"])
    with pytest.raises(invalid, match="does not match"):
        verify(old, after.body, after.headers["kith-signature"])


@pytest.mark.parametrize("grace", ["0", "2592001"])
def test_the_grace_period_of_a_rotated_secret_is_a_setting(tmp_path: Path, grace: str) -> None:
    settings = settings_for(tmp_path, webhooks_secret_grace_seconds=grace)
    if grace == "0":
        assert settings.parsed("webhooks", WebhookSettings).secret_grace_seconds == 0
    else:
        with pytest.raises(SettingsError, match="SECRET_GRACE_SECONDS"):
            settings.parsed("webhooks", WebhookSettings)


async def test_kith_migrate_seals_secrets_stored_readable_before(kith: Kith, receiver: Receiver):
    from kith.cli.setup import migrate_all

    subscription, _ = await subscribe(kith, receiver.url("/old"), "contact.created")
    old = "whsec_stored-readable-by-an-earlier-version"
    # How an earlier version kept it: as given, in the secret column.
    await WebhookSubscription.update(
        {WebhookSubscription.secret: old, WebhookSubscription.sealed_secret: None}
    ).where(WebhookSubscription.id == subscription.id)

    await migrate_all(kith)

    [row] = await WebhookSubscription.select().run()
    assert old not in repr(row) and row["sealed_secret"].startswith("$k1$")
    await ContactService(kith).create(ContactCreate(name="Ada Lovelace"))
    await kith.bus.drain()
    [request] = receiver.at("/old")
    documented_verifier()["verify_kith_signature"](
        old, request.body, request.headers["kith-signature"]
    )


# -- retries -----------------------------------------------------------------------------------


async def test_500s_are_retried_with_exponential_backoff_until_success(
    kith: Kith, clock: FakeClock, receiver: Receiver
):
    receiver.statuses["/flaky"] = [500, 503]
    subscription, secret = await subscribe(kith, receiver.url("/flaky"), "contact.created")
    await ContactService(kith).create(ContactCreate(name="Grace Hopper"))
    deliverer = WebhookDeliverer(kith)

    await kith.bus.drain()
    [delivery] = await deliveries_of(kith, subscription.id)
    assert (delivery.state, delivery.attempts, delivery.status_code) == ("pending", 1, 500)
    # The receiver's own words ("no") are kept sealed, apart from Kith's account of the attempt.
    assert (delivery.error, delivery.response_bytes) == ("HTTP 500", 2)
    detail = await WebhookService(kith).delivery_detail(delivery.id)
    assert detail.response_text == "no"
    assert delivery.next_attempt_at == START + dt.timedelta(seconds=BACKOFF_S)

    # Not due yet: nothing is sent.
    clock.advance(BACKOFF_S - 1)
    assert (await deliverer.run_due()).attempted == 0
    clock.advance(1)
    run = await deliverer.run_due()
    assert (run.attempted, run.retrying) == (1, 1)
    [delivery] = await deliveries_of(kith, subscription.id)
    assert (delivery.attempts, delivery.status_code) == (2, 503)
    # The wait doubles after each failed attempt.
    assert delivery.next_attempt_at == clock.now + dt.timedelta(seconds=2 * BACKOFF_S)

    clock.advance(2 * BACKOFF_S)
    run = await deliverer.run_due()
    assert (run.attempted, run.delivered) == (1, 1)
    [delivery] = await deliveries_of(kith, subscription.id)
    assert (delivery.state, delivery.attempts, delivery.status_code) == ("delivered", 3, 200)
    assert delivery.error is None and delivery.next_attempt_at is None
    assert (await WebhookService(kith).delivery_detail(delivery.id)).response_text is None
    assert delivery.delivered_at == clock.now
    assert [a.status_code for a in delivery.history] == [500, 503, 200]

    requests = receiver.at("/flaky")
    assert [r.headers["kith-delivery-attempt"] for r in requests] == ["1", "2", "3"]
    assert len({r.headers["kith-event-id"] for r in requests}) == 1
    verify = documented_verifier()["verify_kith_signature"]
    for request in requests:
        verify(secret, request.body, request.headers["kith-signature"])
    # A drain or a pass later sends nothing more.
    clock.advance(24 * 3600)
    await kith.bus.drain()
    assert (await deliverer.run_due()).attempted == 0
    assert len(receiver.at("/flaky")) == 3


async def test_the_background_bus_sends_retries_by_itself(
    kith: Kith, clock: FakeClock, receiver: Receiver
):
    receiver.statuses["/later"] = [500]
    subscription, _ = await subscribe(kith, receiver.url("/later"), "contact.created")

    async def requests_reach(count: int) -> None:
        for _ in range(200):
            if len(receiver.at("/later")) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{count} request(s) expected, got {len(receiver.at('/later'))}")

    # As in `kith serve` and `kith worker`: the bus dispatches, and runs the plugin's job.
    await kith.bus.start()
    try:
        await ContactService(kith).create(ContactCreate(name="Rosalind Franklin"))
        await requests_reach(1)
        # Move time on only once the failure is recorded (its retry is timed from then).
        for _ in range(200):
            if [d.attempts for d in await deliveries_of(kith, subscription.id)] == [1]:
                break
            await asyncio.sleep(0.05)
        clock.advance(BACKOFF_S)
        await requests_reach(2)
    finally:
        await kith.bus.stop()
    [delivery] = await deliveries_of(kith, subscription.id)
    assert (delivery.state, delivery.attempts) == ("delivered", 2)


def test_backoff_doubles_up_to_its_cap():
    settings = WebhookSettings(backoff_base_seconds=30, backoff_max_seconds=300)
    assert [backoff(n, settings).total_seconds() for n in range(1, 7)] == [
        30,
        60,
        120,
        240,
        300,
        300,
    ]


async def test_a_delivery_fails_after_its_last_attempt_and_can_be_queued_again(
    kith: Kith, clock: FakeClock, receiver: Receiver, kith_client, kith_auth
):
    receiver.statuses["/down"] = [500] * MAX_ATTEMPTS
    subscription, _ = await subscribe(kith, receiver.url("/down"), "contact.created")
    await ContactService(kith).create(ContactCreate(name="Alan Turing"))
    deliverer = WebhookDeliverer(kith)
    await kith.bus.drain()
    for attempt in range(2, MAX_ATTEMPTS + 1):
        clock.advance(backoff(attempt - 1, deliverer.settings).total_seconds())
        await deliverer.run_due()
    [delivery] = await deliveries_of(kith, subscription.id)
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == (
        "failed",
        MAX_ATTEMPTS,
        None,
    )
    clock.advance(7 * 24 * 3600)
    assert (await deliverer.run_due()).attempted == 0

    admin = await kith_auth("admin")
    failed = await kith_client.get(
        "/api/webhooks/deliveries", params={"state": "failed"}, headers=admin
    )
    assert [d["id"] for d in failed.json()["items"]] == [str(delivery.id)]
    queued = await kith_client.post(f"/api/webhooks/deliveries/{delivery.id}/retry", headers=admin)
    assert queued.status_code == 200, queued.text
    assert queued.json()["state"] == "pending"
    again = await kith_client.post(f"/api/webhooks/deliveries/{delivery.id}/retry", headers=admin)
    assert again.status_code == 422
    assert "only failed deliveries" in again.json()["detail"]

    assert (await deliverer.run_due()).delivered == 1
    [delivery] = await deliveries_of(kith, subscription.id)
    assert (delivery.state, delivery.attempts) == ("delivered", MAX_ATTEMPTS + 1)


# -- isolation ---------------------------------------------------------------------------------


async def test_a_dead_or_hanging_url_does_not_hold_up_another_subscription(
    kith: Kith, clock: FakeClock, receiver: Receiver
):
    receiver.delays["/hangs"] = TIMEOUT_S * 3
    dead, _ = await subscribe(kith, dead_url(), "contact.*")
    hanging, _ = await subscribe(kith, receiver.url("/hangs"), "contact.*")
    live, _ = await subscribe(kith, receiver.url("/live"), "contact.*")
    service = ContactService(kith)

    contact = await service.create(ContactCreate(name="Katherine Johnson"))
    started = time.monotonic()
    await kith.bus.drain()
    [first] = receiver.at("/live")
    # The live receiver got its request at once, not after the hanging one timed out.
    assert first.at - started < TIMEOUT_S
    assert [d.state for d in await deliveries_of(kith, live.id)] == ["delivered"]
    [dead_delivery] = await deliveries_of(kith, dead.id)
    assert (dead_delivery.state, dead_delivery.attempts) == ("pending", 1)
    assert dead_delivery.status_code is None and "Connect" in (dead_delivery.error or "")
    [hung_delivery] = await deliveries_of(kith, hanging.id)
    assert hung_delivery.error == f"no answer within {TIMEOUT_S:g} s"

    # While they back off, their new deliveries wait behind them; the live one goes at once.
    await service.update(contact.id, ContactPatch(name="Katherine G. Johnson"))
    started = time.monotonic()
    await kith.bus.drain()
    assert time.monotonic() - started < TIMEOUT_S
    assert len(receiver.at("/live")) == 2
    assert len(receiver.at("/hangs")) == 1
    for failing in (dead, hanging):
        assert [d.attempts for d in await deliveries_of(kith, failing.id)] == [1, 0]

    # When the retry is due, each failing receiver gets one request per pass, not one per
    # waiting delivery, and the live subscription has nothing left to send.
    clock.advance(BACKOFF_S)
    run = await WebhookDeliverer(kith).run_due()
    assert (run.attempted, run.retrying) == (2, 2)
    for failing in (dead, hanging):
        assert [d.attempts for d in await deliveries_of(kith, failing.id)] == [2, 0]
    assert len(receiver.at("/live")) == 2


async def test_two_workers_never_send_the_same_delivery_at_once(
    kith: Kith, clock: FakeClock, receiver: Receiver
):
    receiver.statuses["/once"] = [500]
    subscription, _ = await subscribe(kith, receiver.url("/once"), "contact.created")
    await ContactService(kith).create(ContactCreate(name="Hedy Lamarr"))
    await kith.bus.drain()
    clock.advance(BACKOFF_S)
    runs = await asyncio.gather(*(WebhookDeliverer(kith).run_due() for _ in range(4)))
    assert sum(run.delivered for run in runs) == 1
    assert len(receiver.at("/once")) == 2
    [delivery] = await deliveries_of(kith, subscription.id)
    assert (delivery.state, delivery.attempts) == ("delivered", 2)


async def test_an_event_handed_over_twice_is_delivered_once(kith: Kith, receiver: Receiver):
    subscription, _ = await subscribe(kith, receiver.url("/dup"), "contact.created")
    contact = await ContactService(kith).create(ContactCreate(name="Mary Somerville"))
    await kith.bus.drain()
    [delivery] = await deliveries_of(kith, subscription.id)
    again = Event(name="contact.created", id=delivery.event_id, contact_id=contact.id, payload={})
    # The bus delivers at least once: the same event again changes nothing.
    await WebhookDeliverer(kith).handle(again)
    assert len(await deliveries_of(kith, subscription.id)) == 1
    assert len(receiver.at("/dup")) == 1


# -- personal data -----------------------------------------------------------------------------


async def consent_to_webhooks(kith: Kith, contact_id: uuid.UUID) -> ConsentService:
    """The contact agrees, under the current notice, to their data going to connected systems."""
    ledger = ConsentService(kith)
    await ledger.publish_notice("webhooks", "We pass your details to the systems we connect.")
    await ledger.give(contact_id, "webhooks", channel="api")
    return ledger


async def test_payload_holds_ids_only_unless_the_subscription_allows_personal_data(
    kith: Kith, receiver: Receiver
):
    await subscribe(kith, receiver.url("/ids"), "contact.created", "interaction.logged")
    await subscribe(
        kith, receiver.url("/full"), "contact.created", "interaction.logged", personal=True
    )
    contact = await ContactService(kith).create(
        ContactCreate(
            name="Grace Hopper",
            emails=[EmailIn(address="grace@navy.example")],
            phones=[PhoneIn(number="+44 20 7946 0018")],
        )
    )
    # Sharing a contact's data with another system needs their consent to that purpose.
    ledger = await consent_to_webhooks(kith, contact.id)
    await InteractionService(kith).log(
        contact.id, InteractionCreate(kind="note", summary="Talked about COBOL")
    )
    await kith.bus.drain()

    secrets_ = (b"Grace", b"grace@navy.example", b"7946", b"COBOL")
    ids_only = receiver.at("/ids")
    assert sorted(r.json()["event"] for r in ids_only) == ["contact.created", "interaction.logged"]
    for request in ids_only:
        assert set(request.json()) == {"id", "event", "occurred_at", "actor", "contact_id", "data"}
        assert not any(secret in request.body for secret in secrets_)

    full = {r.json()["event"]: r.json() for r in receiver.at("/full")}
    assert full["contact.created"]["contact"]["name"] == "Grace Hopper"
    assert full["contact.created"]["contact"]["emails"][0]["address"] == "grace@navy.example"
    assert full["interaction.logged"]["interaction"]["summary"] == "Talked about COBOL"
    assert full["interaction.logged"]["contact"]["id"] == str(contact.id)

    # Nothing personal rests in the delivery log, whatever the subscription allows.
    rows = await WebhookDelivery.select().run()
    # Text columns only: the hex digits of an id can spell "7946" by chance.
    texts = [value for row in rows for value in row.values() if isinstance(value, str)]
    assert rows and not any(secret.decode() in text for secret in secrets_ for text in texts)

    # Without consent (never given, or withdrawn) ids go out, marked so.
    await ContactService(kith).create(ContactCreate(name="Ada Byron"))
    await ledger.withdraw(contact.id, "webhooks", channel="api")
    await InteractionService(kith).log(
        contact.id, InteractionCreate(kind="note", summary="Asked to stop sharing")
    )
    await kith.bus.drain()
    later = [r.json() for r in receiver.at("/full")][-2:]
    assert sorted(r["event"] for r in later) == ["contact.created", "interaction.logged"]
    for document in later:
        assert document["personal_data"] == "withheld"
        assert "contact" not in document and "interaction" not in document
    assert not any(b"Ada" in r.body or b"stop sharing" in r.body for r in receiver.at("/full"))


class AccessLog:
    """A plugin for one test that keeps the accesses reported to the audit log."""

    def __init__(self) -> None:
        self.accesses: list[Access] = []

    @hookimpl
    async def kith_record_access(self, kith: Kith, access: Access) -> None:
        self.accesses.append(access)


ACCESS_LOG = AccessLog()


@pytest.mark.kith_plugins(ACCESS_LOG)
async def test_sharing_personal_data_is_reported_to_the_audit_log_once(
    kith: Kith, clock: FakeClock, receiver: Receiver
):
    ACCESS_LOG.accesses.clear()
    receiver.statuses["/full"] = [500]
    full, _ = await subscribe(kith, receiver.url("/full"), "contact.created", personal=True)
    await subscribe(kith, receiver.url("/ids"), "contact.created")
    contact = await ContactService(kith).create(ContactCreate(name="Chien-Shiung Wu"))
    await consent_to_webhooks(kith, contact.id)
    await kith.bus.drain()
    clock.advance(BACKOFF_S)
    await WebhookDeliverer(kith).run_due()
    assert len(receiver.at("/full")) == 2

    disclosures = [a for a in ACCESS_LOG.accesses if a.action == "disclose"]
    [disclosure] = disclosures  # two attempts carried the data: one disclosure per delivery
    assert (disclosure.contact_id, disclosure.channel, disclosure.actor) == (
        contact.id,
        "webhook",
        "plugin:webhooks",
    )
    assert disclosure.details["subscription_id"] == str(full.id)
    assert disclosure.details["url"] == receiver.url("/full")


class Restrictions:
    """A plugin for one test that refuses processing of chosen contacts, as the privacy
    plugin does for a restricted one."""

    def __init__(self) -> None:
        self.restricted: set[uuid.UUID] = set()
        self.asked: list[str] = []

    @hookimpl
    async def kith_check_processing(
        self, kith: Kith, contact_id: uuid.UUID, activity: str
    ) -> str | None:
        self.asked.append(activity)
        return "restricted for this test" if contact_id in self.restricted else None


RESTRICTIONS = Restrictions()


@pytest.mark.kith_plugins(RESTRICTIONS)
async def test_events_about_a_restricted_contact_are_not_sent(kith: Kith, receiver: Receiver):
    RESTRICTIONS.restricted.clear()
    subscription, _ = await subscribe(kith, receiver.url("/r"), "contact.*")
    service = ContactService(kith)
    held = await service.create(ContactCreate(name="Held Back"))
    RESTRICTIONS.restricted.add(held.id)
    free = await service.create(ContactCreate(name="Free To Go"))
    await kith.bus.drain()

    assert "webhook.delivery" in RESTRICTIONS.asked
    assert [r.json()["contact_id"] for r in receiver.at("/r")] == [str(free.id)]
    states = {d.event_id: d for d in await deliveries_of(kith, subscription.id)}
    refused = next(d for d in states.values() if d.state == "failed")
    assert refused.error == "not sent: restricted for this test"
    assert refused.status_code is None and refused.next_attempt_at is None


async def test_receivers_of_a_person_s_events_are_sent_an_art_19_notice(
    kith: Kith, receiver: Receiver
):
    told, told_secret = await subscribe(kith, receiver.url("/told"), "contact.created")
    await subscribe(kith, receiver.url("/other"), "interaction.logged")
    contact = await ContactService(kith).create(ContactCreate(name="Ida Noddack"))
    await kith.bus.drain()
    assert kith.plugins is not None
    [recipient] = [r for r in kith.plugins.recipients() if r.owner == "webhooks"]

    async def notify(contact_id: uuid.UUID, notice_id: uuid.UUID) -> Any:
        results = await kith.plugins.call_async(
            "kith_notify_recipient",
            kith=kith,
            recipient=recipient,
            action="erasure",
            contact_id=contact_id,
            notice_id=notice_id,
        )
        [answer] = [r.value for r in results if r.plugin == "webhooks"]
        return answer

    notice_id = uuid.uuid4()
    assert (await notify(contact.id, notice_id)).outcome == "done"
    # Asked again with the same notice id (a resumed job): nothing is queued twice.
    assert (await notify(contact.id, notice_id)).outcome == "done"
    await WebhookDeliverer(kith).run_due()
    notices = [r for r in receiver.at("/told") if r.json()["event"] == "subject.notice"]
    [notice] = notices
    assert notice.json()["data"] == {"contact_id": str(contact.id), "action": "erasure"}
    assert notice.headers["kith-event-id"] == str(notice_id)
    verify = documented_verifier()["verify_kith_signature"]
    verify(told_secret, notice.body, notice.headers["kith-signature"])
    # Only subscriptions that received events about the person are told.
    assert receiver.at("/other") == []
    assert [d.event_name for d in await deliveries_of(kith, told.id)].count("subject.notice") == 1

    # No webhook ever carried anything about this one: nothing to tell.
    answer = await notify(uuid.uuid4(), uuid.uuid4())
    assert answer.outcome == "not_applicable"


async def test_privacy_hooks_export_and_erase_the_delivery_log(kith: Kith, receiver: Receiver):
    assert kith.plugins is not None
    assert "webhooks" in [p.name for p in kith.plugins.purposes()]
    assert "webhook receivers" in [r.name for r in kith.plugins.recipients()]
    await subscribe(kith, receiver.url("/p"), "contact.created", personal=True)
    service = ContactService(kith)
    kept = await service.create(ContactCreate(name="Emmy Noether"))
    other = await service.create(ContactCreate(name="Emmy N."))
    await consent_to_webhooks(kith, kept.id)
    await kith.bus.drain()
    # Both went out at once, although the bus handed the two events over together.
    assert len(receiver.at("/p")) == 2

    async def section(contact_id: uuid.UUID) -> Any:
        results = await kith.plugins.call_async(
            "kith_subject_export", kith=kith, contact_id=contact_id
        )
        return next((r.value for r in results if r.plugin == "webhooks"), None)

    exported = await section(kept.id)
    [row] = exported.tables["webhook_deliveries"]
    assert row["recipient_url"] == receiver.url("/p")
    assert row["personal_data_included"] is True and row["event"] == "contact.created"
    assert len((await section(other.id)).tables["webhook_deliveries"]) == 1

    results = await kith.plugins.call_async("kith_subject_erase", kith=kith, contact_id=kept.id)
    [outcome] = next(r.value for r in results if r.plugin == "webhooks")
    assert (outcome.method, outcome.count) == ("deleted", 1)
    assert await section(kept.id) is None
    # Erasing one person leaves the deliveries about another.
    assert len((await section(other.id)).tables["webhook_deliveries"]) == 1
    results = await kith.plugins.call_async("kith_subject_erase", kith=kith, contact_id=kept.id)
    [outcome] = next(r.value for r in results if r.plugin == "webhooks")
    assert outcome.method == "not_present"


# -- what receivers answer -----------------------------------------------------------------------

ECHOED_GIVEN = "Quintessa"
ECHOED_FAMILY = "Vandermolen-Ptak"
ECHOED_NAME = f"{ECHOED_GIVEN} {ECHOED_FAMILY}"


@pytest.fixture
def captured_logs() -> Iterator[Any]:
    """Kith's structured logs as JSON lines in a buffer, through the processors Kith uses."""
    saved = structlog.get_config()
    buffer = io.StringIO()

    def configure(settings: Settings) -> io.StringIO:
        configure_logging(settings, stream=buffer)
        return buffer

    yield configure
    structlog.configure(**saved)


def stored_bytes(kith: Kith) -> bytes:
    """Everything the database holds: the SQLite file with its logs, or a pg_dump."""
    if kith.database.kind == "sqlite":
        path = kith.settings.sqlite_path
        return b"".join(
            Path(f"{path}{suffix}").read_bytes()
            for suffix in ("", "-wal", "-shm", "-journal")
            if Path(f"{path}{suffix}").exists()
        )
    binary = pg_dump_binary()
    if binary is None:
        pytest.fail("pg_dump is needed to scan the PostgreSQL database and was not found")
    url = urlsplit(kith.settings.database_url)
    dump = subprocess.run(
        [
            binary,
            "--host",
            url.hostname or "127.0.0.1",
            "--port",
            str(url.port or 5432),
            "--username",
            url.username or "postgres",
            "--no-password",
            url.path.lstrip("/"),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert dump.returncode == 0, dump.stderr.decode()
    return dump.stdout


def echoed(data: bytes | str) -> list[str]:
    """The parts of the echoed name found in ``data``."""
    text = data.lower() if isinstance(data, bytes) else data.lower().encode()
    return [part for part in (ECHOED_GIVEN, ECHOED_FAMILY) if part.lower().encode() in text]


async def test_what_a_receiver_answers_rests_only_encrypted_and_is_never_logged(
    kith: Kith, clock: FakeClock, receiver: Receiver, kith_client, kith_auth, captured_logs
):
    logs = captured_logs(kith.settings)
    # Receivers quote what they were sent, in their error text and in where they redirect to.
    receiver.statuses["/rejects"] = [422] * MAX_ATTEMPTS
    receiver.bodies["/rejects"] = f'{{"error": "{ECHOED_NAME} is already on our list"}}'.encode()
    receiver.statuses["/moved"] = [302] * MAX_ATTEMPTS
    receiver.locations["/moved"] = "https://elsewhere.example/people/" + ECHOED_NAME.replace(
        " ", "-"
    )
    rejects, _ = await subscribe(kith, receiver.url("/rejects"), "contact.created")
    moved, _ = await subscribe(kith, receiver.url("/moved"), "contact.created")
    contact = await ContactService(kith).create(ContactCreate(name=ECHOED_NAME))
    deliverer = WebhookDeliverer(kith)
    await kith.bus.drain()
    for attempt in range(2, MAX_ATTEMPTS + 1):
        clock.advance(backoff(attempt - 1, deliverer.settings).total_seconds())
        await deliverer.run_due()
    [rejected] = await deliveries_of(kith, rejects.id)
    [redirected] = await deliveries_of(kith, moved.id)
    assert (rejected.state, rejected.attempts, rejected.status_code) == ("failed", 4, 422)
    assert rejected.error == "HTTP 422"
    assert rejected.response_bytes == len(receiver.bodies["/rejects"])
    assert [a.error for a in rejected.history] == ["HTTP 422"] * MAX_ATTEMPTS
    assert (redirected.state, redirected.status_code) == ("failed", 302)
    assert redirected.error == "HTTP 302: redirected, not followed; the answer names the location"

    # Nothing the receivers said is readable in the database, the logs or the delivery log.
    stored = stored_bytes(kith)
    assert str(contact.id).encode() in stored and str(rejected.id).encode() in stored
    assert echoed(stored) == []
    text = logs.getvalue()
    failures = [json.loads(line) for line in text.splitlines() if "for good" in line]
    assert sorted(line["status_code"] for line in failures) == [302, 422]
    assert echoed(text) == []
    admin = await kith_auth("admin")
    listed = await kith_client.get("/api/webhooks/deliveries", headers=admin)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 2
    assert echoed(listed.text) == []

    # An administrator reads the answer of one delivery, and that read is audited.
    read = await kith_client.get(f"/api/webhooks/deliveries/{rejected.id}", headers=admin)
    assert read.status_code == 200, read.text
    assert read.json()["response_text"] == receiver.bodies["/rejects"].decode()
    read = await kith_client.get(f"/api/webhooks/deliveries/{redirected.id}", headers=admin)
    assert read.json()["response_text"] == f"Location: {receiver.locations['/moved']}\nno"
    entries = await AuditLog(kith).entries(contact.id)
    reads = [e for e in entries if e.action == "read_webhook_response"]
    assert [(e.channel, e.details) for e in reads] == [
        ("api", {"delivery_id": str(redirected.id)}),
        ("api", {"delivery_id": str(rejected.id)}),
    ]
    assert all(e.actor.startswith("user:") for e in reads)
    assert echoed(logs.getvalue()) == []
    # And `kith privacy verify` finds nothing readable, here or anywhere else.
    assert await plaintext_migration.leftover(protector_of(kith)) == {}
    assert (await plaintext_scan.scan(kith)).exposures == []

    # An access request gets them too: they may be about the person.
    assert kith.plugins is not None
    exported = await kith.plugins.call_async(
        "kith_subject_export", kith=kith, contact_id=contact.id
    )
    [section] = [r.value for r in exported if r.plugin == "webhooks"]
    assert {row["receiver_response"] for row in section.tables["webhook_deliveries"]} == {
        receiver.bodies["/rejects"].decode(),
        f"Location: {receiver.locations['/moved']}\nno",
    }


async def test_answers_an_older_version_kept_readable_are_cut_back_to_kith_s_own_words(
    kith: Kith, receiver: Receiver
):
    subscription, _ = await subscribe(kith, receiver.url("/old"), "contact.created")
    await ContactService(kith).create(ContactCreate(name=ECHOED_NAME))
    await kith.bus.drain()
    said = [
        f"HTTP 422: {ECHOED_NAME} is already on our list",
        f"HTTP 302: redirected to https://x.example/{ECHOED_FAMILY}; point the subscription there",
        f"RemoteProtocolError: illegal header line: bytearray(b'{ECHOED_GIVEN}')",
        "ConnectError: [Errno 111] Connection refused",
        "no answer within 2 s",
        "not sent: processing of this contact is restricted",
    ]
    history = [
        {"attempt": n, "at": START.isoformat(), "status_code": None, "error": error}
        for n, error in enumerate(said, 1)
    ]
    await WebhookDelivery.update(
        {WebhookDelivery.error: said[0], WebhookDelivery.history: history}, force=True
    ).run()
    migration = importlib.import_module(
        "kith.plugins.webhooks.migrations.webhooks_2026_12_05t09_00_00_receiver_answers"
    )

    await migration.scrub()

    [delivery] = await deliveries_of(kith, subscription.id)
    assert delivery.error == "HTTP 422"
    assert [a.error for a in delivery.history] == [
        "HTTP 422",
        "HTTP 302",
        "RemoteProtocolError",
        "ConnectError: [Errno 111] Connection refused",
        "no answer within 2 s",
        "not sent: processing of this contact is restricted",
    ]
    assert echoed(repr(await WebhookDelivery.select().run())) == []
    await migration.scrub()  # a second run finds nothing more to cut
    assert (await deliveries_of(kith, subscription.id))[0].history == delivery.history


# -- managing subscriptions ---------------------------------------------------------------------


async def test_only_admins_manage_webhooks_over_the_api(kith_client, kith_auth):
    body = {"url": "https://hooks.example.com/in", "events": ["contact.*"]}
    assert (await kith_client.get("/api/webhooks")).status_code == 401
    for role in ("agent", "compliance"):
        headers = await kith_auth(role)
        assert (await kith_client.get("/api/webhooks", headers=headers)).status_code == 403
        refused = await kith_client.post("/api/webhooks", json=body, headers=headers)
        assert refused.status_code == 403
        assert (
            await kith_client.get("/api/webhooks/deliveries", headers=headers)
        ).status_code == 403
    admin = await kith_auth("admin")
    created = await kith_client.post("/api/webhooks", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["secret"].startswith("whsec_")
    assert created.headers["location"] == f"/api/webhooks/{created.json()['subscription']['id']}"


async def test_subscriptions_over_the_api(kith_client, kith_auth):
    admin = await kith_auth("admin")
    own_secret = "a-secret-of-our-own-choosing"
    created = await kith_client.post(
        "/api/webhooks",
        json={
            "url": "https://hooks.example.com/in",
            "events": ["contact.created", "interaction.*"],
            "secret": own_secret,
            "description": "warehouse",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json()["secret"] == own_secret
    subscription = created.json()["subscription"]
    assert subscription["include_personal_data"] is False and subscription["active"] is True
    sub_url = f"/api/webhooks/{subscription['id']}"

    listed = await kith_client.get("/api/webhooks", headers=admin)
    assert [s["id"] for s in listed.json()] == [subscription["id"]]
    assert own_secret not in listed.text and "secret" not in listed.json()[0]
    read = await kith_client.get(sub_url, headers=admin)
    assert read.json()["events"] == ["contact.created", "interaction.*"]
    assert own_secret not in read.text

    changed = await kith_client.patch(
        sub_url,
        json={"events": ["*"], "active": False, "include_personal_data": True},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["events"], changed.json()["active"]) == (["*"], False)
    assert changed.json()["include_personal_data"] is True

    rotated = await kith_client.post(f"{sub_url}/secret", json={}, headers=admin)
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != own_secret
    # The answer says until when the old secret signs too: a day unless set.
    until = dt.datetime.fromisoformat(rotated.json()["previous_secret_until"])
    assert abs(until - utcnow() - dt.timedelta(days=1)) < dt.timedelta(minutes=1)

    removed = await kith_client.delete(sub_url, headers=admin)
    assert removed.status_code == 200
    assert (await kith_client.get(sub_url, headers=admin)).status_code == 404
    assert (await kith_client.get("/api/webhooks", headers=admin)).json() == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"url": "ftp://files.example.com/in"}, "url", "must start with http:// or https://"),
        ({"url": "javascript:alert(1)"}, "url", "must start with http:// or https://"),
        ({"url": "hooks.example.com/in"}, "url", "must start with http:// or https://"),
        ({"url": "https:///in"}, "url", "names no host"),
        # Brackets hold an IPv6 address; these are not URLs at all.
        ({"url": "http://[::1"}, "url", "not a valid URL"),
        ({"url": "https://[hooks.example.com]/in"}, "url", "not a valid URL"),
        ({"url": "https://user:pw@hooks.example.com/"}, "url", "no user name or password"),
        ({"events": ["contact.craeted"]}, "events[0]", "no event type matches"),
        ({"events": ["contact.**"]}, "events[0]", "not an event name or pattern"),
    ],
)
async def test_bad_subscriptions_are_refused_with_a_clear_reason(
    kith_client, kith_auth, body: dict[str, Any], field: str, message: str
):
    admin = await kith_auth("admin")
    payload = {"url": "https://hooks.example.com/in", "events": ["contact.*"], **body}
    refused = await kith_client.post("/api/webhooks", json=payload, headers=admin)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert message in problem["detail"]
    assert problem.get("field") == field
    assert (await kith_client.get("/api/webhooks", headers=admin)).json() == []


async def test_a_short_secret_or_no_events_are_refused(kith_client, kith_auth):
    admin = await kith_auth("admin")
    for payload in (
        {"url": "https://h.example.com/", "events": ["*"], "secret": "short"},
        {"url": "https://h.example.com/", "events": []},
    ):
        refused = await kith_client.post("/api/webhooks", json=payload, headers=admin)
        assert refused.status_code in (400, 422), refused.text
    assert (await kith_client.get("/api/webhooks", headers=admin)).json() == []


def test_subscriptions_from_the_command_line(kith_database_url: str, tmp_path: Path):
    home = tmp_path / "kith-home"
    env = {
        "KITH_HOME": str(home),
        "KITH_DATABASE_URL": kith_database_url,
        "KITH_LOG_FORMAT": "json",
    }

    def kith(*args: str) -> Any:
        return CliRunner().invoke(main, ["webhooks", *args], env=env)

    added = kith(
        "add", "https://hooks.example.com/cli", "--event", "contact.*", "--event", "task.due"
    )
    assert added.exit_code == 0, added.output
    found = dict(re.findall(r"^(id|secret)\s+(\S+)$", added.stdout, re.MULTILINE))
    assert found["secret"].startswith("whsec_")
    assert "not shown again" in added.stderr
    subscription_id = found["id"]

    given = kith(
        "add",
        "https://hooks.example.com/two",
        "--event",
        "*",
        "--secret",
        "x" * 20,
        "--personal-data",
    )
    assert given.exit_code == 0 and f"secret  {'x' * 20}" in given.stdout

    listed = kith("list")
    assert listed.exit_code == 0
    assert (
        "https://hooks.example.com/cli" in listed.stdout and "contact.*,task.due" in listed.stdout
    )
    assert found["secret"] not in listed.stdout
    as_json = json.loads(kith("list", "--json").stdout)
    assert {s["include_personal_data"] for s in as_json} == {True, False}

    refused = kith("add", "ftp://files.example.com/", "--event", "contact.*")
    assert refused.exit_code == 1
    assert "kith: a webhook URL must start with http:// or https://" in refused.stderr
    assert kith("add", "https://h.example.com/", "--event", "nope.never").exit_code == 1

    empty = kith("deliveries")
    assert empty.exit_code == 0 and "No deliveries." in empty.stderr

    rotated = kith("rotate-secret", subscription_id)
    assert rotated.exit_code == 0, rotated.output
    new = re.search(r"^secret\s+(\S+)$", rotated.stdout, re.MULTILINE)
    assert new is not None and new.group(1).startswith("whsec_")
    assert new.group(1) != found["secret"]
    # The default grace period: a day from now, said as a time.
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%d")
    assert "with the old one too until " + tomorrow in rotated.stderr
    assert "not shown again" in rotated.stderr

    removed = kith("remove", subscription_id)
    assert removed.exit_code == 0 and "https://hooks.example.com/cli" in removed.stdout
    gone = kith("remove", subscription_id)
    assert gone.exit_code == 1 and "does not exist" in gone.stderr
    assert "hooks.example.com/cli" not in kith("list").stdout


def test_the_command_line_sends_due_deliveries(
    kith_database_url: str, tmp_path: Path, receiver: Receiver
):
    home = tmp_path / "kith-home"
    env = {
        "KITH_HOME": str(home),
        "KITH_DATABASE_URL": kith_database_url,
        "KITH_LOG_FORMAT": "json",
    }
    receiver.statuses["/cli"] = [500]

    async def setup() -> uuid.UUID:
        kith = open_kith(settings_for(home, kith_database_url))
        await kith.start()
        try:
            await subscribe(kith, receiver.url("/cli"), "contact.created")
            contact = await ContactService(kith).create(ContactCreate(name="Lise Meitner"))
            await kith.bus.drain()
            # Make the retry due now instead of after the backoff.
            long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
            await WebhookDelivery.update(
                {WebhookDelivery.next_attempt_at: long_ago}, force=True
            ).run()
        finally:
            await kith.close()
        return contact.id

    contact_id = asyncio.run(setup())
    failed = CliRunner().invoke(main, ["webhooks", "deliveries", "--state", "pending"], env=env)
    assert failed.exit_code == 0 and "HTTP 500" in failed.stdout, failed.output
    [pending] = json.loads(
        CliRunner().invoke(main, ["webhooks", "deliveries", "--json"], env=env).stdout
    )
    shown = CliRunner().invoke(main, ["webhooks", "delivery", pending["id"]], env=env)
    assert shown.exit_code == 0, shown.output
    assert re.search(r"^answer +no$", shown.stdout, re.MULTILINE), shown.stdout
    assert re.search(r"^1 .* 500 +HTTP 500 +2 ", shown.stdout, re.MULTILINE), shown.stdout

    async def audited() -> list[Any]:
        kith = open_kith(settings_for(home, kith_database_url))
        await kith.start()
        try:
            entries = await AuditLog(kith).entries(contact_id)
        finally:
            await kith.close()
        return [e for e in entries if e.action == "read_webhook_response"]

    [entry] = asyncio.run(audited())
    assert (entry.channel, entry.actor) == ("cli", "plugin:cli")
    assert entry.details["delivery_id"] == pending["id"] and "os_user" in entry.details
    sent = CliRunner().invoke(main, ["webhooks", "deliver"], env=env)
    assert sent.exit_code == 0, sent.output
    assert "1 attempted: 1 delivered" in sent.stdout
    assert len(receiver.at("/cli")) == 2
