"""Erasure: the preview equals what execution touches; plugins answer through the erase hook;
legal holds keep orders but erase the person; an erasure killed by SIGKILL resumes and leaves
no residue in the database file, a pg_dump or the logs; the certificate lists every location."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from _privacy_subjects import (
    EMAIL,
    EMAIL_2,
    GIVEN,
    ORDER_SUMMARY,
    PHONE,
    found_needles,
    make_person,
    run_request,
    stored_bytes,
)
from _privacy_workflow import configure_privacy, make_user
from kith.errors import Conflict
from kith.events import utcnow
from kith.hookspecs import hookimpl
from kith.logs import configure_logging
from kith.plugins.webhooks.delivery import WebhookDeliverer
from kith.plugins.webhooks.schemas import SubscriptionCreate
from kith.plugins.webhooks.service import WebhookService
from kith.plugins.webhooks.tables import WebhookDelivery
from kith.privacy.encryption.tables import DataKey, Tombstone
from kith.privacy.requests.certificates import CertificateService
from kith.privacy.requests.service import RequestCreate, RequestService
from kith.privacy.requests.tables import SubjectRequest
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.erasure import ErasureService, SubjectErasure
from kith.privacy.rights.tables import AuditEntry, ErasureJob, ErasureStep, LegalHold, Suppression
from kith.runtime import Kith
from kith.schemas import ContactPatch, InteractionPatch
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.subjects import ErasureOutcome, ExportSection, Recipient, RecipientNotice
from kith.tables import Contact, ContactPoint, Interaction

# The default request_lease_seconds: how long a killed run keeps its request.
LEASE_SECONDS = 300


class Mirror:
    """A plugin that copies contacts to another system: it holds rows of its own about a
    subject and is a recipient of their data."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, list[str]] = {}
        self.notices: list[tuple[str, uuid.UUID, uuid.UUID]] = []

    @hookimpl
    def kith_register_recipients(self, register: Any) -> None:
        register(Recipient(name="mirror crm", description="A second CRM that gets a copy"))

    @hookimpl
    def kith_subject_export(self, contact_id: uuid.UUID) -> ExportSection | None:
        rows = self.rows.get(contact_id)
        if not rows:
            return None
        return ExportSection(
            source="mirror",
            description="Copies in the mirror CRM",
            tables={"mirror_records": [{"record": r, "synced": True} for r in rows]},
        )

    def _outcome(self, contact_id: uuid.UUID) -> list[ErasureOutcome]:
        count = len(self.rows.get(contact_id, []))
        method = "deleted" if count else "not_present"
        return [
            ErasureOutcome(source="mirror", location="mirror_records", method=method, count=count)
        ]

    @hookimpl
    async def kith_subject_erase_preview(self, contact_id: uuid.UUID) -> list[ErasureOutcome]:
        return self._outcome(contact_id)

    @hookimpl
    async def kith_subject_erase(self, contact_id: uuid.UUID) -> list[ErasureOutcome]:
        outcome = self._outcome(contact_id)
        self.rows.pop(contact_id, None)
        return outcome

    @hookimpl
    async def kith_notify_recipient(
        self, recipient: Recipient, action: str, contact_id: uuid.UUID, notice_id: uuid.UUID
    ) -> RecipientNotice | None:
        if recipient.owner != "mirror":
            return None
        self.notices.append((action, contact_id, notice_id))
        return RecipientNotice(outcome="done", detail="the mirror erased its copy", count=1)

    @hookimpl
    def kith_notify_recipient_preview(self, recipient: Recipient) -> RecipientNotice | None:
        if recipient.owner != "mirror":
            return None
        return RecipientNotice(outcome="done", count=1)


MIRROR = Mirror()


@pytest.fixture
def kith_plugins(request: pytest.FixtureRequest) -> list[Any]:
    """The mirror plugin, unless a test asks for the installed plugins only with an empty
    ``kith_plugins`` marker."""
    MIRROR.rows.clear()
    MIRROR.notices.clear()
    marker = request.node.get_closest_marker("kith_plugins")
    return list(marker.args) if marker else [("mirror", MIRROR)]


def _key(entry: Any) -> tuple[Any, ...]:
    return (entry.source, entry.location, entry.method, entry.count, entry.ground)


