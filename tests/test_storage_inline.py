"""Inline reads on SQLite: short reads run on the event loop's thread, slow or locked ones move
to a reader thread, and slow statements are remembered for a while (and boundedly)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kith.runtime import Kith
from kith.schemas import ContactCreate
from kith.services.contacts import ContactService
from kith.storage import sqlite as kith_sqlite
from kith.storage.sqlite import InlineReader, KithSQLiteEngine, ThreadedConnection
from kith.tables import Contact
from piccolo.querystring import QueryString

# Far above any read here: the statement always fits. (The budget is wall time, so a "short"
# read must not depend on the machine being idle.)
AMPLE_S = 30.0
# Far below any statement of more than _PROGRESS_STEPS virtual-machine steps: the progress
# handler interrupts it at its first check, however fast the machine. (0 would turn inline off.)
TINY_S = 1e-9


def counting(limit: int) -> str:
    """A read of a few times ``limit`` VM steps whose result is easy to check."""
    return (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < "
        f"{limit}) SELECT count(*) AS n, sum(x) AS total FROM c"
    )


def counted(limit: int) -> list[dict[str, Any]]:
    return [{"n": limit, "total": limit * (limit + 1) // 2}]


class Attempts:
    """What the engine did with each read: inline attempts (and how they ended) and reads run
    on a reader thread. Wraps the real methods, so the reads themselves are real."""

    def __init__(self) -> None:
        self.inline: list[tuple[str, str]] = []  # (sql, "ok" | "slow" | "lock")
        self.threaded: list[str] = []

    def inline_of(self, sql: str) -> list[str]:
        return [outcome for seen, outcome in self.inline if seen == sql]

    def threaded_of(self, sql: str) -> int:
        return self.threaded.count(sql)


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Attempts]:
    record = Attempts()
    real_try = InlineReader.try_execute
    real_execute = ThreadedConnection.execute

    def try_execute(self: InlineReader, sql: str, args: Any) -> list[dict[str, Any]]:
        try:
            rows = real_try(self, sql, args)
        except kith_sqlite._NotInline as refused:
            record.inline.append((sql, "slow" if refused.slow else "lock"))
            raise
        record.inline.append((sql, "ok"))
        return rows

    async def execute(self: ThreadedConnection, sql: str, args: Any = ()) -> Any:
        record.threaded.append(sql)
        return await real_execute(self, sql, args)

    monkeypatch.setattr(InlineReader, "try_execute", try_execute)
    monkeypatch.setattr(ThreadedConnection, "execute", execute)
    yield record


async def fresh_engine(kith: Kith, budget_s: float) -> KithSQLiteEngine:
    """The test's engine with no connection open, whose inline reads get ``budget_s``."""
    if kith.database.kind != "sqlite":
        pytest.skip("the SQLite engine's inline reads")
    engine = kith.database.engine
    assert isinstance(engine, KithSQLiteEngine)
    await engine.close()
    # Reads of the start-up that overran their budget on a busy machine are remembered too;
    # each test counts only its own.
    engine._slow_sql.clear()
    set_budget(engine, budget_s)
    return engine


def set_budget(engine: KithSQLiteEngine, budget_s: float) -> None:
    # An inline connection keeps the budget it was opened with; change those already open too.
    engine._inline_budget_s = budget_s
    for reader in engine._all_inline:
        reader._budget_s = budget_s


async def read(engine: KithSQLiteEngine, sql: str) -> Any:
    return await engine.run_querystring(QueryString(sql))


async def test_a_short_read_runs_inline_without_a_reader_thread(
    kith: Kith, attempts: Attempts
) -> None:
    engine = await fresh_engine(kith, AMPLE_S)
    ada = await ContactService(kith).create(ContactCreate(name="Ada"))
    attempts.inline.clear()
    attempts.threaded.clear()  # the create's writes, on the writer's thread

    assert await read(engine, "SELECT 1 AS one") == [{"one": 1}]
    rows = await Contact.select(Contact.id, Contact.kind).where(Contact.id == ada.id)
    assert rows == [{"id": ada.id, "kind": ada.kind}]

    assert [outcome for _, outcome in attempts.inline] == ["ok", "ok"]
    assert attempts.threaded == []
    assert engine._readers is None
    assert engine._all_readers == []
    assert len(engine._all_inline) == 1


