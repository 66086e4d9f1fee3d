"""Every read of personal data is audited, whatever the channel: lists and searches over the
API, tasks, the command line's reads and additions, and consent given or withdrawn."""

from __future__ import annotations

import getpass
import uuid
from typing import Any

import httpx
from _privacy_workflow import NEWSLETTER, cli_env, configure_privacy, run_services
from kith import ContactCreate, ContactService, EmailIn, InteractionCreate, InteractionService, Kith
from kith.privacy.rights.audit import AuditEntryOut, AuditLog
from kith.privacy.rights.consent import ConsentService


async def _actions(kith: Kith, contact_id: uuid.UUID) -> list[tuple[str, str]]:
    """(action, channel) of a contact's audit entries, oldest first."""
    entries: list[AuditEntryOut] = await AuditLog(kith).entries(contact_id)
    return [(entry.action, entry.channel) for entry in reversed(entries)]


async def _person(kith: Kith, name: str, email: str) -> uuid.UUID:
    contact = await ContactService(kith).create(
        ContactCreate(name=name, emails=[EmailIn(address=email)])
    )
    return contact.id


async def test_lists_and_searches_over_the_api_are_audited(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: Any
) -> None:
    headers = await kith_auth("agent")
    ada = await _person(kith, "Ada Lovelace", "ada@example.com")
    grace = await _person(kith, "Grace Hopper", "grace@example.com")

    listed = await kith_client.get("/api/contacts", headers=headers)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 2
    by_email = await kith_client.get("/api/contacts?q=ADA@example.com", headers=headers)
    by_name = await kith_client.get("/api/contacts?q=grac", headers=headers)
    assert [c["id"] for c in by_email.json()["items"]] == [str(ada)]
    assert [c["id"] for c in by_name.json()["items"]] == [str(grace)]

    assert ("list", "api") in await _actions(kith, ada)
    assert ("search", "api") in await _actions(kith, ada)
    assert ("list", "api") in await _actions(kith, grace)
    assert ("search", "api") in await _actions(kith, grace)
    # Who searched is on record; a search that did not find someone says nothing of them.
    assert [a for a in await _actions(kith, grace) if a[0] == "search"] == [("search", "api")]


async def test_listing_tasks_is_audited_for_their_contacts(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: Any
) -> None:
    headers = await kith_auth("agent")
    ada = await _person(kith, "Ada Lovelace", "ada@example.com")
    await InteractionService(kith).log(ada, InteractionCreate(kind="task", summary="Call Ada"))
    tasks = await kith_client.get("/api/tasks", headers=headers)
    assert tasks.status_code == 200 and len(tasks.json()["items"]) == 1
    assert ("list_tasks", "api") in await _actions(kith, ada)


async def test_consent_given_and_withdrawn_is_on_the_audit_trail(kith: Kith) -> None:
    configure_privacy(kith, purposes={"newsletter": NEWSLETTER})
    ada = await _person(kith, "Ada Lovelace", "ada@example.com")
    consent = ConsentService(kith)
    await consent.give(ada, "newsletter", channel="form")
    await consent.withdraw(ada, "newsletter", channel="phone")
    actions = await _actions(kith, ada)
    assert ("consent_given", "form") in actions
    assert ("consent_withdrawn", "phone") in actions
    entries = await AuditLog(kith).entries(ada)
    given = next(e for e in entries if e.action == "consent_given")
    # The purpose is personal data of the person's (what they agreed to): sealed, and shown.
    assert isinstance(given.details, dict) and given.details["purpose"] == "newsletter"


def test_the_command_line_audits_additions_and_searches(
    kith_database_url: str, tmp_path: Any, kith_cli: Any
) -> None:
    _, env = cli_env(kith_database_url, tmp_path / "kith-home")
    added = kith_cli("contacts", "add", "Ada Lovelace", "--email", "ada@example.com", env=env)
    assert added.exit_code == 0, added.output
    found = kith_cli("contacts", "search", "ada@example.com", env=env)
    assert found.exit_code == 0, found.output

    async def entries(kith: Kith) -> list[AuditEntryOut]:
        [contact_id] = await ContactService(kith).find_ids_by("email", "ada@example.com")
        return await AuditLog(kith).entries(contact_id)

    recorded = run_services(env, entries)
    by_action = {entry.action: entry for entry in recorded}
    assert {"create", "search"} <= set(by_action)
    for action in ("create", "search"):
        entry = by_action[action]
        assert (entry.channel, entry.actor) == ("cli", "system")
        # The command line runs as the system: the operating-system account says who ran it.
        assert isinstance(entry.details, dict) and entry.details["os_user"] == getpass.getuser()