async def _webhook_saw(kith: Kith, contact_id: uuid.UUID) -> None:
    """A subscription that received an event about the contact (so it is a recipient)."""
    await kith.bus.drain()
    await WebhookService(kith).create(
        SubscriptionCreate(url="https://hooks.example/in", events=["contact.*"])
    )
    await ContactService(kith).update(contact_id, ContactPatch(tags=["synced"]))
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    deliverer = WebhookDeliverer(kith, transport=transport)
    await kith.bus.drain()
    await deliverer.run_due()


async def test_preview_equals_what_execution_touches(kith: Kith) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=3, orders=2)
    MIRROR.rows[contact_id] = ["copy 1", "copy 2"]
    await _webhook_saw(kith, contact_id)
    await kith.bus.drain()

    previewed, done = await run_request(kith, "erasure", contact_id, officer)

    assert previewed.preview is not None and done.outcome is not None
    assert [_key(p) for p in previewed.preview] == [_key(e) for e in done.outcome]
    touched = {(e.source, e.location): e for e in done.outcome}
    # Core, plugins (through the erase hook), outbox, webhooks, indexes, audit, logs, keys.
    for location, method, count in [
        (("kith", "kith_contact_point"), "deleted", 3),
        (("kith", "blind indexes (kith_contact_point.lookup)"), "deleted", 3),
        (("kith", "kith_interaction"), "deleted", 3),
        (("kith", "kith_interaction (order)"), "legal_hold", 2),
        (("kith", "kith_contact"), "anonymised", 1),
        (("mirror", "mirror_records"), "deleted", 2),
        (("webhooks", "webhooks_delivery"), "deleted", 1),
        (("kith.privacy", "kith_privacy_suppression"), "keyed_hash_kept", 3),
        (("kith.privacy", "kith_privacy_data_key"), "crypto_shredded", 1),
        (("kith", "logs"), "redacted_at_source", 0),
    ]:
        assert (touched[location].method, touched[location].count) == (method, count), location
    assert touched[("kith", "kith_event")].count >= 7
    assert touched[("kith.privacy", "kith_privacy_audit (details)")].method == "crypto_shredded"
    assert MIRROR.rows == {}
    # Both recipients were told: the mirror by its plugin, the webhook receiver by a notice.
    recipients = {e.location: e for e in done.outcome if e.source == "recipients"}
    assert recipients["mirror crm"].outcome == "done"
    assert recipients["webhook receivers"].outcome == "done"
    # Each says how many of its endpoints were told, as its preview said it would.
    assert (recipients["mirror crm"].count, recipients["webhook receivers"].count) == (1, 1)
    assert [n[0] for n in MIRROR.notices] == ["erasure"]
    notices = await WebhookDelivery.select().where(WebhookDelivery.event_name == "subject.notice")
    assert len(notices) == 1 and notices[0]["contact_id"] is None

    # The certificate lists the same, with the ground of the legal hold.
    signed = await CertificateService(kith).for_request(done.id)
    entries = signed.certificate["entries"]
    assert len(entries) == len(done.outcome)
    hold = next(e for e in entries if e["method"] == "legal_hold" and e["source"] == "kith")
    assert "tax law" in hold["ground"] and hold["count"] == 2
    assert CertificateService(kith).verify(signed.to_json()).valid
    assert GIVEN.encode() not in signed.to_json()


async def test_the_certificate_counts_shredded_records_by_the_key_that_seals_them(
    kith: Kith,
) -> None:
    officer = await make_user(kith)
    person = await make_person(kith)
    other = await make_person(kith, name_suffix=" II")
    for contact in (person, other):
        await ContactService(kith).get(contact, officer)
    await AuditLog(kith).settle()
    # Entries sealed under the other person's key that name this person: shredding this
    # person's key leaves them readable, so the certificate must not count them.
    moved = await AuditEntry.select(AuditEntry.id).where(
        (AuditEntry.contact_id == other) & AuditEntry.details.is_not_null()
    )
    assert moved
    await AuditEntry.update({AuditEntry.contact_id: person}).where(
        AuditEntry.id.is_in([row["id"] for row in moved])
    )

    _, done = await run_request(kith, "erasure", person, officer)
    assert done.outcome is not None
    counted = {e.location: e.count for e in done.outcome}["kith_privacy_audit (details)"]
    named = await AuditEntry.count().where(
        (AuditEntry.contact_id == person) & AuditEntry.details.is_not_null()
    )
    assert counted == named - len(moved) > 0