async def test_a_slow_read_moves_to_a_reader_thread_and_is_remembered(
    kith: Kith, attempts: Attempts
) -> None:
    engine = await fresh_engine(kith, TINY_S)
    sql = counting(100_000)

    assert await read(engine, sql) == counted(100_000)  # complete, though interrupted inline
    assert attempts.inline_of(sql) == ["slow"]
    assert attempts.threaded_of(sql) == 1
    assert len(engine._all_readers) >= 1
    assert engine._slow_sql == {sql: 0}

    assert await read(engine, sql) == counted(100_000)
    assert attempts.inline_of(sql) == ["slow"]  # no second inline attempt
    assert attempts.threaded_of(sql) == 2
    assert engine._slow_sql == {sql: 1}


async def test_a_remembered_statement_tries_inline_again_and_is_forgotten_once_it_fits(
    kith: Kith, attempts: Attempts
) -> None:
    engine = await fresh_engine(kith, TINY_S)
    every = kith_sqlite._SLOW_SQL_RETRY_EVERY
    sql = counting(5_000)

    async def run() -> None:
        assert await read(engine, sql) == counted(5_000)

    await run()
    assert attempts.inline_of(sql) == ["slow"]
    for skipped in range(1, every + 1):
        await run()
        assert engine._slow_sql[sql] == skipped
    assert attempts.inline_of(sql) == ["slow"]  # every one of those went straight to a thread

    await run()  # retried inline, still too slow: remembered afresh
    assert attempts.inline_of(sql) == ["slow", "slow"]
    assert engine._slow_sql[sql] == 0
    for _ in range(every):
        await run()
    assert attempts.inline_of(sql) == ["slow", "slow"]

    set_budget(engine, AMPLE_S)
    threaded = attempts.threaded_of(sql)
    await run()  # retried inline, fits this time
    assert attempts.inline_of(sql) == ["slow", "slow", "ok"]
    assert sql not in engine._slow_sql
    for _ in range(3):
        await run()
    assert attempts.inline_of(sql) == ["slow", "slow", "ok", "ok", "ok", "ok"]
    assert attempts.threaded_of(sql) == threaded


async def test_slow_statements_are_remembered_boundedly_oldest_forgotten_first(
    kith: Kith, attempts: Attempts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kith_sqlite, "_SLOW_SQL_MEMORY", 3)
    monkeypatch.setattr(kith_sqlite, "_SLOW_SQL_RETRY_EVERY", 1)
    engine = await fresh_engine(kith, TINY_S)
    limits = {counting(limit): limit for limit in range(2_000, 2_005)}
    s0, s1, s2, s3, s4 = limits

    async def run(sql: str) -> list[str]:
        assert await read(engine, sql) == counted(limits[sql])
        return attempts.inline_of(sql)

    for sql in (s0, s1, s2, s3, s4):
        assert await run(sql) == ["slow"]
    assert list(engine._slow_sql) == [s2, s3, s4]

    assert await run(s0) == ["slow", "slow"]  # forgotten, so tried inline again
    assert list(engine._slow_sql) == [s3, s4, s0]
    assert await run(s3) == ["slow"]  # remembered: skips the inline attempt
    assert list(engine._slow_sql) == [s3, s4, s0]
    assert await run(s3) == ["slow", "slow"]  # due for a retry, too slow again: newest now
    assert list(engine._slow_sql) == [s4, s0, s3]
    assert await run(s1) == ["slow", "slow"]
    assert list(engine._slow_sql) == [s0, s3, s1]


class ExclusiveWriter:
    """Another connection in exclusive locking mode with a write: in WAL mode it keeps every
    other connection from reading the file until it closes. It can only take the lock while no
    other connection has the file open (a WAL connection holds a shared lock while open)."""

    def __init__(self, path: Any) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA locking_mode = EXCLUSIVE")
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.execute("INSERT INTO t (x) VALUES (3)")
        self.released = threading.Event()

    def release(self) -> None:
        if self.released.is_set():
            return
        self.connection.execute("COMMIT")
        self.connection.close()
        self.released.set()


async def scratch_table(engine: KithSQLiteEngine) -> None:
    await engine.run_ddl("CREATE TABLE t (x INTEGER)")
    await engine.run_querystring(QueryString("INSERT INTO t (x) VALUES (1), (2)"))


