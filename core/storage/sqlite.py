"""A piccolo SQLite engine that keeps its connections open.

Piccolo's stock engine opens a new connection for every query, which caps a small server at a few
hundred reads per second. This engine keeps one writer connection (serialised by a lock, used for
every write and transaction) and a few reader connections, each living in its own thread so the
event loop never waits on a lock or a slow scan. WAL mode lets readers run while a write is in
progress.

Short reads skip the thread hop: a read outside a transaction first runs on the event loop's own
thread, on a connection that gives up after a small time budget (and never waits on a lock); only
then does it move to a reader thread. Handing a query to a thread and its result back costs more
than a primary-key read itself (measured: about ten times the CPU of the read, and far more
wall time on a busy two-core machine, where each hop waits for the OS to schedule the other
thread), and most of a CRM's reads are such lookups. See docs/performance.md.

Write transactions skip it too: once ``BEGIN IMMEDIATE`` holds the write lock, nothing inside
the transaction waits, so BEGIN to COMMIT runs on the event loop's thread on the writer
connection (:class:`WriterSession`); only a BEGIN that meets another process's lock waits on
the writer's thread. Writes outside a transaction still take the writer's thread, since they
may wait for the lock.

The database file is its owner's only (mode 0600), like the key files beside it in
``KITH_HOME``: the engine creates it so before SQLite does, and SQLite gives the write-ahead log
and its index the database file's mode.

Where this meets piccolo's internals (statement entry points, transactions, converters), it
goes through :mod:`kith.storage._piccolo_internals`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kith.logs import get_logger
from kith.storage._piccolo_internals import (
    SQLiteEngineBase,
    TransactionConnection,
    register_sqlite_converters,
)

# After piccolo's engine module (imported by the above) has registered its own.
register_sqlite_converters()

_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = {busy_timeout_ms}",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -16000",
    # Deleted rows are overwritten with zeros, not left in free pages: a destroyed data key
    # must not be readable from the file afterwards. Builds differ in their default; say it.
    "PRAGMA secure_delete = ON",
)

# The writer's commits run on the event loop's thread; SQLite's automatic checkpoint would run
# there too, after a commit, syncing the disk twice while every request waits. The engine
# checkpoints on a reader's thread instead (see KithSQLiteEngine._after_commit).
# How large the write-ahead log may grow before a checkpoint copies it into the database:
# SQLite's default for its automatic checkpoint (1000 pages of 4 KiB).
CHECKPOINT_WAL_BYTES = 1000 * 4096
# What is left of the log's file when a commit starts it again from its beginning. The engine
# reads the log's size to decide on a checkpoint, and SQLite reuses a log file without
# shrinking it: once it had reached the checkpoint size, every commit after it started another
# checkpoint (measured: one for every two or three contact creates, a third of the server's CPU
# on a reader's thread). Below the checkpoint size, so that only a log that grew again counts.
WAL_SIZE_LIMIT_BYTES = CHECKPOINT_WAL_BYTES // 4
# A log this far past the checkpoint size means the checkpoints are not keeping up: a writer
# that commits again and again (a bulk import) appends to the log while a checkpoint on a
# reader's thread copies it, so no checkpoint ever covers the whole log, the log never starts
# again, and it grows by everything written (gigabytes during a million-row import). The next
# transaction then waits, holding the writer, while the whole log is copied.
WAL_BACKLOG_BYTES = 16 * CHECKPOINT_WAL_BYTES
_WRITER_PRAGMAS = (
    "PRAGMA wal_autocheckpoint = 0",
    f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}",
)

_READ_PREFIXES = ("select", "with", "pragma table_info", "explain")

FILE_MODE = 0o600
# The database file and those SQLite keeps beside it, which hold the same data.
_COMPANIONS = ("", "-wal", "-shm", "-journal")

log = get_logger("kith.storage")


def make_private(path: str) -> None:
    """Create the database file at ``path`` (mode 0600) unless it exists, and take group and
    other access away from it and its companion files where an older version left them."""
    if not path or path == ":memory:" or path.startswith("file:") or os.name != "posix":
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(descriptor)
    for suffix in _COMPANIONS:
        name = f"{path}{suffix}"
        try:
            info = os.stat(name)
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        # Another account's file (a deliberate shared set-up) is left as it is.
        if mode & 0o077 and info.st_uid == os.geteuid():
            with contextlib.suppress(FileNotFoundError):
                os.chmod(name, mode & 0o700)
                log.warning("database file made private", path=name, was=f"{mode:o}")


# Inline reads: how long one may hold the event loop before it is interrupted and handed to a
# reader thread. A primary-key read takes tens of microseconds; two milliseconds lets every such
# lookup (and small joins and pages) through while a scan still cannot stall other requests.
INLINE_BUDGET_S = 0.002
# How often (in SQLite virtual-machine instructions) the budget is checked: a Python call every
# thousand steps costs well under one percent of a query and reacts within tens of microseconds.
_PROGRESS_STEPS = 1000
# Statements that ran over the budget go straight to a reader thread afterwards, so a recurring
# scan does not pay for a wasted inline attempt every time. Bounded; oldest forgotten.
_SLOW_SQL_MEMORY = 256
# ... but only for a while: every this many runs a remembered statement tries inline again, and
# is forgotten when it fits. The budget is wall time, so a fast lookup that was merely paused
# (garbage collection, the OS scheduling another process) must not stay on the slow path.
_SLOW_SQL_RETRY_EVERY = 64
_RETRY_ELSEWHERE = frozenset(
    {sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY}
)


# Group commit: how many transactions may share one COMMIT, and how long the first may wait for
# it. A commit writes every page its transaction changed to the write-ahead log (and now and
# then checkpoints it): the contact, its emails and phones, their indexes, the audit and outbox
# rows. Transactions committed together write a page they share once. The limits bound how long
# a transaction's COMMIT waits and how long other processes wait for the write lock.
GROUP_MAX = 32
GROUP_MAX_AGE_S = 0.02

# A BEGIN that meets another process's write lock (``kith worker``, a CLI command) would wait
# up to the busy timeout; only that one moves to the writer's thread to wait there.
_LOCKED = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


class _NotInline(Exception):
    """A read that must move to a reader thread; ``slow`` when it ran over the budget (rather
    than meeting a lock, which is over the moment it is released)."""

    def __init__(self, slow: bool) -> None:
        self.slow = slow


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    if cursor.description is None:
        return []
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class ThreadedConnection:
    """One sqlite3 connection with a thread of its own: :meth:`execute` is a single hop to that
    thread; the ``_here`` methods run on the caller's (see :class:`WriterSession`)."""

    def __init__(
        self, connect_kwargs: dict[str, Any], busy_timeout_ms: int, pragmas: tuple[str, ...] = ()
    ) -> None:
        self._pragmas = pragmas
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kith-sqlite")
        # Not tied to its thread: the writer's transactions run their statements on the
        # caller's thread (see WriterSession), one user at a time under the writer lock.
        self._connect_kwargs = {**connect_kwargs, "check_same_thread": False}
        self._busy_timeout_ms = busy_timeout_ms
        self._connection: sqlite3.Connection | None = None

    def _open(self) -> None:
        connection = sqlite3.connect(**self._connect_kwargs)
        for pragma in (*_PRAGMAS, *self._pragmas):
            connection.execute(pragma.format(busy_timeout_ms=self._busy_timeout_ms))
        self._connection = connection

    def _run(self, sql: str, args: list[Any] | tuple[Any, ...]) -> list[dict[str, Any]]:
        if self._connection is None:
            self._open()
        assert self._connection is not None
        cursor = self._connection.execute(sql, args)
        try:
            return _rows(cursor)
        finally:
            cursor.close()

    async def execute(
        self, sql: str, args: list[Any] | tuple[Any, ...] = ()
    ) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, sql, args)

    def execute_here(
        self, sql: str, args: list[Any] | tuple[Any, ...] = ()
    ) -> list[dict[str, Any]]:
        """Run a statement on the calling thread; only while no hop to this connection's own
        thread is in flight (the writer lock's holder, between its awaited calls)."""
        return self._run(sql, args)

    def execute_many_here(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """:meth:`execute_here` of one statement for each of ``rows``."""
        if self._connection is None:
            self._open()
        assert self._connection is not None
        self._connection.executemany(sql, rows).close()

    @property
    def in_transaction(self) -> bool:
        return self._connection is not None and self._connection.in_transaction

    def try_begin_here(self, sql: str) -> list[dict[str, Any]] | None:
        """Begin a transaction on the calling thread unless that would wait for a lock (or the
        connection is not open yet: opening reads the file); None when it did not begin."""
        if self._connection is None:
            return None
        self._connection.execute("PRAGMA busy_timeout = 0")
        try:
            return self._run(sql, ())
        except sqlite3.OperationalError as exc:
            if (getattr(exc, "sqlite_errorcode", -1) & 0xFF) in _LOCKED:
                return None
            raise
        finally:
            self._connection.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)


