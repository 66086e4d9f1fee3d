"""Storage: SQLite settings that matter, reused connections, and writes under concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kith.bootstrap import open_kith
from kith.errors import Conflict
from kith.ids import new_id
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, InteractionCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.storage.sqlite import KithSQLiteEngine
from kith.tables import Contact, ContactPoint, Interaction
from kith.testing import TokenFactory, settings_for
from piccolo.querystring import QueryString


def sqlite_only(kith: Kith) -> None:
    if kith.database.kind != "sqlite":
        pytest.skip("a property of the SQLite file and its connections")


async def pragma(name: str) -> Any:
    """The value of a pragma as one of the engine's own connections sees it."""
    rows = await Contact.raw(f"SELECT * FROM pragma_{name}()").run()
    return next(iter(rows[0].values()))


async def test_sqlite_file_is_in_wal_mode(kith: Kith) -> None:
    sqlite_only(kith)
    await Contact.count()  # the engine has opened the file
    with sqlite3.connect(kith.settings.sqlite_path) as outside:
        assert outside.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_sqlite_connections_have_foreign_keys_and_the_writer_a_busy_timeout(
    kith: Kith,
) -> None:
    sqlite_only(kith)
    # Reads may run on any of the engine's read connections; ask often enough to meet each.
    for _ in range(6):
        assert await pragma("foreign_keys") == 1
    async with kith.unit_of_work():  # the writer connection
        assert await pragma("foreign_keys") == 1
        assert await pragma("busy_timeout") >= 1000


