"""The PostgreSQL engine's hot connections: statements outside a transaction skip the pool."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from typing import Any

import asyncpg
import pytest
from kith.errors import Conflict
from kith.ids import new_id
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn
from kith.services.contacts import ContactService
from kith.storage.postgres import HOT_CONNECTIONS, KithPostgresEngine, is_open
from kith.tables import Contact
from test_storage_prepared import INSERT_CONTACT


@pytest.fixture
def engine(kith: Kith) -> KithPostgresEngine:
    if kith.database.kind != "postgresql":
        pytest.skip("the PostgreSQL engine")
    assert isinstance(kith.database.engine, KithPostgresEngine)
    return kith.database.engine


async def _backend() -> int:
    rows = await Contact.raw("SELECT pg_backend_pid() AS pid").run()
    return int(rows[0]["pid"])


async def test_statements_in_a_row_reuse_one_connection(engine: KithPostgresEngine) -> None:
    first = await _backend()
    assert {await _backend() for _ in range(20)} == {first}
    assert len(engine._hot) == 1


async def test_concurrent_statements_all_run_and_few_stay_checked_out(
    engine: KithPostgresEngine,
) -> None:
    pids = await asyncio.gather(*(_backend() for _ in range(30)))
    assert len(pids) == 30
    assert 1 <= len(engine._hot) <= HOT_CONNECTIONS
    # A transaction still finds a connection of its own in the pool.
    async with engine.transaction():
        await Contact.raw("SELECT 1").run()


async def test_a_connection_closed_by_the_server_is_replaced(
    engine: KithPostgresEngine, kith: Kith
) -> None:
    victim = await _backend()
    killer = await asyncpg.connect(kith.settings.database_url)
    try:
        await killer.execute("SELECT pg_terminate_backend($1)", victim)
    finally:
        await killer.close()
    # The client notices when the event loop reads the server's goodbye.
    deadline = time.monotonic() + 5
    while is_open(engine._hot[0]) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert await _backend() != victim


async def test_failed_statements_give_their_connections_back(
    engine: KithPostgresEngine, kith: Kith
) -> None:
    contacts = ContactService(kith)
    await contacts.create(ContactCreate(name="Ada", emails=[EmailIn("ada@example.com")]))
    # More failures than the pool has connections: a connection kept by a failed statement
    # would leave the next statements waiting for the pool forever.
    for _ in range(12):
        with pytest.raises(Conflict):
            await contacts.create(ContactCreate(name="Ada 2", emails=[EmailIn("ada@example.com")]))
        with pytest.raises(asyncpg.PostgresError):
            await Contact.raw("SELECT * FROM no_such_table").run()
    rows = await asyncio.wait_for(Contact.select().run(), timeout=10)
    assert len(rows) == 1
    assert len(engine._hot) <= HOT_CONNECTIONS


async def test_closing_returns_hot_connections_and_does_not_wait(
    engine: KithPostgresEngine,
) -> None:
    await asyncio.gather(*(_backend() for _ in range(5)))
    assert engine._hot
    await asyncio.wait_for(engine.close_connection_pool(), timeout=10)
    assert engine._hot == [] and engine.pool is None
    await engine.start_connection_pool(min_size=1, max_size=10)


async def test_a_transaction_runs_on_a_hot_connection_and_gives_it_back(
    engine: KithPostgresEngine,
) -> None:
    first = await _backend()
    # The transaction takes the connection the statement left checked out, not the pool's.
    async with engine.transaction():
        assert await _backend() == first
        await Contact.raw("SELECT 1").run()
    assert await _backend() == first
    assert len(engine._hot) == 1


async def test_failed_transactions_give_their_connections_back(
    engine: KithPostgresEngine,
) -> None:
    # More failures than the pool has connections, as above: each goes back to the pool.
    for _ in range(12):
        with pytest.raises(asyncpg.PostgresError):
            async with engine.transaction():
                await Contact.raw("SELECT * FROM no_such_table").run()
        with pytest.raises(RuntimeError):
            async with engine.transaction():
                await Contact.raw("SELECT 1").run()
                raise RuntimeError("the caller gave up")
    rows = await asyncio.wait_for(Contact.select().run(), timeout=10)
    assert rows == []
    assert len(engine._hot) <= HOT_CONNECTIONS


class _Sent:
    """The statements a connection sends, through asyncpg's query logger."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, record: Any) -> None:
        self.sql.append(record.query.split()[0].upper())


