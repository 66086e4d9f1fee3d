"""``kith_shutdown``: when Kith closes, every plugin gets to write what it still holds while the
database is open; one whose hook fails is logged and keeps neither the other plugins nor the
close from happening.

The tests open and close a Kith of their own (not the ``kith`` fixture, which closes its Kith
after the test), then look at the database through a second Kith.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import structlog
from kith.bootstrap import open_kith
from kith.hookspecs import hookimpl
from kith.plugin_manager import KithPluginManager, load_plugin_manager
from kith.runtime import Kith
from kith.schemas import ContactCreate
from kith.services.contacts import ContactService
from kith.settings import Settings
from kith.tables import Contact
from kith.testing import postgres_admin_url


class Buffering:
    """A plugin that keeps contacts to add in memory and writes them when Kith closes."""

    def __init__(self, *names: str) -> None:
        self.pending = list(names)
        self.closing: list[Kith] = []
        self.contacts_seen: list[int] = []
        self.written: list[uuid.UUID] = []

    @hookimpl
    async def kith_shutdown(self, kith: Kith) -> None:
        self.closing.append(kith)
        # Reading works: the database is still open.
        self.contacts_seen.append(int(await Contact.count()))
        service = ContactService(kith)
        while self.pending:
            created = await service.create(ContactCreate(name=self.pending.pop(0)))
            self.written.append(created.id)


class Broken:
    """A plugin whose shutdown fails (synchronously: the hook may be sync or async)."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def kith_shutdown(self, kith: Kith) -> None:
        self.calls += 1
        raise RuntimeError("the spool folder is gone")


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


async def _open(settings: Settings, manager: KithPluginManager) -> Kith:
    kith = open_kith(settings, plugin_manager=manager)
    await kith.start()
    return kith


async def _open_connections(settings: Settings) -> int:
    """Connections to the test's database still open: PostgreSQL sessions, or file
    descriptors of this process on the SQLite file."""
    if settings.database_kind == "postgresql":
        name = urlsplit(settings.database_url).path.lstrip("/")
        admin = await asyncpg.connect(postgres_admin_url(), timeout=5)
        try:
            return int(
                await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name
                )
            )
        finally:
            await admin.close()
    database = settings.sqlite_path.resolve()
    descriptors = Path("/proc/self/fd")
    if not descriptors.is_dir():
        pytest.skip("needs /proc/self/fd to see open SQLite connections")
    count = 0
    for descriptor in descriptors.iterdir():
        try:
            target = descriptor.readlink()
        except OSError:
            continue
        count += target == database
    return count


async def _connections_after_close(settings: Settings) -> int:
    """Open connections once closing has settled: a PostgreSQL backend leaves
    pg_stat_activity a moment after its client hung up, so this waits for that (bounded)."""
    for _ in range(100):
        count = await _open_connections(settings)
        if count == 0 or settings.database_kind != "postgresql":
            return count
        await asyncio.sleep(0.05)
    return count


async def _contact_names(settings: Settings, ids: list[uuid.UUID]) -> list[str]:
    # A plugin manager without the test's plugins: closing this Kith calls no test hook.
    kith = await _open(settings, load_plugin_manager())
    try:
        service = ContactService(kith)
        return [(await service.get(contact_id)).name for contact_id in ids]
    finally:
        await kith.close()


async def test_a_plugin_writes_what_it_holds_when_kith_closes(
    register_plugin: Any, kith_plugin_manager: KithPluginManager, kith_settings: Settings
) -> None:
    buffering = Buffering("Ada Lovelace", "Charles Babbage")
    register_plugin(buffering, "buffering")
    kith = await _open(kith_settings, kith_plugin_manager)
    await ContactService(kith).create(ContactCreate(name="Already There"))
    assert buffering.closing == [], "kith_shutdown runs when Kith closes, not before"

    await kith.close()

    assert buffering.closing == [kith]
    assert buffering.contacts_seen == [1]
    # What the hook did left no connection open: it ran before the database closed.
    assert await _connections_after_close(kith_settings) == 0
    assert await _contact_names(kith_settings, buffering.written) == [
        "Ada Lovelace",
        "Charles Babbage",
    ]


async def test_a_failing_shutdown_is_logged_and_stops_neither_the_others_nor_the_close(
    register_plugin: Any,
    kith_plugin_manager: KithPluginManager,
    kith_settings: Settings,
    logs: list[dict[str, Any]],
) -> None:
    # One well-behaved plugin on each side of the broken one, so one of them runs after it
    # whatever order the plugin manager calls them in.
    first, broken, last = Buffering("First Plugin"), Broken(), Buffering("Last Plugin")
    register_plugin(first, "first")
    register_plugin(broken, "broken")
    register_plugin(last, "last")
    kith = await _open(kith_settings, kith_plugin_manager)
    assert await _open_connections(kith_settings) > 0  # the check below can see connections

    await kith.close()  # does not raise

    assert broken.calls == 1
    assert first.closing == [kith] and last.closing == [kith]
    [failure] = [entry for entry in logs if entry["event"] == "plugin.shutdown_failed"]
    assert failure["log_level"] == "error"
    assert failure["plugin"] == "broken"
    assert failure["error"] == "RuntimeError: the spool folder is gone"
    # The database was still closed after the failure.
    assert await _connections_after_close(kith_settings) == 0
    # And both other plugins wrote before it closed.
    assert await _contact_names(kith_settings, first.written + last.written) == [
        "First Plugin",
        "Last Plugin",
    ]
