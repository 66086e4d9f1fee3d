"""The audit log: reads and changes over the API and the CLI, exports and erasures are recorded
with who, when and through which channel; details are encrypted under the subject's key, so
they are unreadable after erasure while the trail itself remains."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog
from _privacy_subjects import make_person, run_request
from _privacy_workflow import cli_env, make_user, run_services
from kith.bootstrap import open_kith
from kith.hookspecs import hookimpl
from kith.plugin_manager import KithPluginManager, load_plugin_manager
from kith.privacy.rights import audit
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.export import ExportService
from kith.privacy.rights.settings import DEFAULT_AUDIT_DURABILITY
from kith.privacy.rights.tables import AuditEntry
from kith.runtime import Kith
from kith.settings import Settings, SettingsError
from kith.subject_checks import record_access
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


DURABILITIES = ("durable", "write_behind")


@pytest.fixture
def audit_durability() -> str:
    """``[privacy] audit_durability`` of this module's Kith: write-behind, the mode whose queue
    most tests here are about, unless a test parametrizes it."""
    return "write_behind"


@pytest.fixture
def kith_settings(kith_settings: Settings, audit_durability: str) -> Settings:
    privacy = {**kith_settings.section("privacy"), "audit_durability": audit_durability}
    return dataclasses.replace(kith_settings, extra={**kith_settings.extra, "privacy": privacy})


async def _person(kith: Kith) -> uuid.UUID:
    """A contact whose own entry (its creation) is written, so only the test's reports wait."""
    contact_id = await make_person(kith, notes=0, orders=0)
    await AuditLog(kith).settle()
    return contact_id