async def _sent_by_transaction(engine: KithPostgresEngine, body: Any) -> list[str]:
    first = await _backend()  # the hot connection the transaction will take
    connection = engine._hot[0]
    sent = _Sent()
    connection.add_query_logger(sent)
    try:
        async with engine.transaction():
            assert await _backend() == first
            await asyncio.sleep(0.01)  # the logger is told after the statement
            sent.sql.clear()
            await body()
        await asyncio.sleep(0.01)
    finally:
        # A transaction that failed gave its connection back to the pool.
        with contextlib.suppress(asyncpg.InterfaceError):
            connection.remove_query_logger(sent)
    return sent.sql


async def test_a_write_of_deferred_statements_alone_needs_no_begin_or_commit(
    engine: KithPostgresEngine,
) -> None:
    at = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
    ada, bob = new_id(), new_id()

    async def body() -> None:
        assert await Contact.count().where(Contact.id == ada).run() == 0
        await INSERT_CONTACT.defer(id=ada, name="Ada", at=at)
        await INSERT_CONTACT.defer(id=bob, name="Bob", at=at)

    # The read, then the two inserts as one statement that commits by itself.
    assert await _sent_by_transaction(engine, body) == ["SELECT", "WITH"]
    assert await Contact.count().run() == 2


async def test_a_failing_deferred_write_without_begin_keeps_nothing(
    engine: KithPostgresEngine,
) -> None:
    at = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
    same = new_id()
    with pytest.raises(asyncpg.UniqueViolationError):
        async with engine.transaction():
            await INSERT_CONTACT.defer(id=new_id(), name="Ada", at=at)
            await INSERT_CONTACT.defer(id=same, name="Bob", at=at)
            await INSERT_CONTACT.defer(id=same, name="Bob again", at=at)
    assert await Contact.count().run() == 0


async def test_a_write_begins_the_transaction_and_rolls_back_with_it(
    engine: KithPostgresEngine,
) -> None:
    at = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)

    async def body() -> None:
        await Contact.raw("SELECT 1").run()
        await INSERT_CONTACT.run(id=new_id(), name="Ada", at=at)
        raise RuntimeError("the caller gave up")

    with pytest.raises(RuntimeError):
        await _sent_by_transaction(engine, body)
    assert await Contact.count().run() == 0


@pytest.mark.parametrize(
    "lock",
    [
        "SELECT id FROM kith_contact WHERE id = {} FOR UPDATE",
        "SELECT id FROM kith_contact WHERE id = {} FOR NO KEY UPDATE",
        "SELECT pg_advisory_xact_lock(7) FROM kith_contact WHERE id = {}",
    ],
)
async def test_a_select_that_locks_holds_its_lock_until_the_transaction_ends(
    engine: KithPostgresEngine, kith: Kith, lock: str
) -> None:
    contact = await ContactService(kith).create(ContactCreate(name="Ada"))
    other = await asyncpg.connect(kith.settings.database_url)
    try:
        async with engine.transaction():
            await Contact.raw(lock, contact.id).run()
            await asyncio.sleep(0.05)
            # Another session cannot take the same lock while this transaction is open.
            with pytest.raises(asyncpg.LockNotAvailableError):
                await other.execute("SET lock_timeout = '50ms'")
                if "advisory" in lock:
                    await other.execute("BEGIN")
                    got = await other.fetchval("SELECT pg_try_advisory_xact_lock(7)")
                    await other.execute("ROLLBACK")
                    if not got:
                        raise asyncpg.LockNotAvailableError("held")
                else:
                    await other.execute(
                        "SELECT id FROM kith_contact WHERE id = $1 FOR UPDATE", contact.id
                    )
        await other.execute("SELECT id FROM kith_contact WHERE id = $1 FOR UPDATE", contact.id)
    finally:
        await other.close()