@pytest.mark.kith_plugins()
async def test_the_certificate_counts_the_webhook_receivers_told(kith: Kith) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=0, orders=0)
    await _webhook_saw(kith, contact_id)
    await WebhookService(kith).create(
        SubscriptionCreate(url="https://hooks.example/quiet", events=["task.due"])
    )  # a subscription that never received anything about the person is not told

    previewed, done = await run_request(kith, "erasure", contact_id, officer)
    assert previewed.preview is not None and done.outcome is not None
    [planned] = [p for p in previewed.preview if p.location == "webhook receivers"]
    [told] = [e for e in done.outcome if e.location == "webhook receivers"]
    assert (planned.method, planned.count) == ("notified_of_erasure", 1)
    assert (told.outcome, told.count) == ("done", 1)
    signed = await CertificateService(kith).for_request(done.id)
    [entry] = [e for e in signed.certificate["entries"] if e["location"] == "webhook receivers"]
    assert (entry["outcome"], entry["count"]) == ("done", 1)


@pytest.mark.kith_plugins()
async def test_a_resumed_erasure_still_counts_the_receivers_told(kith: Kith) -> None:
    contact_id = await make_person(kith, notes=0, orders=0)
    await _webhook_saw(kith, contact_id)
    job_id = uuid.uuid4()

    async def stop(step: str) -> None:
        if step == "suppression":
            raise RuntimeError("the process stopped here")

    with pytest.raises(RuntimeError, match="stopped here"):
        await ErasureService(kith).run(contact_id, job_id=job_id, after_step=stop)
    done = await ErasureService(kith).run(contact_id, job_id=job_id)
    assert done.resumed_steps == 1  # the recipients were told before the stop, once
    [told] = [e for e in done.entries if e.location == "webhook receivers"]
    assert (told.outcome, told.count) == ("done", 1)


async def test_legal_hold_keeps_the_orders_but_erases_the_person(kith: Kith) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=2, orders=2)
    _, done = await run_request(kith, "erasure", contact_id, officer)
    assert done.state == "done"

    # The person: no name, no emails or phones, not findable, key destroyed.
    shell = await ContactService(kith).get(contact_id)
    assert (shell.name, shell.given_name, shell.family_name) == ("[erased]", None, None)
    assert shell.emails == [] and shell.phones == [] and shell.archived
    for kind, value in (("email", EMAIL.lower()), ("phone", "+442079460777")):
        assert await ContactService(kith).find_ids_by(kind, value) == []
    assert not await ContactPoint.exists().where(ContactPoint.contact == contact_id)
    assert not await DataKey.exists().where(DataKey.subject == contact_id)
    assert await Tombstone.exists().where(Tombstone.subject == contact_id)

    # The orders: kept, readable under the hold's own key, restricted.
    kept = (await InteractionService(kith).timeline(contact_id)).items
    assert sorted(i.summary for i in kept) == [f"{ORDER_SUMMARY} #0", f"{ORDER_SUMMARY} #1"]
    assert all(i.kind == "order" and i.amount == decimal.Decimal("129.90") for i in kept)
    hold = (await LegalHold.select().where(LegalHold.contact_id == contact_id))[0]
    assert hold["held_count"] == 2 and "tax law" in hold["ground"]
    assert await DataKey.exists().where(DataKey.subject == hold["id"])
    with pytest.raises(Conflict, match="legal hold"):
        await InteractionService(kith).update(kept[0].id, InteractionPatch(channel="x"))
    with pytest.raises(Conflict, match="legal hold"):
        await ContactService(kith).update(contact_id, ContactPatch(name="Someone"))

    # Without legal holds in the settings, everything goes, contact row included.
    configure_privacy(kith, legal_holds={})
    other = await make_person(kith, notes=1, orders=1, name_suffix=" II")
    _, done = await run_request(kith, "erasure", other, officer)
    methods = {e.location: e.method for e in done.outcome}
    assert methods["kith_contact"] == "deleted"
    assert "kith_interaction (order)" not in methods
    assert not await Contact.exists().where(Contact.id == other)
    assert not await Interaction.exists().where(Interaction.contact == other)


