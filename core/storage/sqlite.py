"""A piccolo SQLite engine that keeps its connections open.

Piccolo's stock engine opens a new connection for every query, which caps a small server at a few
hundred reads per second. This engine keeps one writer connection (serialised by a lock, used for
every write and transaction) and a few reader connections, each living in its own thread so the
event loop never blocks on disk. WAL mode lets the readers run while a write is in progress.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType
from piccolo.querystring import QueryString

_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = {busy_timeout_ms}",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -16000",
)

_READ_PREFIXES = ("select", "with", "pragma table_info", "explain")


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    if cursor.description is None:
        return []
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class ThreadedConnection:
    """One sqlite3 connection owned by one thread; every call is a single hop to that thread."""

    def __init__(self, connect_kwargs: dict[str, Any], busy_timeout_ms: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kith-sqlite")
        self._connect_kwargs = {**connect_kwargs, "check_same_thread": True}
        self._busy_timeout_ms = busy_timeout_ms
        self._connection: sqlite3.Connection | None = None

    def _open(self) -> None:
        connection = sqlite3.connect(**self._connect_kwargs)
        for pragma in _PRAGMAS:
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

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)


class KithSQLiteTransaction(SQLiteTransaction):
    """A transaction on the shared writer connection, holding the writer lock until it ends."""

    engine: KithSQLiteEngine

    async def get_connection(self) -> ThreadedConnection:  # type: ignore[override]
        await self.engine._writer_lock.acquire()
        return self.engine._writer()

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            self.engine.current_transaction.reset(self.context)
            self.engine._writer_lock.release()
        return exception is None


class KithSQLiteEngine(SQLiteEngine):
    """SQLite with persistent connections, WAL, a busy timeout and foreign keys on."""

    def __init__(self, path: str, readers: int = 2, busy_timeout_ms: int = 10_000) -> None:
        super().__init__(path=path)
        self._busy_timeout_ms = busy_timeout_ms
        self._reader_count = readers
        self._writer_connection: ThreadedConnection | None = None
        self._readers: asyncio.Queue[ThreadedConnection] | None = None
        self._all_readers: list[ThreadedConnection] = []
        self._writer_lock = asyncio.Lock()

    def _writer(self) -> ThreadedConnection:
        if self._writer_connection is None:
            self._writer_connection = ThreadedConnection(
                self.connection_kwargs, self._busy_timeout_ms
            )
        return self._writer_connection

    def _reader_queue(self) -> asyncio.Queue[ThreadedConnection]:
        if self._readers is None:
            self._readers = asyncio.Queue()
            for _ in range(self._reader_count):
                reader = ThreadedConnection(self.connection_kwargs, self._busy_timeout_ms)
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
        return self._readers

    async def close(self) -> None:
        """Close every connection (the engine can be used again afterwards)."""
        async with self._writer_lock:
            if self._writer_connection is not None:
                await self._writer_connection.close()
                self._writer_connection = None
        for reader in self._all_readers:
            await reader.close()
        self._all_readers = []
        self._readers = None
        # The lock belongs to the event loop that created it; a new loop needs a new lock.
        self._writer_lock = asyncio.Lock()

    async def _execute(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        if sql.lstrip()[:20].lower().startswith(_READ_PREFIXES):
            queue = self._reader_queue()
            reader = await queue.get()
            try:
                return await reader.execute(sql, args)
            finally:
                queue.put_nowait(reader)
        async with self._writer_lock:
            return await self._writer().execute(sql, args)

    async def run_querystring(self, querystring: QueryString, in_pool: bool = False) -> Any:
        query, args = querystring.compile_string(engine_type=self.engine_type)
        if self.log_queries:
            self.print_query(query_id=self.get_query_id(), query=str(querystring))
        transaction = self.current_transaction.get()
        if transaction is not None:
            return await transaction.connection.execute(query, args)
        return await self._execute(query, args)

    async def run_ddl(self, ddl: str, in_pool: bool = False) -> Any:
        transaction = self.current_transaction.get()
        if transaction is not None:
            return await transaction.connection.execute(ddl)
        async with self._writer_lock:
            return await self._writer().execute(ddl)

    def transaction(  # type: ignore[override]
        self,
        transaction_type: TransactionType = TransactionType.immediate,
        allow_nested: bool = True,
    ) -> KithSQLiteTransaction:
        return KithSQLiteTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )
