"""piccolo's PostgreSQL engine with a shortcut past the pool for statements outside transactions.

Taking a connection from asyncpg's pool and giving it back costs about as much CPU as running a
primary-key read over it (docs/performance.md), and most of Kith's statements are such reads.
So a statement outside a transaction keeps its connection checked out afterwards, up to
``HOT_CONNECTIONS`` of them, and the next one takes it straight from that short list. A
transaction takes one from the list too and, once it has committed, puts it back. Statements and
transactions beyond those running on hot connections use the pool as before.

A transaction sends BEGIN only before its first statement that needs one (see
:class:`_LazyConnection`): plain reads before it run on the transaction's connection as they
would inside it, and a transaction whose only writes were deferred runs them as one statement
and never sends BEGIN or COMMIT at all.

Hot connections hold no session state, as pooled ones do not (see ``_keep_session_state`` in
``database``). One that was closed (server restart, terminated backend) goes back to the pool,
which replaces it; one whose statement or transaction failed goes back too, so that the pool
resets it.
Statements reach this engine through piccolo's private ``_run_in_pool``, overridden in
:mod:`kith.storage._piccolo_internals`.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Sequence
from typing import Any

import asyncpg
from kith.storage._piccolo_internals import PostgresEngineBase
from kith.storage.prepared import Bound, run_together
from piccolo.engine.postgres import PostgresTransaction

# Few: they are taken from the pool's connections (Database.start sizes it), and a transaction
# that needs a connection must still find one there.
HOT_CONNECTIONS = 2


def is_open(connection: Any) -> bool:
    """Whether a connection checked out of the pool can still run statements."""
    try:
        return not connection.is_closed()
    except asyncpg.InterfaceError:
        # The pool took it back when it was closed: it is no longer ours to use.
        return False


# A statement that may run before its transaction's BEGIN: a plain select. Under READ
# COMMITTED (PostgreSQL's default, and the only level Kith uses) every statement sees what was
# committed when it started, inside a transaction or not, and a plain select takes no lock that
# the transaction would hold. Anything else begins the transaction first: writes, WITH (it may
# hold one), SAVEPOINT, and selects that lock rows or take advisory locks or change sequences.
_PLAIN_READ = re.compile(r"\s*select\b", re.IGNORECASE)
_NEEDS_TRANSACTION = re.compile(
    r"\bfor\s+(update|share|no\s+key\s+update|key\s+share)\b|pg_advisory|nextval|setval"
    r"|set_config|\b(insert|update|delete)\b",
    re.IGNORECASE,
)


def needs_transaction(sql: str) -> bool:
    """Whether ``sql`` must run after its transaction's BEGIN (see ``_PLAIN_READ``)."""
    return _PLAIN_READ.match(sql) is None or _select_needs_transaction(sql)


# Remembered per select: the same few shapes come again and again (prepared queries), and
# searching each one again cost a tenth of a contact create's CPU (measured).
@functools.lru_cache(maxsize=512)
def _select_needs_transaction(sql: str) -> bool:
    return _NEEDS_TRANSACTION.search(sql) is not None


class _LazyConnection:
    """A transaction's connection as statements see it: BEGIN goes out just before the first
    statement that needs it. A write's reads (is the contact restricted? its pseudonym?) each
    cost a round trip, and BEGIN and COMMIT one more each; a write whose own statements are all
    deferred (:meth:`kith.storage.prepared.Prepared.defer`) then needs neither: its one combined
    statement commits by itself, all or nothing."""

    __slots__ = ("_transaction", "raw")

    def __init__(self, transaction: _HotTransaction, raw: Any) -> None:
        self._transaction = transaction
        self.raw = raw

    async def fetch(self, sql: str, *args: Any) -> Any:
        await self._transaction.before(sql)
        return await self.raw.fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> Any:
        await self._transaction.before(sql)
        return await self.raw.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.raw, name)
        # Asked of asyncpg's class: a connection from the pool is a proxy whose methods are
        # plain functions returning coroutines, which would pass unwrapped (a COPY of a
        # transaction not begun yet would then commit on its own).
        if not inspect.iscoroutinefunction(getattr(asyncpg.Connection, name, None)):
            return found  # asyncpg's transaction object, is_closed()...
        started = self._transaction.start

        async def after_begin(*args: Any, **kwargs: Any) -> Any:
            # Any other way of running a statement (fetchrow, COPY...) is in the transaction.
            if not self._transaction.begun:
                await started()
            return await found(*args, **kwargs)

        return after_begin