async def test_erasing_twice_and_nobody(kith: Kith) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=1, orders=0)
    service = ErasureService(kith)
    job = uuid.uuid4()
    first = await service.run(contact_id, job_id=job, actor=officer)
    again = await service.run(contact_id, job_id=job, actor=officer)
    assert again.resumed_steps == await ErasureStep.count().where(ErasureStep.job == job)
    assert again.entries == first.entries
    assert await Suppression.count() == 3
    # A preview of someone already erased touches nothing but says so.
    leftovers = await service.preview(contact_id)
    assert all(p.count == 0 for p in leftovers if p.method in ("deleted", "legal_hold"))


# -- killed half-way ------------------------------------------------------------------------

KILLED = textwrap.dedent(
    """
    import asyncio, sys, uuid
    from pathlib import Path
    from kith.bootstrap import open_kith
    from kith.logs import configure_logging
    from kith.settings import load_settings
    import os

    async def main():
        settings = load_settings(dict(os.environ))
        configure_logging(settings, stream=open(sys.argv[3], "w", buffering=1))
        kith = open_kith(settings)
        await kith.start()
        from kith.privacy.rights import erasure
        from kith.privacy.requests.service import RequestService

        original = erasure.ErasureService.run

        async def pause(step):
            if step == sys.argv[2]:
                Path(sys.argv[4]).write_text(step)
                await asyncio.sleep(3600)

        async def run(self, *args, **kwargs):
            kwargs["after_step"] = pause
            return await original(self, *args, **kwargs)

        erasure.ErasureService.run = run
        await RequestService(kith).run(uuid.UUID(sys.argv[1]))

    asyncio.run(main())
    """
)


# The killed process loads the installed plugins only, so the test's Kith does too.
@pytest.mark.kith_plugins()
# Killed inside a step's transaction: that step is rolled back, the ones before it are on
# record.
@pytest.mark.parametrize(
    ("kill_after", "last_recorded"),
    # Killed after the first source's step (the example plugin, which the suite installs) and
    # after core's, which answers last: steps run recipients, suppression, legal holds, the
    # keys of contacts merged into this one, then every source (the example plugin first,
    # the privacy plugins, the other installed plugins, core). None: the source that answers
    # just before core, whichever plugins are installed.
    [("plugin:example", "merged_keys"), ("plugin:kith", None)],
)
async def test_erasure_killed_midway_resumes_with_no_residue(
    kith: Kith, kith_engine: str, tmp_path: Path, kill_after: str, last_recorded: str | None
) -> None:
    saved = structlog.get_config()
    logs = io.StringIO()
    configure_logging(kith.settings, stream=logs)
    try:
        await _killed_and_resumed(kith, kith_engine, tmp_path, kill_after, last_recorded, logs)
    finally:
        structlog.configure(**saved)


async def _approved_erasure(kith: Kith, contact_id: uuid.UUID) -> tuple[Any, Any]:
    """An approved erasure request of ``contact_id``, and its preview."""
    from kith.privacy.requests.service import RequestCreate

    officer = await make_user(kith)
    service = RequestService(kith)
    request = await service.create(RequestCreate(kind="erasure", contact_id=contact_id), officer)
    await service.verify(request.id, "signed letter", officer)
    previewed = await service.preview(request.id, officer)
    await service.approve(request.id, officer)
    return request, previewed


def _environment(kith: Kith, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KITH_HOME": str(kith.settings.home),
        "KITH_DATABASE_URL": kith.settings.database_url,
        "KITH_LOG_FORMAT": "json",
        **extra,
    }


