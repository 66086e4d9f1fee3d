"""The consent ledger: purposes, notices, given/withdrawn/derived, can_process, append-only at
SQL level, anonymisation for erasure, one-click withdrawal links and the API's roles."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from _privacy_workflow import NEWSLETTER, configure_privacy, make_contact, make_user
from kith.actor import Role
from kith.errors import InvalidInput, NotFound
from kith.hookspecs import hookimpl
from kith.privacy.requests.settings import RequestSettings
from kith.privacy.rights import consent as consent_module
from kith.privacy.rights.consent import (
    ConsentRecord,
    ConsentService,
    LinkExpired,
    LinkInvalid,
    notice_hash,
)
from kith.privacy.rights.registry import purposes
from kith.privacy.rights.restriction import RestrictionService
from kith.privacy.rights.settings import RightsSettings
from kith.privacy.rights.tables import ConsentEvent, ConsentSource, ConsentSubject, Notice
from kith.runtime import Kith
from kith.schemas import InteractionCreate
from kith.services.interactions import InteractionService
from kith.settings import Settings, SettingsError
from kith.subjects import Purpose


class SurveyPlugin:
    """A third-party plugin that processes personal data for a purpose of its own."""

    @hookimpl
    def kith_register_purposes(self, register: Callable[[Purpose], None]) -> None:
        register(
            Purpose(
                name="satisfaction_survey",
                description="Asking customers how we did after a support call",
                lawful_basis="legitimate_interests",
            )
        )


@pytest.fixture
def kith_plugins() -> list[object]:
    return [SurveyPlugin()]


@pytest.fixture
def ledger(kith: Kith) -> ConsentService:
    configure_privacy(
        kith,
        purposes={
            "newsletter": NEWSLETTER,
            "billing": {"description": "Invoicing", "lawful_basis": "contract"},
        },
    )
    return ConsentService(kith)


# -- purposes ----------------------------------------------------------------------------------


async def test_purposes_come_from_kith_plugins_and_settings(kith: Kith, ledger) -> None:
    declared = purposes(kith)
    assert declared["customer_relationship"].declared_by == "kith"
    assert declared["subject_rights"].declared_by == "kith.privacy"
    assert declared["satisfaction_survey"].lawful_basis == "legitimate_interests"
    assert declared["newsletter"].declared_by == "kith.toml"
    assert declared["newsletter"].lawful_basis == "consent"
    assert declared["billing"].lawful_basis == "contract"


def _privacy(section: dict[str, Any], **env: str) -> Settings:
    """Settings whose kith.toml holds ``[privacy]`` = ``section``, with ``env`` set."""
    return Settings(
        home=Path("/nonexistent/kith"),
        database_url="",
        extra={"privacy": section},
        environment=dict(env),
    )


def test_settings_override_a_plugin_purpose_and_bad_ones_are_named() -> None:
    survey = {"satisfaction_survey": {"description": "x", "lawful_basis": "consent"}}
    parsed = _privacy({"purposes": survey}).parsed("privacy", RightsSettings)
    assert parsed.declared_purposes()[0].purpose.lawful_basis == "consent"
    bad = {"news": {"description": "x", "lawful_basis": "because"}}
    with pytest.raises(SettingsError, match=r"\[privacy\] purposes.news.lawful_basis: Invalid"):
        _privacy({"purposes": bad}).parsed("privacy", RightsSettings)
    unknown = {"news": {"description": "x", "basis": "x", "lawful_basis": "consent"}}
    with pytest.raises(SettingsError, match=r"\[privacy\] purposes.news: .*unknown field `basis`"):
        _privacy({"purposes": unknown}).parsed("privacy", RightsSettings)
    with pytest.raises(SettingsError, match=r"\[privacy\] four_eyes: Expected `bool`"):
        _privacy({"four_eyes": "maybe"}).parsed("privacy", RequestSettings)
    assert _privacy({}, KITH_PRIVACY_FOUR_EYES="1").parsed("privacy", RequestSettings).four_eyes
    with pytest.raises(SettingsError, match=r"^KITH_PRIVACY_FOUR_EYES: Expected `bool`"):
        _privacy({}, KITH_PRIVACY_FOUR_EYES="maybe").parsed("privacy", RequestSettings)


async def test_an_undeclared_purpose_is_refused_with_the_declared_ones(kith, ledger) -> None:
    contact = await make_contact(kith)
    with pytest.raises(
        InvalidInput, match=r"'telemarketing' is not a declared purpose.*newsletter"
    ):
        await ledger.give(contact, "telemarketing", channel="api")


# -- notices -----------------------------------------------------------------------------------


async def test_notices_are_versioned_with_their_hash(kith, ledger) -> None:
    first = await ledger.publish_notice("billing", "We invoice you for what you buy.")
    same = await ledger.publish_notice("billing", "We invoice you for what you buy.\n")
    second = await ledger.publish_notice("billing", "We invoice you monthly.")
    assert (first.version, same.version, second.version) == (1, 1, 2)
    assert first.sha256 == notice_hash("We invoice you for what you buy.")
    assert [n.version for n in await ledger.notices("billing")] == [1, 2]


async def test_a_settings_notice_is_published_when_first_needed(kith, ledger) -> None:
    notice = await ledger.current_notice("newsletter")
    assert notice is not None and notice.version == 1
    assert notice.sha256 == notice_hash(NEWSLETTER["notice"])
    configure_privacy(
        kith, purposes={"newsletter": {**NEWSLETTER, "notice": "Now weekly. Unsubscribe anytime."}}
    )
    assert (await ledger.current_notice("newsletter")).version == 2


# -- the ledger --------------------------------------------------------------------------------


async def test_consent_given_withdrawn_and_derived(kith, ledger) -> None:
    contact = await make_contact(kith)
    other = await make_contact(kith, "Charles Babbage")
    officer = await make_user(kith)
    note, _ = await InteractionService(kith).log(
        contact, InteractionCreate(kind="form_submission", summary="signed up at the fair")
    )
    assert not await ledger.can_process(contact, "newsletter")

    given = await ledger.give(
        contact,
        "newsletter",
        channel="form",
        source_interaction_id=note.id,
        occurred_at=dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC),
        actor=officer,
    )
    assert given.notice_version == 1
    assert given.notice_sha256 == notice_hash(NEWSLETTER["notice"])
    assert given.lawful_basis == "consent"
    assert given.source_interaction_id == note.id
    assert given.actor == f"user:{officer.id}"
    assert await ledger.can_process(contact, "newsletter")
    assert not await ledger.can_process(other, "newsletter")

    await ledger.withdraw(contact, "newsletter", channel="email")
    assert not await ledger.can_process(contact, "newsletter")
    state = {s.purpose: s for s in await ledger.current(contact)}
    assert state["newsletter"].status == "withdrawn"
    assert state["newsletter"].channel == "email"
    assert not state["newsletter"].may_process
    assert state["billing"].status == "none" and state["billing"].may_process

    await ledger.give(contact, "newsletter", channel="phone")
    history = await ledger.history(contact)
    assert [e.action for e in history] == ["given", "withdrawn", "given"]
    assert history[0].occurred_at == dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    assert await ledger.can_process(contact, "newsletter")


async def test_lawful_bases_decide_what_a_withdrawal_means(kith, ledger) -> None:
    contact = await make_contact(kith)
    assert await ledger.can_process(contact, "billing")  # contract: no consent needed
    assert await ledger.can_process(contact, "satisfaction_survey")  # legitimate interests
    await ledger.withdraw(contact, "satisfaction_survey", channel="phone")  # an objection
    assert not await ledger.can_process(contact, "satisfaction_survey")
    await ledger.withdraw(contact, "billing", channel="phone")
    assert await ledger.can_process(contact, "billing")  # a contract still needs the data
    assert not await ledger.can_process(contact, "no_such_purpose")


async def test_consent_names_the_notice_shown(kith, ledger) -> None:
    contact = await make_contact(kith)
    await ledger.current_notice("newsletter")
    configure_privacy(kith, purposes={"newsletter": {**NEWSLETTER, "notice": "Version two."}})
    await ledger.current_notice("newsletter")
    event = await ledger.give(contact, "newsletter", channel="form", notice_version=1)
    assert event.notice_version == 1
    assert event.notice_sha256 == notice_hash(NEWSLETTER["notice"])
    with pytest.raises(InvalidInput, match="no notice version 7"):
        await ledger.give(contact, "newsletter", channel="form", notice_version=7)


async def test_consent_without_a_notice_is_refused(kith, ledger) -> None:
    configure_privacy(
        kith, purposes={"offers": {"description": "Offers", "lawful_basis": "consent"}}
    )
    contact = await make_contact(kith)
    with pytest.raises(InvalidInput, match="must refer to the notice"):
        await ledger.give(contact, "offers", channel="form")


async def test_bad_input_is_refused(kith, ledger) -> None:
    contact = await make_contact(kith)
    with pytest.raises(NotFound):
        await ledger.give(uuid.uuid4(), "newsletter", channel="form")
    with pytest.raises(InvalidInput, match="channel"):
        await ledger.give(contact, "newsletter", channel="by carrier pigeon!")
    with pytest.raises(InvalidInput, match="future"):
        await ledger.give(
            contact,
            "newsletter",
            channel="form",
            occurred_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
        )
    other = await make_contact(kith, "Someone Else")
    elsewhere, _ = await InteractionService(kith).log(
        other, InteractionCreate(kind="note", summary="x")
    )
    with pytest.raises(InvalidInput, match="has no interaction"):
        await ledger.give(contact, "newsletter", channel="form", source_interaction_id=elsewhere.id)
    assert await ledger.history(contact) == []


async def test_refusals_are_logged_by_contact_id_only(kith, ledger) -> None:
    contact = await make_contact(kith, "Grace Hopper", email="grace@navy.example")
    with structlog.testing.capture_logs() as logs:
        assert not await ledger.can_process(contact, "newsletter")
    refused = [entry for entry in logs if entry["event"] == "processing_refused"]
    assert refused == [
        {
            "event": "processing_refused",
            "log_level": "info",
            "contact_id": str(contact),
            "purpose": "newsletter",
            "reason": "no consent given",
        }
    ]
    assert "grace" not in repr(logs).lower()


async def test_a_restriction_refuses_on_top_of_consent(kith, ledger) -> None:
    contact = await make_contact(kith)
    # Billing is under contract: consent has no say, a restriction (Art. 18) does.
    assert await ledger.can_process(contact, "billing")
    await RestrictionService(kith).restrict(contact, "accuracy_contested")
    assert not await ledger.can_process(contact, "billing")
    await RestrictionService(kith).lift(contact, "told by phone on Monday")
    assert await ledger.can_process(contact, "billing")


# -- append-only -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE kith_consent_event SET action = 'given'",
        "UPDATE kith_consent_event SET subject = '00000000-0000-0000-0000-000000000000'",
        "DELETE FROM kith_consent_event",
        "UPDATE kith_privacy_notice SET text = 'something else'",
        "DELETE FROM kith_privacy_notice",
    ],
)
async def test_the_ledger_cannot_be_changed_in_sql(kith, ledger, statement) -> None:
    contact = await make_contact(kith)
    await ledger.give(contact, "newsletter", channel="form")
    await ledger.withdraw(contact, "newsletter", channel="link")
    with pytest.raises(Exception, match="append-only"):
        await ConsentEvent.raw(statement).run()
    assert [e.action for e in await ledger.history(contact)] == ["given", "withdrawn"]
    assert await Notice.count() == 1


async def test_the_ledger_cannot_be_truncated_on_postgres(kith, ledger, kith_engine) -> None:
    if kith_engine != "postgres":
        pytest.skip("SQLite has no TRUNCATE")
    contact = await make_contact(kith)
    await ledger.give(contact, "newsletter", channel="form")
    with pytest.raises(Exception, match="append-only"):
        await ConsentEvent.raw("TRUNCATE kith_consent_event CASCADE").run()
    assert await ConsentEvent.count() == 1


# -- erasure -----------------------------------------------------------------------------------


async def test_anonymising_keeps_the_evidence_but_names_nobody(kith, ledger) -> None:
    contact = await make_contact(kith)
    bystander = await make_contact(kith, "Bystander")
    form, _ = await InteractionService(kith).log(
        contact, InteractionCreate(kind="form_submission", summary="newsletter form")
    )
    await ledger.give(contact, "newsletter", channel="form", source_interaction_id=form.id)
    await ledger.withdraw(contact, "newsletter", channel="link")
    await ledger.give(bystander, "newsletter", channel="form")

    outcomes = await ConsentService(kith).anonymise_subject(contact)
    by_location = {o.location: o for o in outcomes}
    assert by_location["kith_consent_event"].method == "anonymised"
    assert by_location["kith_consent_event"].count == 2
    assert by_location["kith_consent_source"].count == 1

    assert await ledger.history(contact) == []
    assert not await ledger.can_process(contact, "newsletter")
    assert await ConsentEvent.count() == 3  # the evidence stays
    assert await ConsentSource.count() == 0
    assert await ConsentSubject.count().where(ConsentSubject.contact == contact) == 0
    rows = await ConsentEvent.select(ConsentEvent.subject)
    mapped = {r["pseudonym"] for r in await ConsentSubject.select(ConsentSubject.pseudonym)}
    orphans = [r["subject"] for r in rows if r["subject"] not in mapped]
    assert len(orphans) == 2 and contact not in orphans
    assert [e.action for e in await ledger.history(bystander)] == ["given"]

    again = await ConsentService(kith).anonymise_subject(contact)
    assert [o.method for o in again] == ["not_present"]


async def test_deleting_the_contact_cuts_the_link_too(kith, ledger) -> None:
    from kith.tables import Contact

    contact = await make_contact(kith)
    await ledger.give(contact, "newsletter", channel="form")
    await Contact.delete().where(Contact.id == contact)
    assert await ConsentSubject.count() == 0
    assert await ConsentEvent.count() == 1


# -- one-click withdrawal links ----------------------------------------------------------------


async def test_a_withdrawal_link_withdraws_once(kith, kith_client, ledger) -> None:
    contact = await make_contact(kith)
    await ledger.give(contact, "newsletter", channel="form")
    link = ledger.withdraw_link(contact, "newsletter")
    assert link.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(days=364)

    shown = await kith_client.get(link.path)
    assert shown.status_code == 200
    assert "text/html" in shown.headers["content-type"]
    assert "Monthly newsletter by email" in shown.text and '<form method="post"' in shown.text
    assert await ledger.can_process(contact, "newsletter"), "a GET must not withdraw"

    done = await kith_client.post(link.path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200, done.text
    assert "withdrawn" in done.text
    assert not await ledger.can_process(contact, "newsletter")
    history = await ledger.history(contact)
    assert [(e.action, e.channel, e.actor) for e in history][-1] == (
        "withdrawn",
        "link",
        "data_subject",
    )

    again = await kith_client.post(link.path, headers={"Accept": "application/json"})
    assert again.json()["status"] == "already_withdrawn"
    assert len(await ledger.history(contact)) == 2


async def test_forged_tampered_and_expired_links_fail(kith, kith_client, ledger, monkeypatch):
    contact = await make_contact(kith)
    await ledger.give(contact, "newsletter", channel="form")
    link = ledger.withdraw_link(contact, "newsletter", valid_days=1)
    body, _, signature = link.token.partition(".")
    other = ledger.withdraw_link(await make_contact(kith, "Other"), "newsletter")
    forged = [
        "garbage",
        f"{body}.{signature[:-2]}AA",
        f"{other.token.split('.')[0]}.{signature}",
        f"{body}.",
    ]
    for token in forged:
        with pytest.raises(LinkInvalid):
            ledger.read_link(token)
        answer = await kith_client.post(
            "/api/privacy/consent/withdraw",
            params={"token": token},
            headers={"Accept": "application/json"},
        )
        assert answer.status_code == 400, token
        assert "not valid" in answer.json()["detail"]

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    monkeypatch.setattr(consent_module, "utcnow", lambda: later)
    with pytest.raises(LinkExpired):
        ledger.read_link(link.token)
    expired = await kith_client.get(link.path)
    assert expired.status_code == 410
    assert "expired" in expired.text
    assert await ledger.can_process(contact, "newsletter")


async def test_a_link_for_an_erased_contact_says_nothing_is_held(kith, kith_client, ledger):
    from kith.tables import Contact

    contact = await make_contact(kith)
    link = ledger.withdraw_link(contact, "newsletter")
    await Contact.delete().where(Contact.id == contact)
    answer = await kith_client.post(link.path, headers={"Accept": "application/json"})
    assert answer.status_code == 200
    assert answer.json()["status"] == "not_held"


# -- HTTP API ----------------------------------------------------------------------------------


async def test_consent_api_for_compliance_not_for_agents(kith, kith_client, kith_auth, ledger):
    contact = await make_contact(kith)
    officer = await kith_auth(Role.COMPLIANCE)
    agent = await kith_auth(Role.AGENT)
    url = f"/api/privacy/consents/{contact}"

    refused = await kith_client.post(
        url, json={"purpose": "newsletter", "action": "given"}, headers=agent
    )
    assert refused.status_code == 403
    assert (await kith_client.get(url, headers=agent)).status_code == 403
    assert (await kith_client.get("/api/privacy/purposes", headers=agent)).status_code == 403

    given = await kith_client.post(
        url, json={"purpose": "newsletter", "action": "given", "channel": "phone"}, headers=officer
    )
    assert given.status_code == 201, given.text
    assert given.json()["notice_version"] == 1
    withdrawn = await kith_client.post(
        f"{url}/withdraw", json={"purpose": "newsletter"}, headers=officer
    )
    assert withdrawn.status_code == 201
    overview = (await kith_client.get(url, headers=officer)).json()
    assert [e["action"] for e in overview["events"]] == ["given", "withdrawn"]
    current = {s["purpose"]: s for s in overview["current"]}
    assert current["newsletter"]["status"] == "withdrawn"

    link = await kith_client.post(
        f"{url}/withdraw-link", json={"purpose": "newsletter", "valid_days": 30}, headers=officer
    )
    assert link.status_code == 200
    assert link.json()["path"].startswith("/api/privacy/consent/withdraw?token=")

    notice = await kith_client.post(
        "/api/privacy/notices", json={"purpose": "billing", "text": "Invoices."}, headers=officer
    )
    assert notice.status_code == 201 and notice.json()["version"] == 1
    bad = await kith_client.post(
        url, json={"purpose": "newsletter", "action": "maybe"}, headers=officer
    )
    assert bad.status_code in (400, 422)
    missing = await kith_client.get(f"/api/privacy/consents/{uuid.uuid4()}", headers=officer)
    assert missing.status_code == 404


async def test_record_struct_rejects_unknown_fields() -> None:
    import msgspec

    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"purpose": "x", "action": "given", "extra": 1}, ConsentRecord)


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_publishes_notices_and_records_consent(kith_database_url: str, tmp_path) -> None:
    from _privacy_workflow import cli_env, run_services
    from kith.cli import main

    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(
        '[privacy.purposes.newsletter]\ndescription = "Monthly newsletter"\n'
        'lawful_basis = "consent"\n'
    )
    runner, env = cli_env(kith_database_url, home)
    contact = run_services(env, lambda kith: make_contact(kith))

    purposes_out = runner.invoke(main, ["privacy", "purposes"], env=env)
    assert "newsletter" in purposes_out.stdout and "consent" in purposes_out.stdout
    refused = runner.invoke(
        main, ["privacy", "consent", "give", str(contact), "newsletter"], env=env
    )
    assert refused.exit_code == 1
    assert "publish one first" in refused.stderr
    published = runner.invoke(
        main,
        ["privacy", "notices", "publish", "newsletter", "--file", "-"],
        input="Our newsletter, monthly. Unsubscribe any time.\n",
        env=env,
    )
    assert published.exit_code == 0, published.output
    assert "newsletter notice version 1" in published.stdout
    given_out = runner.invoke(
        main,
        ["privacy", "consent", "give", str(contact), "newsletter", "--channel", "phone"],
        env=env,
    )
    assert given_out.exit_code == 0, given_out.output
    assert "consent given for newsletter (notice v1)" in given_out.stdout
    withdrawn = runner.invoke(
        main, ["privacy", "consent", "withdraw", str(contact), "newsletter"], env=env
    )
    assert withdrawn.exit_code == 0, withdrawn.output
    shown = runner.invoke(main, ["privacy", "consent", "show", str(contact), "--history"], env=env)
    assert shown.exit_code == 0, shown.output
    newsletter_line = next(line for line in shown.stdout.splitlines() if "newsletter" in line)
    assert "withdrawn" in newsletter_line and " no " in f" {newsletter_line} "
    link = runner.invoke(
        main,
        ["privacy", "consent", "link", str(contact), "newsletter", "--base-url", "https://crm.x"],
        env=env,
    )
    assert link.stdout.startswith("https://crm.x/api/privacy/consent/withdraw?token=")
    notices = runner.invoke(main, ["privacy", "notices", "list", "--json"], env=env)
    assert [n["version"] for n in json.loads(notices.stdout)] == [1]


def test_cli_links_are_absolute_under_public_url(kith_database_url: str, tmp_path) -> None:
    from _privacy_workflow import cli_env, run_services
    from kith.cli import main

    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    purposes = '[privacy.purposes.newsletter]\ndescription = "News"\nlawful_basis = "consent"\n'
    (home / "kith.toml").write_text(purposes)
    runner, env = cli_env(kith_database_url, home)
    contact = run_services(env, lambda kith: make_contact(kith))
    command = ["privacy", "consent", "link", str(contact), "newsletter"]

    # Not set: the link points at this machine, and the command says so.
    local = runner.invoke(main, command, env=env)
    assert local.exit_code == 0, local.output
    assert local.stdout.startswith("http://127.0.0.1:8000/api/privacy/consent/withdraw?token=")
    assert "public_url is not set" in local.stderr

    (home / "kith.toml").write_text('public_url = "https://crm.example.com/kith/"\n' + purposes)
    public = runner.invoke(main, command, env=env)
    assert public.exit_code == 0, public.output
    url = public.stdout.strip()
    assert url.startswith("https://crm.example.com/kith/api/privacy/consent/withdraw?token=")
    assert "public_url" not in public.stderr
    # The link works: the token in it is this installation's.
    token = url.partition("?token=")[2]
    assert run_services(env, lambda kith: _read(kith, token)) == (contact, "newsletter")


async def _read(kith: Kith, token: str) -> tuple[uuid.UUID, str]:
    return ConsentService(kith).read_link(token)


async def test_api_links_are_absolute_under_public_url(kith, kith_client, kith_auth) -> None:
    configure_privacy(kith, purposes={"newsletter": NEWSLETTER})
    contact = await make_contact(kith)
    officer = await kith_auth("compliance")
    url = f"/api/privacy/consents/{contact}/withdraw-link"

    # Not set: under the address the request came in at.
    link = await kith_client.post(url, json={"purpose": "newsletter"}, headers=officer)
    assert link.status_code == 200, link.text
    assert link.json()["url"] == "http://kith.test" + link.json()["path"]

    kith.settings = dataclasses.replace(kith.settings, public_url="https://crm.example.com")
    link = await kith_client.post(url, json={"purpose": "newsletter"}, headers=officer)
    body = link.json()
    assert body["url"] == "https://crm.example.com" + body["path"]
    assert body["url"].startswith("https://crm.example.com/api/privacy/consent/withdraw?token=")


# -- the subject hooks ---------------------------------------------------------------------------


async def test_the_privacy_plugin_answers_export_erase_and_preview(kith, ledger) -> None:
    from kith.privacy.requests.service import RequestCreate, RequestService

    contact = await make_contact(kith)
    form, _ = await InteractionService(kith).log(
        contact, InteractionCreate(kind="form_submission", summary="form")
    )
    await ledger.give(contact, "newsletter", channel="form", source_interaction_id=form.id)
    request = await RequestService(kith).create(RequestCreate(kind="erasure", contact_id=contact))

    async def ours(hook: str) -> dict[str, Any]:
        results = await kith.plugins.call_async(hook, kith=kith, contact_id=contact)
        return {r.plugin: r.value for r in results if r.plugin.startswith("privacy.")}

    exported = await ours("kith_subject_export")
    assert set(exported) == {"privacy.rights", "privacy.requests"}
    events = exported["privacy.rights"].tables["consent_events"]
    assert [e["action"] for e in events] == ["given"]
    assert events[0]["source_interaction_id"] == str(form.id)
    requests = exported["privacy.requests"].tables["subject_requests"]
    assert [r["id"] for r in requests] == [str(request.id)]

    preview = await ours("kith_subject_erase_preview")
    assert await ledger.history(contact) != []  # a preview changes nothing
    erased = await ours("kith_subject_erase")
    assert preview == erased
    methods = {o.location: o.method for outcomes in erased.values() for o in outcomes}
    assert methods == {
        "kith_consent_event": "anonymised",
        "kith_consent_source": "deleted",
        "kith_consent_subject": "deleted",
        "kith_privacy_restriction": "deleted",
        "kith_subject_request": "legal_hold",
        "kith_subject_request (notes)": "crypto_shredded",
        "kith_subject_request (subject_lookup)": "not_present",
    }
    # The ledger keeps the event as evidence, linked to nobody (core erased the contact too).
    assert await ConsentEvent.count().where(ConsentEvent.action == "given") == 1
    assert await ConsentSubject.count().where(ConsentSubject.contact == contact) == 0