async def test_sqlite_write_waits_for_another_process_lock(kith: Kith) -> None:
    """Another process (a `kith` command, a backup) holding the write lock for a moment makes
    a write wait, not fail with "database is locked"."""
    sqlite_only(kith)
    await Contact.count()
    other = sqlite3.connect(kith.settings.sqlite_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(ContactService(kith).create(ContactCreate(name="Ada")))
        await asyncio.sleep(0.3)
        assert not write.done(), "the write should be waiting for the lock"
        other.execute("COMMIT")
        created = await write
    finally:
        other.close()
    assert (await ContactService(kith).get(created.id)).name == "Ada"


async def test_foreign_keys_are_enforced(kith: Kith) -> None:
    orphan = ContactPoint(
        id=new_id(), contact=new_id(), kind="email", value="x@example.com", lookup="x"
    )
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        await ContactPoint.insert(orphan).run()
    assert await ContactPoint.count() == 0


async def test_sqlite_connections_are_reused(kith: Kith, monkeypatch: pytest.MonkeyPatch) -> None:
    sqlite_only(kith)
    engine = kith.database.engine
    await engine.close()  # type: ignore[attr-defined]  # start counting from no connection
    opened = 0
    real_connect = sqlite3.connect

    def counting_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        nonlocal opened
        opened += 1
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", counting_connect)
    contacts = ContactService(kith)
    ada = await contacts.create(ContactCreate(name="Ada"))
    for _ in range(50):
        await contacts.get(ada.id)  # reads
        await Contact.update({Contact.tags: ["x"]}).where(Contact.id == ada.id).run()  # writes
    # A writer and a handful of readers, not a connection per query.
    assert 1 <= opened <= 6


async def test_postgres_pool_reuses_connections(kith: Kith) -> None:
    if kith.database.kind != "postgresql":
        pytest.skip("the PostgreSQL pool")
    backends = set()
    for _ in range(100):
        rows = await Contact.raw("SELECT pg_backend_pid() AS pid").run()
        backends.add(rows[0]["pid"])
    assert len(backends) <= 10


async def test_many_concurrent_writes_all_land(kith: Kith) -> None:
    contacts = ContactService(kith)
    interactions = InteractionService(kith)

    async def intake(n: int) -> None:
        contact = await contacts.create(
            ContactCreate(
                name=f"Lead {n}",
                emails=[EmailIn(f"lead{n}@example.com")],
                phones=[PhoneIn(f"+44 20 7946 {n:04d}")],
            )
        )
        await interactions.log(
            contact.id, InteractionCreate(kind="form_submission", source="web", external_id=str(n))
        )
        await contacts.list(q=f"lead{n}@example.com")  # reads interleaved with the writes

    await asyncio.gather(*(intake(n) for n in range(40)))
    assert await Contact.count() == 40
    assert await ContactPoint.count() == 80
    assert await Interaction.count() == 40
    page = await contacts.list(q="lead17@example.com")
    assert [c.name for c in page.items] == ["Lead 17"]


async def test_concurrent_creates_with_one_primary_email_make_one_contact(kith: Kith) -> None:
    contacts = ContactService(kith)
    spellings = ["ada@example.com", "ADA@example.com", " Ada@Example.com "] * 3

    async def create(address: str) -> Any:
        return await contacts.create(ContactCreate(name="Ada", emails=[EmailIn(address)]))

    results = await asyncio.gather(*(create(a) for a in spellings), return_exceptions=True)
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(created) == 1
    assert all(isinstance(r, Conflict) for r in refused), refused
    assert len(refused) == len(spellings) - 1
    assert await Contact.count() == 1


async def test_concurrent_http_creates_give_409s(
    kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    headers = await kith_auth("agent")
    body = {"name": "Ada", "emails": [{"address": "ada@example.com"}]}
    responses = await asyncio.gather(
        *(kith_client.post("/api/contacts", json=body, headers=headers) for _ in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409, 409]
    winner = next(r.json()["id"] for r in responses if r.status_code == 201)
    # Even the requests that lost the race are told which contact holds the address.
    assert {r.json().get("existing_contact_id") for r in responses if r.status_code == 409} == {
        winner
    }
    listed = await kith_client.get("/api/contacts", headers=headers)
    assert len(listed.json()["items"]) == 1


async def test_concurrent_logs_of_one_external_id_make_one_interaction(kith: Kith) -> None:
    contact = await ContactService(kith).create(ContactCreate(name="Ada"))
    interactions = InteractionService(kith)
    data = InteractionCreate(kind="call", source="twilio", external_id="CA-1")
    results = await asyncio.gather(
        *(interactions.log(contact.id, data) for _ in range(8)), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    stored = {r[0].id for r in results if not isinstance(r, BaseException)}
    assert len(stored) == 1
    assert sorted(r[1] for r in results if not isinstance(r, BaseException)) == [False] * 7 + [True]
    assert await Interaction.count() == 1


async def test_a_transaction_that_cannot_begin_gives_the_writer_back(tmp_path: Path) -> None:
    """A transaction whose BEGIN fails (another process held the write lock past the busy
    timeout) never reaches its exit; the writer must not stay taken by it."""
    path = tmp_path / "locked.sqlite3"
    engine = KithSQLiteEngine(path=str(path), busy_timeout_ms=0)
    try:
        await engine.run_ddl("CREATE TABLE t (x INTEGER)")
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                async with engine.transaction():
                    pass
        finally:
            other.close()
        assert not engine._writer_lock.locked()
        async with engine.transaction():
            await engine.run_querystring(QueryString("INSERT INTO t (x) VALUES (1)"))
        assert await engine.run_querystring(QueryString("SELECT x FROM t")) == [{"x": 1}]
    finally:
        await engine.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    """The usual umask of a server account, whatever the test runner's is."""
    saved = os.umask(mask)
    try:
        yield
    finally:
        os.umask(saved)


async def test_the_database_file_and_its_logs_are_private_like_the_rest_of_kith_home(
    tmp_path: Path,
) -> None:
    home = tmp_path / "new-home"
    settings = settings_for(home)
    with _umask(0o022):
        kith = open_kith(settings)
        await kith.start()
        try:
            await kith.database.migrate()
        finally:
            await kith.close()
        kith = open_kith(settings)
        await kith.start()
        try:
            await ContactService(kith).create(ContactCreate(name="Ada"))
            database = settings.sqlite_path
            files = {path.name: _mode(path) for path in home.iterdir() if path.is_file()}
            # The write-ahead log and its index exist while Kith has the database open.
            assert {database.name, f"{database.name}-wal", f"{database.name}-shm"} <= set(files)
            assert files == dict.fromkeys(files, 0o600)
            assert _mode(home) == 0o700
        finally:
            await kith.close()

        # A database made by an older version with the umask's modes is made private when
        # opened.
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").touch()
            os.chmod(f"{database}{suffix}", 0o644)
        kith = open_kith(settings)
        await kith.start()
        try:
            assert await Contact.count() == 1
            for suffix in ("", "-wal", "-shm"):
                assert _mode(Path(f"{database}{suffix}")) == 0o600, suffix
        finally:
            await kith.close()