async def _in_table(contact_id: uuid.UUID, action: str | None = None) -> int:
    """Entries in the table itself: AuditLog.count would first wait for the queue."""
    query = AuditEntry.count().where(AuditEntry.contact_id == contact_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return int(await query)


@pytest.mark.parametrize("audit_durability", DURABILITIES)
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


@pytest.mark.parametrize("audit_durability", DURABILITIES)
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


@pytest.mark.parametrize("audit_durability", DURABILITIES)
async def test_concurrent_reads_are_all_recorded(kith: Kith, kith_client, kith_auth) -> None:
    """Entries of concurrent reads are written together (one insert) and none is lost."""
    import asyncio

    headers = await kith_auth("agent")
    contact_id = await make_person(kith, notes=0, orders=0)
    responses = await asyncio.gather(
        *(kith_client.get(f"/api/contacts/{contact_id}", headers=headers) for _ in range(25))
    )
    assert {r.status_code for r in responses} == {200}
    reads = [e for e in await AuditLog(kith).entries(contact_id) if e.action == "read"]
    assert len(reads) == 25 and len({e.id for e in reads}) == 25


# -- access reports are written behind the response ---------------------------------------------


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


def _events(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


async def _until(condition: Callable[[], bool], what: str, within_s: float = 10.0) -> None:
    """Wait (bounded) for something the audit log's background writer does."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting after {within_s}s for {what}")
        await asyncio.sleep(0.01)


async def _rename_audit_table(kith: Kith, away: bool) -> None:
    """Make writing the audit log fail for real (or work again): the table moves aside."""
    table = AuditEntry._meta.tablename
    old, new = (table, f"{table}_away") if away else (f"{table}_away", table)
    await kith.database.engine.run_ddl(f"ALTER TABLE {old} RENAME TO {new}")


async def _open(settings: Settings, manager: KithPluginManager) -> Kith:
    kith = open_kith(settings, plugin_manager=manager)
    await kith.start()
    return kith


async def test_a_read_is_on_record_as_soon_as_it_is_answered(
    kith: Kith, kith_client, kith_auth
) -> None:
    """The entry is written behind the response, but whoever reads the log next sees it."""
    headers = await kith_auth("agent")
    compliance = await kith_auth("compliance")
    contact_id = await make_person(kith, notes=0, orders=0)
    log = AuditLog(kith)

    read = await kith_client.get(f"/api/contacts/{contact_id}", headers=headers)
    assert read.status_code == 200, read.text
    entry, created = await log.entries(contact_id)
    assert (entry.action, entry.channel) == ("read", "api")
    assert entry.actor.startswith("user:")
    assert created.action == "create"

    for expected in (3, 4):
        read = await kith_client.get(f"/api/contacts/{contact_id}", headers=headers)
        assert read.status_code == 200, read.text
        assert await log.count(contact_id) == expected

    await kith_client.get(f"/api/contacts/{contact_id}", headers=headers)
    listed = await kith_client.get(f"/api/privacy/audit/{contact_id}", headers=compliance)
    assert listed.status_code == 200, listed.text
    assert [e["action"] for e in listed.json()] == ["read"] * 4 + ["create"]


async def test_a_writer_that_is_behind_makes_readers_wait_instead_of_queueing(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past WAIT_ABOVE queued reports a new one waits for its commit: the reader is slowed to
    the writer's pace rather than refused, and its entry is in the table when it returns."""
    contact_id = await _person(kith)
    monkeypatch.setattr(audit, "WAIT_ABOVE", 0)

    await record_access(kith, contact_id, "read")

    assert await _in_table(contact_id, "read") == 1
    assert audit.audit_writer(kith).backlog == 0


async def test_reads_answered_together_share_one_insert_and_land_unprompted(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries reported within the gathering window are written by one insert, and they land
    without anyone reading the log or closing Kith."""
    contact_id = await _person(kith)
    batches: list[int] = []
    insert = audit._insert

    async def counted(entries: list[dict[str, Any]]) -> None:
        await insert(entries)
        batches.append(len(entries))

    monkeypatch.setattr(audit, "_insert", counted)
    # A wide window: five reports take microseconds, but a loaded machine may pause this test
    # for longer than the real 20 ms, which would split the batch by chance.
    monkeypatch.setattr(audit, "GATHER_S", 1.0)
    for _ in range(5):
        await record_access(kith, contact_id, "read")
        await asyncio.sleep(0)  # the writer's turn comes, but the window is still open

    def written() -> bool:
        return sum(batches) == 5

    await _until(written, "the gathered batch to be written")
    assert batches == [5]
    assert await _in_table(contact_id, "read") == 5


async def test_batches_of_every_size_are_written_whole(kith: Kith) -> None:
    """Each batch size has its own prepared insert; sizes up to MAX_BATCH and a queue longer
    than one batch all land, every entry once."""
    contact_id = await _person(kith)
    total = await AuditLog(kith).count(contact_id)
    for size in (1, 2, 3, 17, audit.MAX_BATCH, audit.MAX_BATCH + 5):
        for _ in range(size):
            await record_access(kith, contact_id, "read")
        total += size
        assert await AuditLog(kith).count(contact_id) == total
    ids = [
        row["id"]
        for row in await AuditEntry.select(AuditEntry.id).where(AuditEntry.contact_id == contact_id)
    ]
    assert len(set(ids)) == total


def test_reads_still_queued_are_written_when_kith_closes(
    kith_settings: Settings, kith_plugin_manager: KithPluginManager
) -> None:
    """Like a command or a server stopping: Kith closes, then its event loop ends (cancelling
    whatever still runs there); every answered read is on record all the same."""
    # More than one batch (MAX_BATCH), reported back to back and never read before closing.
    reads = audit.MAX_BATCH * 2 + 50

    async def serve() -> uuid.UUID:
        kith = await _open(kith_settings, kith_plugin_manager)
        try:
            contact_id = await make_person(kith, notes=0, orders=0)
            for index in range(reads):
                await record_access(kith, contact_id, "read", channel="cli", page=index)
            return contact_id
        finally:
            await kith.close()

    async def read_log(contact_id: uuid.UUID) -> list[Any]:
        kith = await _open(kith_settings, load_plugin_manager())
        try:
            return await AuditLog(kith).entries(contact_id, limit=reads + 10)
        finally:
            await kith.close()

    contact_id = asyncio.run(serve())
    entries = asyncio.run(read_log(contact_id))
    assert sorted(e.action for e in entries) == ["create"] + ["read"] * reads
    pages = [e.details["page"] for e in entries if e.action == "read"]
    assert sorted(pages) == list(range(reads))


async def test_closing_kith_says_how_many_entries_it_could_not_write(
    monkeypatch: pytest.MonkeyPatch,
    kith_settings: Settings,
    kith_plugin_manager: KithPluginManager,
    logs: list[dict[str, Any]],
) -> None:
    # The writer waits long between attempts, so closing gives up while the entries wait.
    monkeypatch.setattr(audit, "RETRY_FIRST_S", 30.0)
    monkeypatch.setattr(audit, "RETRY_MAX_S", 30.0)
    monkeypatch.setattr(audit, "SETTLE_TIMEOUT_S", 0.5)
    kith = await _open(kith_settings, kith_plugin_manager)
    try:
        contact_id = await _person(kith)
        await _rename_audit_table(kith, away=True)
        for _ in range(7):
            await record_access(kith, contact_id, "read", channel="cli")
        await _until(lambda: bool(_events(logs, "audit.write_failed")), "the failed write")
    finally:
        await kith.close()  # returns, although the audit log cannot be written

    [lost] = _events(logs, "audit.entries_lost")
    assert lost["log_level"] == "error"
    assert lost["count"] == 7
    assert not _events(logs, "plugin.shutdown_failed")


async def test_a_failing_audit_log_refuses_reads_keeps_answered_ones_and_recovers(
    monkeypatch: pytest.MonkeyPatch,
    kith: Kith,
    kith_client,
    kith_auth,
    logs: list[dict[str, Any]],
) -> None:
    monkeypatch.setattr(audit, "RETRY_FIRST_S", 0.01)
    monkeypatch.setattr(audit, "RETRY_MAX_S", 0.05)
    headers = await kith_auth("agent")
    contact_id = await _person(kith)
    url = f"/api/contacts/{contact_id}"
    group = audit.audit_writer(kith)

    await _rename_audit_table(kith, away=True)
    answered = await kith_client.get(url, headers=headers)
    assert answered.status_code == 200, answered.text
    await _until(lambda: group.failure is not None, "the audit write to fail")
    # The read that was answered is not lost: its entry waits to be written (see the end).
    failed = _events(logs, "audit.write_failed")[0]
    assert failed["log_level"] == "error" and failed["pending"] == 1

    refused = await kith_client.get(url, headers=headers)
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["status"] == 503
    assert problem["title"] == "Audit log unavailable"
    assert "audit log" in problem["detail"]
    # Other reads of personal data are refused as well.
    timeline = await kith_client.get(f"{url}/timeline", headers=headers)
    assert timeline.status_code == 503, timeline.text

    await _rename_audit_table(kith, away=False)
    await _until(
        lambda: group.failure is None and group.backlog == 0, "the queued entry to be written"
    )
    assert _events(logs, "audit.write_recovered")
    again = await kith_client.get(url, headers=headers)
    assert again.status_code == 200, again.text

    entries = await AuditLog(kith).entries(contact_id)
    # The answered read and the one after recovery; the refused ones gave nothing away.
    assert [e.action for e in entries] == ["read", "read", "create"]


# -- durable: a read's entry is committed before the read is answered ----------------------------


@pytest.mark.parametrize("audit_durability", ["durable"])
async def test_a_durable_read_is_in_the_table_when_its_response_returns(
    kith: Kith, kith_client, kith_auth
) -> None:
    headers = await kith_auth("agent")
    contact_id = await make_person(kith, notes=0, orders=0)
    writer = audit.audit_writer(kith)
    assert writer.durability == "durable"
    # Its creation was committed before make_person returned: nothing was left queued.
    assert writer.backlog == 0 and await _in_table(contact_id, "create") == 1

    for expected in (1, 2):
        read = await kith_client.get(f"/api/contacts/{contact_id}", headers=headers)
        assert read.status_code == 200, read.text
        assert await _in_table(contact_id, "read") == expected
        assert writer.backlog == 0

    reads = await asyncio.gather(
        *(kith_client.get(f"/api/contacts/{contact_id}", headers=headers) for _ in range(10))
    )
    assert {r.status_code for r in reads} == {200}
    assert await _in_table(contact_id, "read") == 12


@pytest.mark.parametrize("audit_durability", ["durable"])
async def test_durable_reads_reported_together_share_one_commit(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reports that arrive while a batch is forming join it: one insert and one commit for
    all, and each returns only once that commit is done."""
    contact_id = await _person(kith)
    batches: list[int] = []
    insert = audit._insert

    async def counted(entries: list[dict[str, Any]]) -> None:
        await insert(entries)
        batches.append(len(entries))

    monkeypatch.setattr(audit, "_insert", counted)
    await asyncio.gather(*(record_access(kith, contact_id, "read") for _ in range(10)))
    assert batches == [10]
    assert await _in_table(contact_id, "read") == 10


@pytest.mark.parametrize("audit_durability", ["durable"])
async def test_a_durable_read_is_refused_while_its_entry_cannot_be_written(
    kith: Kith, kith_client, kith_auth, logs: list[dict[str, Any]]
) -> None:
    headers = await kith_auth("agent")
    contact_id = await _person(kith)
    url = f"/api/contacts/{contact_id}"
    writer = audit.audit_writer(kith)

    await _rename_audit_table(kith, away=True)
    try:
        refused = await kith_client.get(url, headers=headers)
        assert refused.status_code == 503, refused.text
        assert refused.json()["title"] == "Audit log unavailable"
        timeline = await kith_client.get(f"{url}/timeline", headers=headers)
        assert timeline.status_code == 503, timeline.text
        # Nothing was answered, so nothing waits to be written or retried.
        assert writer.backlog == 0 and writer.failure is None
        assert not _events(logs, "audit.write_failed")
    finally:
        await _rename_audit_table(kith, away=False)

    again = await kith_client.get(url, headers=headers)
    assert again.status_code == 200, again.text
    entries = await AuditLog(kith).entries(contact_id)
    assert [e.action for e in entries] == ["read", "create"]


# -- a log that hangs or fails ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _audit_table_locked(settings: Settings) -> AsyncIterator[None]:
    """Another session holds a lock on the audit table, so writing it waits: a database that
    hangs rather than fails."""
    if settings.database_kind == "postgresql":
        connection = await asyncpg.connect(settings.database_url, timeout=5)
        try:
            async with connection.transaction():
                await connection.execute(
                    f"LOCK TABLE {AuditEntry._meta.tablename} IN ACCESS EXCLUSIVE MODE"
                )
                yield
        finally:
            await connection.close()
        return
    connection = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


async def test_closing_counts_the_entries_of_a_write_that_hangs_as_lost(
    monkeypatch: pytest.MonkeyPatch,
    kith_settings: Settings,
    kith_plugin_manager: KithPluginManager,
    logs: list[dict[str, Any]],
) -> None:
    monkeypatch.setattr(audit, "SETTLE_TIMEOUT_S", 0.5)
    kith = await _open(kith_settings, kith_plugin_manager)
    contact_id = await _person(kith)
    async with _audit_table_locked(kith_settings):
        for _ in range(7):
            await record_access(kith, contact_id, "read", channel="cli")
        closing = asyncio.ensure_future(kith.close())
        # Closing gives up after SETTLE_TIMEOUT_S; the lock outlasts that (bounded wait).
        await _until(lambda: bool(_events(logs, "audit.entries_lost")), "closing to give up")
    await closing
    [lost] = _events(logs, "audit.entries_lost")
    assert lost["count"] == 7


async def test_reading_the_log_while_it_cannot_be_written_answers(
    monkeypatch: pytest.MonkeyPatch, kith: Kith, kith_client, kith_auth
) -> None:
    monkeypatch.setattr(audit, "RETRY_FIRST_S", 0.01)
    monkeypatch.setattr(audit, "RETRY_MAX_S", 0.05)
    headers = await kith_auth("agent")
    compliance = await kith_auth("compliance")
    contact_id = await _person(kith)
    group = audit.audit_writer(kith)
    await _rename_audit_table(kith, away=True)
    try:
        read = await kith_client.get(f"/api/contacts/{contact_id}", headers=headers)
        assert read.status_code == 200, read.text
        await _until(lambda: group.failure is not None, "the audit write to fail")
        listing = kith_client.get(f"/api/privacy/audit/{contact_id}", headers=compliance)
        try:
            # A generous bound: the point is that it answers at all.
            response = await asyncio.wait_for(listing, 5)
        except TimeoutError:
            pytest.fail("reading the audit log did not answer while it could not be written")
    finally:
        await _rename_audit_table(kith, away=False)
    assert response.status_code == 503, response.text


# -- the writer belongs to its Kith -------------------------------------------------------------


async def test_each_kith_opens_and_closes_a_writer_of_its_own(
    kith_settings: Settings, kith_plugin_manager: KithPluginManager
) -> None:
    first = await _open(kith_settings, kith_plugin_manager)
    try:
        # Opened by the plugin's start-up, before anything is recorded.
        writer = first.state[audit.STATE_KEY]
        assert isinstance(writer, audit.AuditWriter) and not writer.closed
        assert audit.audit_writer(first) is writer
        contact_id = await make_person(first, notes=0, orders=0)
        await record_access(first, contact_id, "read")
        assert writer.backlog > 0
    finally:
        await first.close()
    assert writer.closed and writer.backlog == 0
    assert writer._task is None or writer._task.done()

    # The next Kith in this process and event loop (a test, a command run again) has its own.
    again = open_kith(kith_settings, plugin_manager=load_plugin_manager())
    assert audit.STATE_KEY not in again.state
    await again.start()
    try:
        assert audit.audit_writer(again) is not writer
        assert not audit.audit_writer(again).closed
        assert await AuditLog(again).count(contact_id) == 2
    finally:
        await again.close()


async def test_an_access_reported_after_the_writer_closed_is_written_at_once(kith: Kith) -> None:
    """Another plugin's shutdown hook may run after this one's: what it reports is not queued
    to a writer that will never write it."""
    contact_id = await _person(kith)
    await audit.close_writer(kith)
    writer = audit.audit_writer(kith)
    assert writer.closed

    await record_access(kith, contact_id, "read")

    assert writer.backlog == 0 and writer._task is None
    assert await _in_table(contact_id, "read") == 1


async def test_durability_is_a_privacy_setting(kith_settings: Settings) -> None:
    default = dataclasses.replace(kith_settings, extra={})
    chosen = dataclasses.replace(
        kith_settings, environment={"KITH_PRIVACY_AUDIT_DURABILITY": "durable"}
    )
    for settings, expected in (
        (default, DEFAULT_AUDIT_DURABILITY),
        (kith_settings, "write_behind"),  # [privacy] audit_durability, set by this module
        (chosen, "durable"),  # the variable wins over kith.toml
    ):
        kith = await _open(settings, load_plugin_manager())
        try:
            assert audit.audit_writer(kith).durability == expected
        finally:
            await kith.close()

    wrong = dataclasses.replace(
        kith_settings, environment={"KITH_PRIVACY_AUDIT_DURABILITY": "sometimes"}
    )
    with pytest.raises(SettingsError, match="KITH_PRIVACY_AUDIT_DURABILITY: Invalid enum value"):
        open_kith(wrong)