class WriterSession:
    """The writer connection as a transaction sees it, lent for the transaction's length.

    A transaction runs on the event loop's thread, BEGIN to COMMIT. Between them nothing waits
    for another connection (``BEGIN IMMEDIATE`` holds the write lock and, in WAL mode, readers
    never block the writer), so each statement costs what SQLite takes to run it, usually tens
    of microseconds, where a hop to the writer's thread and back costs several times that in
    CPU and far more in wall time on a busy machine: a contact create would be a dozen hops.
    COMMIT does not sync the disk (``synchronous = NORMAL``, see docs/production.md). Only a
    BEGIN that would have to wait for another process's lock is handed to the writer's thread.
    The trade: a statement slow in itself (a large delete), and the WAL checkpoint SQLite runs
    after a commit every thousand pages or so, hold the event loop while they run.

    Transactions that end close together share one commit (:class:`_Group`): BEGIN, COMMIT
    and ROLLBACK go to the engine, which runs a transaction that joins an open group inside a
    savepoint; its COMMIT returns once the group's COMMIT has run.
    """

    __slots__ = ("_engine", "_writer", "released", "savepoint")

    def __init__(self, engine: KithSQLiteEngine, writer: ThreadedConnection) -> None:
        self._engine = engine
        self._writer = writer
        # Whether this transaction runs in a savepoint of a group opened by another.
        self.savepoint = False
        # Whether the writer was given back already (by a COMMIT that waits for its group).
        self.released = False

    async def execute(
        self, sql: str, args: list[Any] | tuple[Any, ...] = ()
    ) -> list[dict[str, Any]]:
        # piccolo's transaction boundaries (its savepoints run as any other statement).
        if sql[:5].upper() == "BEGIN":
            return await self._engine._begin(self, sql)
        if sql == "COMMIT":
            return await self._engine._commit(self)
        if sql == "ROLLBACK":
            return self._engine._rollback(self)
        return self.run_here(sql, args)

    def run_here(self, sql: str, args: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        try:
            return self._writer.execute_here(sql, args)
        except sqlite3.Error as exc:
            # Some errors (a full disk, say) end the whole transaction, and with it the work of
            # the transactions waiting for the group's commit.
            if not self._writer.in_transaction:
                self._engine._lose_group(exc)
            raise

    def run_many_here(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._writer.execute_many_here(sql, rows)
        except sqlite3.Error as exc:
            # Some errors (a full disk, say) end the whole transaction, and with it the work of
            # the transactions waiting for the group's commit.
            if not self._writer.in_transaction:
                self._engine._lose_group(exc)
            raise


class _Group:
    """One SQLite transaction shared by transactions that ended close together: each one's
    COMMIT, once its statements ran, waits here until the group's COMMIT, which the engine
    runs when the event loop next turns and the writer is free (or at once when the group is
    full or old). Durability is unchanged: no COMMIT returns before its work is committed.
    The price is latency: a transaction's COMMIT also waits for the transactions that joined
    the group after it, so a long one (an erasure) that joins delays the short ones before it
    by its length; none joins a group older than ``GROUP_MAX_AGE_S``."""

    __slots__ = ("opened", "scheduled", "waiting")

    def __init__(self) -> None:
        self.opened = time.monotonic()
        self.waiting: list[asyncio.Future[None]] = []
        self.scheduled = False


class InlineReader:
    """A read-only connection used directly on the calling thread (the event loop's), for reads
    short enough that a thread hop would cost more than the read.

    It never blocks for long: ``busy_timeout`` is 0, so a read that would wait for a lock (WAL
    recovery or a truncating checkpoint by another process) fails at once, and a progress handler
    interrupts a statement that runs past the budget. Either way the caller retries on a reader
    thread, which may wait. Reads are side-effect free, so re-running one is safe; ``query_only``
    makes sure nothing else ever runs here.
    """

    def __init__(self, connect_kwargs: dict[str, Any], budget_s: float) -> None:
        # Used by one thread at a time (one per thread, see KithSQLiteEngine._inline_reader),
        # but closed by whichever thread closes the engine, hence check_same_thread off. No
        # waiting from the start: some pragmas read the file, and another process may hold it.
        self._connection = sqlite3.connect(
            **{**connect_kwargs, "check_same_thread": False, "timeout": 0}
        )
        try:
            for pragma in _PRAGMAS:
                self._connection.execute(pragma.format(busy_timeout_ms=0))
            self._connection.execute("PRAGMA query_only = ON")
        except sqlite3.OperationalError as exc:
            self._connection.close()
            if (getattr(exc, "sqlite_errorcode", -1) & 0xFF) in _RETRY_ELSEWHERE:
                raise _NotInline(slow=False) from exc
            raise
        self._budget_s = budget_s
        self._deadline = 0.0
        self._connection.set_progress_handler(self._over_budget, _PROGRESS_STEPS)

    def _over_budget(self) -> bool:
        return time.perf_counter() > self._deadline

    def try_execute(self, sql: str, args: list[Any] | tuple[Any, ...]) -> list[dict[str, Any]]:
        """The rows; raises :class:`_NotInline` when the read should move to a reader thread."""
        self._deadline = time.perf_counter() + self._budget_s
        try:
            cursor = self._connection.execute(sql, args)
            try:
                return _rows(cursor)
            finally:
                cursor.close()
        except sqlite3.OperationalError as exc:
            # Extended result codes carry the primary code in their low byte. READONLY: a
            # statement that looked like a read but writes (``WITH ... INSERT``) takes the
            # threaded path it always took.
            code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
            if code in _RETRY_ELSEWHERE:
                slow = code in (sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_READONLY)
                raise _NotInline(slow) from exc
            raise

    def close(self) -> None:
        self._connection.close()


class KithSQLiteEngine(SQLiteEngineBase):
    """SQLite with persistent connections, WAL, a busy timeout and foreign keys on."""

    def __init__(
        self,
        path: str,
        readers: int = 2,
        busy_timeout_ms: int = 10_000,
        inline_budget_s: float = INLINE_BUDGET_S,
    ) -> None:
        super().__init__(path=path)
        self._busy_timeout_ms = busy_timeout_ms
        self._reader_count = readers
        self._writer_connection: ThreadedConnection | None = None
        self._readers: asyncio.Queue[ThreadedConnection] | None = None
        self._all_readers: list[ThreadedConnection] = []
        self._writer_lock = asyncio.Lock()
        # The open transaction that ended transactions wait to be committed with, if any.
        self._group: _Group | None = None
        # Transactions that committed, and COMMIT statements that ran for them.
        self.transactions_committed = 0
        self.commits = 0
        self.checkpoints = 0
        self._checkpointing = False
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._log_behind = False
        # How far into the log's file the last checkpoint started copying. Under a steady
        # stream of writes a checkpoint never covers the whole log (the writer appends while it
        # copies), so the log does not start again and its file only grows: its size alone
        # would start a checkpoint after every commit, each copying a few pages and syncing the
        # disk. Only what was written since the last one counts.
        self._copied_to = 0
        # 0 turns inline reads off: every read then hops to a reader thread.
        self._inline_budget_s = inline_budget_s
        # One inline connection per thread: an engine is normally used from one event loop, but
        # tests and tools may drive it from several threads, and a connection must not be used
        # by two at once.
        self._inline = threading.local()
        self._all_inline: list[InlineReader] = []
        self._inline_guard = threading.Lock()
        # Statement -> how many runs it has skipped the inline attempt since it was too slow.
        self._slow_sql: OrderedDict[str, int] = OrderedDict()
        self._private = False

    def _make_private(self) -> None:
        """Before the first connection creates or opens the file (see :func:`make_private`)."""
        if not self._private:
            make_private(self.path)
            self._private = True

    def _inline_reader(self) -> InlineReader:
        reader: InlineReader | None = getattr(self._inline, "reader", None)
        if reader is None:
            self._make_private()
            reader = InlineReader(self.connection_kwargs, self._inline_budget_s)
            self._inline.reader = reader
            with self._inline_guard:
                self._all_inline.append(reader)
        return reader

    def _read_inline(self, sql: str, args: list[Any]) -> list[dict[str, Any]] | None:
        """The rows, or None when the read should run on a reader thread."""
        if not self._inline_budget_s:
            return None
        skipped = self._slow_sql.get(sql)
        if skipped is not None and skipped < _SLOW_SQL_RETRY_EVERY:
            self._slow_sql[sql] = skipped + 1
            return None
        try:
            # Opening the connection is part of the attempt: it may meet a lock too.
            rows = self._inline_reader().try_execute(sql, args)
        except _NotInline as refused:
            if refused.slow:
                self._slow_sql[sql] = 0
                self._slow_sql.move_to_end(sql)
                if len(self._slow_sql) > _SLOW_SQL_MEMORY:
                    self._slow_sql.popitem(last=False)
            return None
        if skipped is not None:
            # pop: another thread using this engine may have forgotten it meanwhile.
            self._slow_sql.pop(sql, None)
        return rows

    def _writer(self) -> ThreadedConnection:
        if self._writer_connection is None:
            self._make_private()
            self._writer_connection = ThreadedConnection(
                self.connection_kwargs, self._busy_timeout_ms, _WRITER_PRAGMAS
            )
        return self._writer_connection

    def _reader_queue(self) -> asyncio.Queue[ThreadedConnection]:
        if self._readers is None:
            self._make_private()
            self._readers = asyncio.Queue()
            for _ in range(self._reader_count):
                reader = ThreadedConnection(self.connection_kwargs, self._busy_timeout_ms)
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
        return self._readers

    async def close(self) -> None:
        """Close every connection (the engine can be used again afterwards)."""
        if self._checkpoint_task is not None:
            await self._checkpoint_task
            self._checkpoint_task = None
        async with self._writer_lock:
            self._settle()
            if self._writer_connection is not None:
                # What SQLite's automatic checkpoint would have done by now.
                with contextlib.suppress(sqlite3.Error):
                    await self._writer_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                await self._writer_connection.close()
                self._writer_connection = None
        for reader in self._all_readers:
            await reader.close()
        self._all_readers = []
        self._readers = None
        with self._inline_guard:
            inline, self._all_inline = self._all_inline, []
        for inline_reader in inline:
            inline_reader.close()
        self._inline = threading.local()
        # The lock belongs to the event loop that created it; a new loop needs a new lock.
        self._writer_lock = asyncio.Lock()

    async def _execute(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        if sql.lstrip()[:20].lower().startswith(_READ_PREFIXES):
            rows = self._read_inline(sql, args)
            if rows is not None:
                return rows
            queue = self._reader_queue()
            reader = await queue.get()
            try:
                return await reader.execute(sql, args)
            finally:
                queue.put_nowait(reader)
        async with self._writer_lock:
            # On its own, the statement would join the open group's transaction.
            self._settle()
            await self._catch_up()
            rows = await self._writer().execute(sql, args)
        self._after_commit()
        return rows

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert many rows of plain values (a batch of an import) in the current transaction:
        one ``executemany``, whose loop runs in SQLite's module, not in Python."""
        transaction = self.current_transaction.get()
        if transaction is None:
            async with self.transaction():
                await self.insert_rows(table, columns, rows)
            return
        marks = ", ".join("?" for _ in columns)
        sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks})'
        session = transaction.connection
        assert isinstance(session, WriterSession)
        session.run_many_here(sql, rows)

    async def _execute_ddl(self, ddl: str) -> list[dict[str, Any]]:
        async with self._writer_lock:
            self._settle()
            return await self._writer().execute(ddl)

    async def _acquire_writer(self) -> WriterSession:
        await self._writer_lock.acquire()
        if self._log_behind:
            try:
                self._settle()
                await self._catch_up()
            except BaseException:
                self._writer_lock.release()
                raise
        return WriterSession(self, self._writer())

    async def _catch_up(self) -> None:
        """With the writer held and no transaction open: copy the whole log into the database
        when checkpoints fell behind, so that the next commit starts the log again."""
        if not self._log_behind:
            return
        self._log_behind = False
        if self._checkpoint_task is not None:
            await self._checkpoint_task
        # Nothing is written meanwhile, so this checkpoint covers the whole log.
        self._checkpointing = True
        self.checkpoints += 1
        await self._checkpoint(self._log_size())

    def _release_writer(self, connection: TransactionConnection) -> None:
        assert isinstance(connection, WriterSession)
        if not connection.released:
            self._give_back(connection)

    def _give_back(self, connection: WriterSession) -> None:
        """The writer back from a transaction that ended, its group committed or scheduled."""
        connection.released = True
        group = self._group
        if group is None or not group.waiting:
            self._writer_lock.release()
            return
        if len(group.waiting) >= GROUP_MAX or time.monotonic() - group.opened > GROUP_MAX_AGE_S:
            self._settle()
            self._writer_lock.release()
            return
        # Released first: a transaction waiting for the writer runs before the group's
        # commit is due, and joins it.
        self._writer_lock.release()
        if not group.scheduled:
            group.scheduled = True
            asyncio.get_running_loop().call_soon(self._commit_due, group)

    # -- group commit ------------------------------------------------------------------------

    async def _begin(self, session: WriterSession, sql: str) -> list[dict[str, Any]]:
        group = self._group
        if group is not None and time.monotonic() - group.opened > GROUP_MAX_AGE_S:
            # Its transactions have waited long enough: they do not wait for this one too.
            self._settle()
        if self._group is not None:
            session.savepoint = True
            return session.run_here(f"SAVEPOINT {_MEMBER}")
        rows = self._writer().try_begin_here(sql)
        if rows is None:
            rows = await self._writer().execute(sql)
        self._group = _Group()
        return rows

    async def _commit(self, session: WriterSession) -> list[dict[str, Any]]:
        group = self._group
        if group is None:
            # Its transaction ended already (an error rolled it back): SQLite says so.
            return session.run_here("COMMIT")
        if session.savepoint:
            session.run_here(f"RELEASE {_MEMBER}")
        waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        group.waiting.append(waiting)
        # The writer goes to the next transaction (which joins the group) or, when the loop
        # next turns with the writer free, the group commits.
        self._give_back(session)
        await waiting
        return []

    def _rollback(self, session: WriterSession) -> list[dict[str, Any]]:
        if self._group is None:
            # An error ended the transaction already; nothing is left to roll back.
            if not self._writer().in_transaction:
                return []
            return session.run_here("ROLLBACK")
        if session.savepoint:
            session.run_here(f"ROLLBACK TO {_MEMBER}")
            return session.run_here(f"RELEASE {_MEMBER}")
        # The group's first transaction: nothing else has joined it yet.
        self._group = None
        return session.run_here("ROLLBACK")

    def _commit_due(self, group: _Group) -> None:
        group.scheduled = False
        if self._group is not group or self._writer_lock.locked():
            # Committed already, or a transaction holds the writer: it commits or schedules
            # the group when it gives the writer back.
            return
        self._settle()

    def _settle(self) -> None:
        """Commit the open group, if any (with the writer held, or nobody holding it)."""
        group, self._group = self._group, None
        if group is None:
            return
        try:
            self._writer().execute_here("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if self._writer().in_transaction:
                    self._writer().execute_here("ROLLBACK")
            _fail(group, exc)
            return
        self.commits += 1
        self.transactions_committed += len(group.waiting)
        self._after_commit()
        for waiting in group.waiting:
            if not waiting.done():
                waiting.set_result(None)

    def _log_size(self) -> int:
        try:
            return os.stat(f"{self.path}-wal").st_size
        except OSError:
            return 0

    def _after_commit(self) -> None:
        """Start a checkpoint on a reader's thread when the write-ahead log has grown."""
        size = self._log_size()
        if not size:
            return
        if size >= WAL_BACKLOG_BYTES:
            self._log_behind = True
        if size < self._copied_to:
            # The log started again from its beginning (and its file was cut back).
            self._copied_to = 0
        if size - self._copied_to >= CHECKPOINT_WAL_BYTES and not self._checkpointing:
            self._checkpointing = True
            self.checkpoints += 1
            self._checkpoint_task = asyncio.get_running_loop().create_task(self._checkpoint(size))

    async def _checkpoint(self, size: int) -> None:
        # PASSIVE: copies what no reader still needs, without waiting for readers or writers;
        # the next commit after a complete one starts the log from its beginning again.
        try:
            queue = self._reader_queue()
            reader = await queue.get()
            try:
                await reader.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self._copied_to = size
            finally:
                queue.put_nowait(reader)
        except sqlite3.Error as exc:
            log.warning("checkpoint failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._checkpointing = False

    def _lose_group(self, exc: BaseException) -> None:
        group, self._group = self._group, None
        if group is not None:
            _fail(group, exc)


# The savepoint a transaction that joins an open group runs in (one at a time).
_MEMBER = "kith_group_member"


def _fail(group: _Group, exc: BaseException) -> None:
    for waiting in group.waiting:
        if not waiting.done():
            waiting.set_exception(
                sqlite3.OperationalError(
                    f"the transaction was not committed: {type(exc).__name__}: {exc}"
                )
            )