async def _kill_midway(
    request_id: uuid.UUID, kill_after: str, tmp_path: Path, env: dict[str, str]
) -> Path:
    """Run the request in a process of its own and SIGKILL it inside step ``kill_after``;
    returns that process's log."""
    marker, child_log = tmp_path / "paused", tmp_path / "child.log"
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    child = subprocess.Popen(
        [sys.executable, str(script), str(request_id), kill_after, str(child_log), str(marker)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(600):
            if marker.exists() or child.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert marker.exists(), child.communicate(timeout=5)[0].decode()[-3000:]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    return child_log


async def _killed_and_resumed(
    kith: Kith,
    engine: str,
    tmp_path: Path,
    kill_after: str,
    last: str | None,
    logs: io.StringIO,
) -> None:
    contact_id = await make_person(kith, notes=4, orders=1)
    if last is None:
        names = [step.name for step in SubjectErasure(kith, contact_id, uuid.uuid4()).steps()]
        last = names[names.index(kill_after) - 1]
    await kith.bus.drain()
    service = RequestService(kith)
    request, previewed = await _approved_erasure(kith, contact_id)
    child_log = await _kill_midway(request.id, kill_after, tmp_path, _environment(kith))

    # Half done: the request is running, some steps are recorded, the key still exists.
    assert (await service.get(request.id)).state == "running"
    steps = [
        row["step"]
        for row in await ErasureStep.select()
        .where(ErasureStep.job == request.id)
        .order_by(ErasureStep.position)
    ]
    assert steps and steps[-1] == last
    assert await DataKey.exists().where(DataKey.subject == contact_id)

    # The killed run's lease still holds the request: nobody carries it out meanwhile.
    with pytest.raises(Conflict, match="being carried out by another run"):
        await service.run(request.id)
    assert await service.resume_stopped() == []
    # Once the lease has run out, the worker's job resumes it, once.
    kith.bus.clock = lambda: utcnow() + dt.timedelta(seconds=LEASE_SECONDS + 1)
    assert await service.resume_stopped() == [request.id]
    assert await service.resume_stopped() == []

    done = await service.get(request.id)
    assert done.state == "done"
    assert previewed.preview is not None and done.outcome is not None
    assert [_key(p) for p in previewed.preview] == [_key(e) for e in done.outcome]
    again = [row["step"] for row in await ErasureStep.select().where(ErasureStep.job == request.id)]
    assert len(again) == len(set(again))  # no step ran twice

    # No residue: the database (file and WAL, or a dump), and both processes' logs.
    assert found_needles(stored_bytes(kith, engine)) == []
    for text in (logs.getvalue(), child_log.read_text()):
        assert found_needles(text.encode()) == []
    lines = [json.loads(line) for line in child_log.read_text().splitlines() if line.strip()]
    assert any(line.get("contact_id") == str(contact_id) for line in lines)
    assert EMAIL_2 and PHONE  # the needles include both addresses and the phone
    kept = (await InteractionService(kith).timeline(contact_id)).items
    assert [i.kind for i in kept] == ["order"]


# The processes load the installed plugins only, so the test's Kith does too.
@pytest.mark.kith_plugins()
async def test_kith_worker_resumes_an_erasure_whose_process_was_killed(
    kith: Kith, tmp_path: Path
) -> None:
    contact_id = await make_person(kith, notes=2, orders=0)
    await kith.bus.drain()
    request, _ = await _approved_erasure(kith, contact_id)
    # A short lease, so that the killed run's runs out soon and the worker looks often.
    env = _environment(kith, KITH_PRIVACY_REQUEST_LEASE_SECONDS="2")
    await _kill_midway(request.id, "plugin:kith", tmp_path, env)
    service = RequestService(kith)
    assert (await service.get(request.id)).state == "running"

    worker = subprocess.Popen(
        [str(Path(sys.executable).with_name("kith")), "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(1200):
            if (await service.get(request.id)).state == "done" or worker.poll() is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=60)[0].decode()
    done = await service.get(request.id)
    assert done.state == "done", output[-3000:]
    assert worker.returncode == 0, output[-3000:]
    await CertificateService(kith).for_request(request.id)  # issued, or NotFound
    steps = [row["step"] for row in await ErasureStep.select().where(ErasureStep.job == request.id)]
    assert len(steps) == len(set(steps))  # no step ran twice
    assert not await DataKey.exists().where(DataKey.subject == contact_id)


# -- an erasure's error ------------------------------------------------------------------------


async def _failed_erasure(kith: Kith, contact_id: uuid.UUID) -> uuid.UUID:
    job_id = uuid.uuid4()

    async def fail(step: str) -> None:
        if step == "suppression":
            raise RuntimeError(f"the mail system refused {EMAIL}")

    with pytest.raises(RuntimeError, match="refused"):
        await ErasureService(kith).run(contact_id, job_id=job_id, after_step=fail)
    return job_id


async def test_an_erasure_steps_error_rests_sealed_under_the_persons_key(kith: Kith) -> None:
    from kith.privacy.encryption.plaintext_migration import leftover
    from kith.privacy.encryption.protector import protector_of

    contact_id = await make_person(kith, notes=0, orders=0)
    job_id = await _failed_erasure(kith, contact_id)
    [stored] = await ErasureJob.select(ErasureJob.last_error).where(ErasureJob.id == job_id)
    assert stored["last_error"].startswith("$k1$")
    assert EMAIL not in repr(await ErasureJob.select())
    assert (await leftover(protector_of(kith))).get("kith_privacy_erasure_job.last_error", 0) == 0
    [job] = await ErasureService(kith).jobs(contact_id)
    assert job["last_error"] == f"suppression: RuntimeError: the mail system refused {EMAIL}"
    # Run again, the erasure finishes and the error goes with the person's key.
    done = await ErasureService(kith).run(contact_id, job_id=job_id)
    assert done.state == "done"
    [job] = await ErasureService(kith).jobs(contact_id)
    assert job["last_error"] is None


async def test_kith_migrate_seals_erasure_errors_stored_in_plaintext(kith: Kith) -> None:
    import importlib

    from kith.cli.setup import migrate_all
    from kith.privacy.encryption.shredding import shred

    migration = importlib.import_module(
        "kith.privacy.rights.migrations."
        "kith_privacy_subjects_2026_12_07t10_40_00_erasure_error_sealed"
    )
    waiting = await make_person(kith, notes=0, orders=0)
    gone = await make_person(kith, notes=0, orders=0, name_suffix=" II")
    waiting_job = await _failed_erasure(kith, waiting)
    gone_job = await _failed_erasure(kith, gone)
    await shred(kith, gone)
    # What an earlier version stored: the message as it was.
    old = f"suppression: RuntimeError: the mail system refused {EMAIL}"
    await ErasureJob.update({ErasureJob.last_error: old}, force=True).run()

    await migration.reseal()
    await migrate_all(kith)

    rows = {r["id"]: r["last_error"] for r in await ErasureJob.select()}
    assert rows[waiting_job].startswith("$k1$")
    assert rows[gone_job] is None  # the person is erased: their error is not kept
    assert EMAIL not in repr(rows)
    [job] = await ErasureService(kith).jobs(waiting)
    assert job["last_error"] == old


async def _erase_by_email(kith: Kith, officer: Any, before_run: Any = None) -> Any:
    service = RequestService(kith)
    request = await service.create(RequestCreate(kind="erasure", email=EMAIL), officer)
    await service.verify(request.id, "passport checked at the desk", officer)
    if before_run is not None:
        await before_run(request.id)
    await service.preview(request.id, officer)
    await service.approve(request.id, officer)
    return await service.run(request.id, officer)


async def test_no_keyed_hash_of_the_address_outlives_the_erasure(
    kith: Kith, kith_engine: str
) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=1, orders=0)
    index = kith.protector.lookup_key("email", EMAIL.lower())
    assert index.encode() in stored_bytes(kith, kith_engine)  # the contact's blind index

    done = await _erase_by_email(kith, officer)
    assert done.state == "done" and done.contact_id == contact_id
    # The request names the person by contact id; nothing in the database holds the keyed
    # hash that would confirm "the erased contact had this address".
    assert index.encode() not in stored_bytes(kith, kith_engine)
    signed = await CertificateService(kith).for_request(done.id)
    [entry] = [
        e
        for e in signed.certificate["entries"]
        if e["location"] == "kith_subject_request (subject_lookup)"
    ]
    assert entry["outcome"] == "not_applicable"


async def test_erasure_clears_a_hash_an_older_version_kept_beside_the_contact(
    kith: Kith, kith_engine: str
) -> None:
    officer = await make_user(kith)
    await make_person(kith, notes=0, orders=0)
    index = kith.protector.lookup_key("email", EMAIL.lower())

    async def as_older_versions_kept_it(request_id: uuid.UUID) -> None:
        await SubjectRequest.update({SubjectRequest.subject_lookup: index}).where(
            SubjectRequest.id == request_id
        )

    done = await _erase_by_email(kith, officer, as_older_versions_kept_it)
    row = await SubjectRequest.select().where(SubjectRequest.id == done.id).first()
    assert row is not None and row["subject_lookup"] is None
    assert index.encode() not in stored_bytes(kith, kith_engine)
    signed = await CertificateService(kith).for_request(done.id)
    [entry] = [
        e
        for e in signed.certificate["entries"]
        if e["location"] == "kith_subject_request (subject_lookup)"
    ]
    assert (entry["method"], entry["outcome"], entry["count"]) == ("deleted", "done", 1)
