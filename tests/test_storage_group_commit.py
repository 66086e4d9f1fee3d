"""Group commit on SQLite: transactions that end close together share one COMMIT, each one's
work is committed (readable by another connection) when its transaction returns, and a
transaction that fails or rolls back loses only its own work."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kith.storage import sqlite as kith_sqlite
from kith.storage.sqlite import KithSQLiteEngine, ThreadedConnection
from piccolo.columns import Integer, Text, Varchar
from piccolo.table import Table


class Note(Table, tablename="kith_test_group_note"):
    name = Varchar(length=50, unique=True)
    n = Integer(default=0)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[KithSQLiteEngine]:
    engine = KithSQLiteEngine(path=str(tmp_path / "group.sqlite3"))
    Note._meta.db = engine
    try:
        await Note.create_table().run()
        yield engine
    finally:
        await engine.close()


def committed_names(engine: KithSQLiteEngine) -> list[str]:
    """What another connection (another process, a backup) finds in the file."""
    with sqlite3.connect(engine.path) as other:
        rows = other.execute("SELECT name FROM kith_test_group_note ORDER BY name").fetchall()
    return [name for (name,) in rows]


async def write(engine: KithSQLiteEngine, name: str, *, fail: bool = False) -> list[str]:
    """One transaction inserting ``name``; what another connection sees once it returned."""
    async with engine.transaction():
        await Note.insert(Note(name=name)).run()
        # Other transactions run meanwhile and queue for the writer.
        await asyncio.sleep(0)
        await Note.update({Note.n: Note.n + 1}).where(Note.name == name).run()
        if fail:
            raise RuntimeError("refused")
    return committed_names(engine)


async def test_concurrent_transactions_share_commits_and_each_is_committed_when_it_returns(
    engine: KithSQLiteEngine,
) -> None:
    names = [f"note{i:02d}" for i in range(40)]
    seen = await asyncio.gather(*(write(engine, name) for name in names))
    for name, visible in zip(names, seen, strict=True):
        assert name in visible
    assert committed_names(engine) == names
    assert engine.transactions_committed == 40
    assert engine.commits < 40
    rows = await Note.select(Note.name, Note.n).order_by(Note.name).run()
    assert [(row["name"], row["n"]) for row in rows] == [(name, 1) for name in names]


async def test_a_failing_transaction_loses_only_its_own_work(engine: KithSQLiteEngine) -> None:
    async def duplicate() -> None:
        async with engine.transaction():
            await Note.insert(Note(name="twin-extra")).run()
            await asyncio.sleep(0)
            # The unique name is taken by a transaction of the same group.
            await Note.insert(Note(name="twin")).run()

    outcomes = await asyncio.gather(
        write(engine, "twin"),
        write(engine, "refused", fail=True),
        duplicate(),
        write(engine, "other"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], RuntimeError)
    assert isinstance(outcomes[2], sqlite3.IntegrityError)
    assert committed_names(engine) == ["other", "twin"]


async def test_a_write_outside_a_transaction_does_not_join_an_open_group(
    engine: KithSQLiteEngine,
) -> None:
    async def single() -> None:
        await Note.insert(Note(name="alone")).run()
        # Committed on its own: another connection sees it at once.
        assert "alone" in committed_names(engine)

    await asyncio.gather(write(engine, "a"), single(), write(engine, "b"))
    assert committed_names(engine) == ["a", "alone", "b"]


async def test_a_failed_group_commit_fails_every_transaction_in_it(
    engine: KithSQLiteEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ThreadedConnection.execute_here

    def execute_here(self: ThreadedConnection, sql: str, args: object = ()) -> object:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, sql, args)  # type: ignore[arg-type]

    monkeypatch.setattr(ThreadedConnection, "execute_here", execute_here)
    outcomes = await asyncio.gather(
        *(write(engine, f"lost{i}") for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(outcome, sqlite3.OperationalError) for outcome in outcomes)
    monkeypatch.undo()
    assert committed_names(engine) == []
    # The writer is free and works afterwards.
    assert "after" in await write(engine, "after")


async def test_a_group_is_committed_at_once_when_full(
    engine: KithSQLiteEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kith_sqlite, "GROUP_MAX", 3)
    await asyncio.gather(*(write(engine, f"n{i}") for i in range(9)))
    assert engine.transactions_committed == 9
    assert engine.commits >= 3
    assert len(committed_names(engine)) == 9


def in_database_file(engine: KithSQLiteEngine) -> list[str]:
    """The names in the database file itself, without what its write-ahead log still holds."""
    with sqlite3.connect(f"file:{engine.path}?mode=ro&immutable=1", uri=True) as file_only:
        try:
            rows = file_only.execute("SELECT name FROM kith_test_group_note ORDER BY name")
        except sqlite3.OperationalError:  # the table itself is still in the log
            return []
        return [name for (name,) in rows.fetchall()]


async def test_the_log_is_checkpointed_into_the_database_as_it_grows(
    engine: KithSQLiteEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database file has the table but not the rows yet: they are in the log.
    await write(engine, "first")
    assert in_database_file(engine) == []
    monkeypatch.setattr(kith_sqlite, "CHECKPOINT_WAL_BYTES", 1)
    await write(engine, "second")
    assert engine._checkpoint_task is not None
    await engine._checkpoint_task
    assert in_database_file(engine) == ["first", "second"]


class Page(Table, tablename="kith_test_group_page"):
    body = Text()


async def test_the_log_is_checkpointed_once_per_log_size_not_after_every_commit(
    engine: KithSQLiteEngine,
) -> None:
    # SQLite reuses the log file from its start after a checkpoint without shrinking it; the
    # engine must not take the file's size for the log's and checkpoint after every commit.
    Page._meta.db = engine
    await Page.create_table().run()
    body = "x" * 3000
    written = 0
    while written < 3 * kith_sqlite.CHECKPOINT_WAL_BYTES:
        async with engine.transaction():
            await Page.insert(Page(body=body)).run()
        written += len(body)
        if engine._checkpoint_task is not None:
            await engine._checkpoint_task
    # About 4,000 commits of two or three pages each: a dozen logs' worth, so a dozen
    # checkpoints (reading the file's size instead gave one after nearly every commit).
    assert 2 <= engine.checkpoints <= engine.commits // 50


async def test_a_writer_that_never_pauses_does_not_grow_the_log_without_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bulk import commits again and again while a checkpoint copies the log on a reader's
    # thread; each checkpoint covered only the log as it was when it started, so the log never
    # started again and grew by everything written (5 GB a few minutes into a million rows).
    # Smaller sizes than the engine's, so that a few megabytes show it.
    monkeypatch.setattr(kith_sqlite, "CHECKPOINT_WAL_BYTES", 64 * 1024)
    monkeypatch.setattr(kith_sqlite, "WAL_BACKLOG_BYTES", 512 * 1024)
    monkeypatch.setattr(
        kith_sqlite,
        "_WRITER_PRAGMAS",
        ("PRAGMA wal_autocheckpoint = 0", "PRAGMA journal_size_limit = 16384"),
    )
    engine = KithSQLiteEngine(path=str(tmp_path / "bulk.sqlite3"))
    Page._meta.db = engine
    try:
        await Page.create_table().run()
        body = "x" * 3000
        largest = 0
        for _ in range(400):
            async with engine.transaction():
                await Page.insert(*(Page(body=body) for _ in range(8))).run()
            largest = max(largest, Path(f"{engine.path}-wal").stat().st_size)
        written = 400 * 8 * len(body)
        assert largest < 4 * kith_sqlite.WAL_BACKLOG_BYTES < written
        assert await Page.count().run() == 400 * 8
    finally:
        await engine.close()


async def test_a_writer_that_never_pauses_starts_a_checkpoint_per_log_size_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While the writer commits again and again, no checkpoint covers the whole log and the log
    # does not start again; its file's size alone then started a checkpoint (copying a few
    # pages and syncing the disk) after nearly every commit.
    monkeypatch.setattr(kith_sqlite, "CHECKPOINT_WAL_BYTES", 256 * 1024)
    engine = KithSQLiteEngine(path=str(tmp_path / "steady.sqlite3"))
    Page._meta.db = engine
    try:
        await Page.create_table().run()
        body = "x" * 3000
        for _ in range(1200):
            async with engine.transaction():
                await Page.insert(Page(body=body)).run()
        # A row of a page and its table's last page: two pages' worth of log each, at most.
        logged = 1200 * 2 * (4096 + 24)
        assert engine.checkpoints <= 2 * logged // kith_sqlite.CHECKPOINT_WAL_BYTES
        assert await Page.count().run() == 1200
    finally:
        await engine.close()
