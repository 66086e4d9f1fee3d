"""piccolo's PostgreSQL engine with a shortcut past the pool for statements outside transactions.

Taking a connection from asyncpg's pool and giving it back costs about as much CPU as running a
primary-key read over it (docs/performance.md), and most of Kith's statements are such reads.
So a statement outside a transaction keeps its connection checked out afterwards, up to
``HOT_CONNECTIONS`` of them, and the next one takes it straight from that short list. A
transaction takes one from the list too and, once it has committed, puts it back. Statements and
transactions beyond those running on hot connections use the pool as before.

Hot connections hold no session state, as pooled ones do not (see ``_keep_session_state`` in
``database``). One that was closed (server restart, terminated backend) goes back to the pool,
which replaces it; one whose statement or transaction failed goes back too, so that the pool
resets it.
Statements reach this engine through piccolo's private ``_run_in_pool``, overridden in
:mod:`kith.storage._piccolo_internals`.
"""

from __future__ import annotations

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


class _HotTransaction(PostgresTransaction):
    """A transaction on a hot connection, given back to the list once it has committed.

    Statements deferred in it (:meth:`kith.storage.prepared.Prepared.defer`) run as one
    statement just before COMMIT: the audit entry and the outbox event of a write cost one
    round trip, not one each."""

    __slots__ = ("deferred",)
    engine: KithPostgresEngine

    def __init__(self, engine: KithPostgresEngine, allow_nested: bool = True) -> None:
        super().__init__(engine=engine, allow_nested=allow_nested)
        self.deferred: list[Bound] = []

    async def commit(self) -> None:
        if self.deferred:
            statements, self.deferred = self.deferred, []
            await run_together(self.engine, statements)
        await super().commit()

    async def get_connection(self) -> Any:
        return await self.engine._take()

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
            await self.engine._give_back(self.connection, hot=committed)
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