class _HotTransaction(PostgresTransaction):
    """A transaction on a hot connection, given back to the list once it has committed.

    Statements deferred in it (:meth:`kith.storage.prepared.Prepared.defer`) run as one
    statement just before COMMIT: the audit entry and the outbox event of a write cost one
    round trip, not one each. BEGIN is sent only when a statement needs it
    (:class:`_LazyConnection`)."""

    __slots__ = ("_alone", "begun", "deferred")
    engine: KithPostgresEngine

    def __init__(self, engine: KithPostgresEngine, allow_nested: bool = True) -> None:
        super().__init__(engine=engine, allow_nested=allow_nested)
        self.deferred: list[Bound] = []
        # Whether BEGIN was sent; whether the transaction's one statement runs without it.
        self.begun = False
        self._alone = False

    async def begin(self) -> None:
        # Sent by the first statement that needs it (see before()).
        pass

    async def start(self) -> None:
        await self.transaction.start()
        self.begun = True

    async def before(self, sql: str) -> None:
        """Send BEGIN if ``sql`` is the first statement that needs it."""
        if not (self.begun or self._alone) and needs_transaction(sql):
            await self.start()

    async def commit(self) -> None:
        statements, self.deferred = self.deferred, []
        if self.begun:
            await run_together(self.engine, statements)
            await super().commit()
            return
        # Nothing was written yet: the deferred statements are the whole write, and as one
        # statement (run_together) they commit together or not at all.
        self._alone = True
        try:
            await run_together(self.engine, statements)
        except BaseException:
            self._rolled_back = True  # the statement failed: nothing of it is stored
            raise
        self._committed = True

    async def rollback(self) -> None:
        self.deferred = []
        if self.begun:
            await super().rollback()
        self._rolled_back = True

    async def get_connection(self) -> Any:
        return _LazyConnection(self, await self.engine._take())

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        committed = False
        try:
            if exception:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
                committed = True
        finally:
            await self.engine._give_back(self.connection.raw, hot=committed)
            self.engine.current_transaction.reset(self.context)
        return exception is None


class KithPostgresEngine(PostgresEngineBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hot: list[Any] = []  # idle connections, checked out of the pool

    async def _take(self) -> Any:
        assert self.pool is not None
        while self._hot:
            connection = self._hot.pop()
            if is_open(connection):
                return connection
            # Does nothing when the pool has already taken it back.
            await self.pool.release(connection)
        return await self.pool.acquire()

    async def _give_back(self, connection: Any, *, hot: bool) -> None:
        assert self.pool is not None
        if hot and len(self._hot) < HOT_CONNECTIONS:
            self._hot.append(connection)
        else:
            await self.pool.release(connection)

    async def _execute_pooled(self, sql: str, args: Sequence[Any]) -> Any:
        connection = await self._take()
        try:
            response = await connection.fetch(sql, *args)
        except BaseException:
            await self._give_back(connection, hot=False)
            raise
        await self._give_back(connection, hot=True)
        return response

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert many rows of plain values (a batch of an import) in the current transaction,
        with ``COPY``: PostgreSQL's bulk load, which neither parses nor plans a statement of
        thousands of parameters as a multi-row insert of the same values does."""
        transaction = self.current_transaction.get()
        if transaction is None:
            async with self.transaction():
                await self.insert_rows(table, columns, rows)
            return
        # Through the transaction's connection, which sends BEGIN first if it is not sent.
        await transaction.connection.copy_records_to_table(
            table, records=rows, columns=list(columns)
        )

    def transaction(self, allow_nested: bool = True) -> PostgresTransaction:
        if self.pool is None:
            return super().transaction(allow_nested)
        return _HotTransaction(engine=self, allow_nested=allow_nested)

    async def close_connection_pool(self) -> None:
        # The pool waits for every checked-out connection before it closes.
        hot, self._hot = self._hot, []
        if self.pool is not None:
            for connection in hot:
                await self.pool.release(connection)
        await super().close_connection_pool()


__all__ = ["HOT_CONNECTIONS", "KithPostgresEngine", "is_open"]
