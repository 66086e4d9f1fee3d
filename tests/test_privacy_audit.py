"""The audit log: reads and changes over the API and the CLI, exports and erasures are recorded
with who, when and through which channel; details are encrypted under the subject's key, so
they are unreadable after erasure while the trail itself remains."""

from __future__ import annotations

import getpass
import uuid
from pathlib import Path
from typing import Any

import pytest
from _privacy_subjects import make_person, run_request
from _privacy_workflow import cli_env, make_user, run_services
from kith.hookspecs import hookimpl
from kith.privacy.audit import AuditLog
from kith.privacy.export import ExportService
from kith.privacy.subject_tables import AuditEntry
from kith.runtime import Kith
from kith.subjects import Access


class Watcher:
    """A plugin that sees every access report, like the audit log does."""

    def __init__(self) -> None:
        self.seen: list[Access] = []

    @hookimpl
    def kith_record_access(self, access: Access) -> None:
        self.seen.append(access)


WATCHER = Watcher()


@pytest.fixture
def kith_plugins() -> list[Any]:
    WATCHER.seen.clear()
    return [("watcher", WATCHER)]


async def test_api_reads_and_changes_are_recorded(kith: Kith, kith_client, kith_auth) -> None:
    headers = await kith_auth("agent")
    created = await kith_client.post(
        "/api/contacts",
        json={"name": "Audit Subject", "emails": [{"address": "audit@subject.example"}]},
        headers=headers,
    )
    contact_id = created.json()["id"]
    await kith_client.get(f"/api/contacts/{contact_id}", headers=headers)
    await kith_client.patch(
        f"/api/contacts/{contact_id}", json={"tags": ["vip"], "name": "A. Subject"}, headers=headers
    )
    logged = await kith_client.post(
        f"/api/contacts/{contact_id}/interactions",
        json={"kind": "note", "summary": "met"},
        headers=headers,
    )
    await kith_client.get(f"/api/interactions/{logged.json()['id']}", headers=headers)
    await kith_client.get(f"/api/contacts/{contact_id}/timeline", headers=headers)

    entries = list(reversed(await AuditLog(kith).entries(uuid.UUID(contact_id))))
    assert [e.action for e in entries] == [
        "create",
        "read",
        "update",
        "log_interaction",
        "read_interaction",
        "read_timeline",
    ]
    assert {e.channel for e in entries} == {"api"}
    assert len({e.actor for e in entries}) == 1 and entries[0].actor.startswith("user:")
    assert entries[2].details == {"fields": ["name", "tags"]}
    assert [a.action for a in WATCHER.seen] == [e.action for e in entries]

    # Compliance reads the log over the API; agents may not.
    compliance = await kith_auth("compliance")
    listed = await kith_client.get(f"/api/privacy/audit/{contact_id}", headers=compliance)
    assert listed.status_code == 200 and len(listed.json()) == 6
    refused = await kith_client.get(f"/api/privacy/audit/{contact_id}", headers=headers)
    assert refused.status_code == 403
    # Details are stored encrypted.
    raw = await AuditEntry.select(AuditEntry.details).where(AuditEntry.details.is_not_null())
    assert raw and all(row["details"].startswith("$k1$") for row in raw)


async def test_details_are_unreadable_after_erasure(kith: Kith) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=1, orders=0)
    await ExportService(kith).export(contact_id, actor=officer, channel="cli")
    before = await AuditLog(kith).entries(contact_id)
    assert before[0].action == "export" and isinstance(before[0].details, dict)

    _, done = await run_request(kith, "erasure", contact_id, officer)
    after = await AuditLog(kith).entries(contact_id)
    # The trail stays (who, what, when, how), the details are gone with the key.
    assert after[0].action == "erase" and after[0].details is None
    assert after[0].actor == officer.ref and after[0].request_id == done.id
    export = next(e for e in after if e.action == "export")
    assert export.details == "[erased]" and export.channel == "cli"
    assert len(after) == len(before) + 1


def test_cli_reads_are_recorded_and_shown(kith_database_url: str, tmp_path: Path) -> None:
    from kith.cli import main

    runner, env = cli_env(kith_database_url, tmp_path / "kith-home")
    contact_id = run_services(env, lambda kith: make_person(kith, notes=1, orders=0))
    shown = runner.invoke(main, ["contacts", "show", str(contact_id)], env=env)
    assert shown.exit_code == 0, shown.output

    audit = runner.invoke(main, ["privacy", "audit", str(contact_id)], env=env)
    assert audit.exit_code == 0, audit.output
    assert "read" in audit.output and "cli" in audit.output
    assert getpass.getuser() in audit.output
    as_json = runner.invoke(main, ["privacy", "audit", str(contact_id), "--json"], env=env)
    assert '"channel": "cli"' in as_json.output or '"channel":"cli"' in as_json.output


async def test_concurrent_reads_are_all_recorded(kith: Kith, kith_client, kith_auth) -> None:
    """Entries of concurrent reads are written together (one insert), none is lost, and each
    request answers only once its entry is written."""
    import asyncio

    headers = await kith_auth("agent")
    contact_id = await make_person(kith, notes=0, orders=0)
    responses = await asyncio.gather(
        *(kith_client.get(f"/api/contacts/{contact_id}", headers=headers) for _ in range(25))
    )
    assert {r.status_code for r in responses} == {200}
    reads = [e for e in await AuditLog(kith).entries(contact_id) if e.action == "read"]
    assert len(reads) == 25 and len({e.id for e in reads}) == 25