def lock_state_at_each_inline_try(
    monkeypatch: pytest.MonkeyPatch, locker: ExclusiveWriter
) -> list[bool]:
    """Whether the lock was already released at each inline attempt, as they happen."""
    released_when_tried: list[bool] = []
    real_try = InlineReader.try_execute

    def try_execute(self: InlineReader, sql: str, args: Any) -> list[dict[str, Any]]:
        released_when_tried.append(locker.released.is_set())
        return real_try(self, sql, args)

    monkeypatch.setattr(InlineReader, "try_execute", try_execute)
    return released_when_tried


async def test_a_read_that_meets_a_lock_waits_on_a_reader_thread_and_is_not_remembered(
    kith: Kith, attempts: Attempts, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await fresh_engine(kith, AMPLE_S)
    await scratch_table(engine)
    await engine.close()  # the writer's connection would keep the lock from being taken
    locker = ExclusiveWriter(kith.settings.sqlite_path)
    # Opening the inline connection runs pragmas that read the file (journal_mode, synchronous,
    # cache_size), which the lock blocks (see the next test). Open it with only those that do
    # not, so that it is the read itself that meets the lock.
    with monkeypatch.context() as patched:
        harmless = ("foreign_keys", "busy_timeout", "temp_store")
        pragmas = tuple(p for p in kith_sqlite._PRAGMAS if any(n in p for n in harmless))
        assert len(pragmas) == len(harmless)
        patched.setattr(kith_sqlite, "_PRAGMAS", pragmas)
        engine._inline_reader()
    sql = "SELECT x FROM t ORDER BY x"
    released_when_tried = lock_state_at_each_inline_try(monkeypatch, locker)
    asyncio.get_running_loop().call_later(0.2, locker.release)
    try:
        rows = await read(engine, sql)
    finally:
        locker.release()  # (had the read failed before the lock was released)

    assert released_when_tried == [False]
    assert attempts.inline_of(sql) == ["lock"]  # the inline attempt was refused by the lock
    assert locker.released.is_set()  # the reader thread waited for it
    assert rows == [{"x": 1}, {"x": 2}, {"x": 3}]
    assert attempts.threaded_of(sql) == 1
    assert sql not in engine._slow_sql

    assert await read(engine, sql) == rows  # straight back to inline
    assert attempts.inline_of(sql) == ["lock", "ok"]
    assert attempts.threaded_of(sql) == 1


async def test_opening_the_inline_connection_does_not_wait_for_a_lock(
    kith: Kith, attempts: Attempts, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await fresh_engine(kith, AMPLE_S)
    await scratch_table(engine)
    await engine.close()
    locker = ExclusiveWriter(kith.settings.sqlite_path)
    sql = "SELECT x FROM t ORDER BY x"
    released_when_tried = lock_state_at_each_inline_try(monkeypatch, locker)
    # Released from another thread: were it released from the loop, a loop blocked in the
    # inline connection's first pragma would only get to it after sqlite3's 5 s timeout.
    timer = threading.Timer(0.2, locker.release)
    timer.start()
    try:
        rows = await read(engine, sql)
    finally:
        timer.join()

    assert rows == [{"x": 1}, {"x": 2}, {"x": 3}]
    # The read should give up inline at once and wait on a reader thread, rather than the event
    # loop's thread waiting for the lock (opening the inline connection) before its attempt.
    assert True not in released_when_tried, "the event loop's thread waited for the lock"
    assert attempts.threaded_of(sql) == 1


async def test_two_threads_retrying_one_remembered_statement_both_get_rows(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine may be driven from several threads (one inline connection each), and the
    inline attempt runs outside the GIL, so another thread's read can run in the middle."""
    engine = await fresh_engine(kith, AMPLE_S)
    sql = counting(5_000)
    engine._slow_sql[sql] = kith_sqlite._SLOW_SQL_RETRY_EVERY  # due for an inline retry
    other_rows: list[Any] = []
    real_try = InlineReader.try_execute

    def try_execute(self: InlineReader, sql: str, args: Any) -> list[dict[str, Any]]:
        rows = real_try(self, sql, args)
        if threading.current_thread() is threading.main_thread() and not other_rows:
            # Another thread's read of the same statement, while this one's is under way.
            other = threading.Thread(target=lambda: other_rows.append(engine._read_inline(sql, [])))
            other.start()
            other.join()
        return rows

    monkeypatch.setattr(InlineReader, "try_execute", try_execute)
    assert await read(engine, sql) == counted(5_000)
    assert other_rows == [counted(5_000)]
    assert sql not in engine._slow_sql
