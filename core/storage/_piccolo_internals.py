"""Everything Kith's storage does with piccolo beyond its documented API, in one place.

The engines and prepared queries reach into piccolo for speed (docs/performance.md); they do
so only through this module. tests/test_storage_piccolo_internals.py pins each dependency, so
a piccolo upgrade that changes one fails there by name, and pyproject.toml allows only the
piccolo versions that test passed on. What is relied on, and why:

- ``Engine.run_querystring(querystring, in_pool)`` and ``run_ddl(ddl, in_pool)``: every
  statement reaches an engine through them. :class:`SQLiteEngineBase` overrides both to use
  persistent connections, reproducing what piccolo's do around a statement: ``compile_string``,
  logging (``log_queries``, ``get_query_id``, ``print_query``) and ``current_transaction``,
  the context variable holding the running transaction, whose ``connection`` runs statements.
- ``SQLiteEngine.connection_kwargs``, which Kith's connections open with: piccolo's
  ``detect_types`` makes the converters below apply, ``isolation_level=None`` makes statements
  commit on their own and transactions piccolo's ``BEGIN``/``COMMIT``.
- ``SQLiteTransaction``: ``__aenter__`` gets its connection from ``get_connection()``
  (overridden to lend the engine's writer), then runs ``begin()`` (overridden to give the
  writer back if it fails); ``begin``, ``commit``, ``rollback`` and savepoints run
  ``connection.execute(sql)``. ``__aexit__`` is reproduced, with the private ``_parent``,
  ``_committed``, ``_rolled_back`` and ``context``, to give the writer back, not close it.
- ``piccolo.engine.sqlite.CONVERTERS``, registered with sqlite3 process-wide when that module
  is imported: cheaper equivalents replace those of UUID, TIMESTAMPTZ, BOOLEAN and INTEGER, the
  declared types of piccolo's ``UUID``, ``Timestamptz``, ``Boolean`` and ``Integer`` columns.
- ``PostgresEngine._run_in_pool(query, args)``, what ``run_querystring`` and ``run_ddl`` call
  for a statement outside a transaction while a pool runs: overridden for hot connections.
- ``QueryString(template, *args, query_type=, table=)`` and ``compile_string(engine_type)``:
  a prepared query is compiled once with marker objects as values, which piccolo passes into
  the arguments unchanged; engines only call ``compile_string`` and ``__str__`` on what they
  run (and piccolo's read ``query_type`` and ``table``).
- ``Query._validate()``, ``querystrings``, ``_process_results(rows)`` and
  ``callback_delegate.invoke``: what ``run()`` of ``Query``, ``Select`` and ``Objects`` does
  with a one-statement query, reproduced by :func:`compile_once` and :func:`process_rows`.
- ``output_delegate._output`` (``load_json``, ``as_objects``, ``nested``),
  ``columns_delegate.selected_columns``, ``M2MSelect``, ``_raw_response_callback`` and
  ``callback_delegate._callbacks``: what tells a select whose processing returns the engine's
  rows unchanged (:func:`rows_as_returned`).

``Table._meta.db`` (a table's engine) is piccolo's documented table metadata, used as such.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
import uuid
from abc import abstractmethod
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from piccolo.columns.m2m import M2MSelect
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType
from piccolo.query.base import Query
from piccolo.query.methods.objects import Objects
from piccolo.query.methods.select import Select
from piccolo.query.mixins import CallbackType
from piccolo.querystring import QueryString
from piccolo.table import Table

# -- SQLite engine ---------------------------------------------------------------------------


class TransactionConnection(Protocol):
    """What piccolo's SQLite transaction needs of its connection."""

    async def execute(
        self, sql: str, args: list[Any] | tuple[Any, ...] = ()
    ) -> list[dict[str, Any]]: ...


class SQLiteEngineBase(SQLiteEngine):
    """piccolo's SQLite engine, running statements on connections the subclass keeps."""

    @abstractmethod
    async def _execute(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        """Run a statement outside any transaction; the rows as dicts."""

    @abstractmethod
    async def _execute_ddl(self, ddl: str) -> list[dict[str, Any]]:
        """Run DDL outside any transaction."""

    @abstractmethod
    async def _acquire_writer(self) -> TransactionConnection:
        """The connection a transaction runs on, its own until :meth:`_release_writer`."""

    @abstractmethod
    def _release_writer(self, connection: TransactionConnection) -> None:
        """Take back the connection of a transaction that ended."""

    async def run_querystring(self, querystring: QueryString, in_pool: bool = False) -> Any:
        sql, args = querystring.compile_string(engine_type=self.engine_type)
        if self.log_queries:
            self.print_query(query_id=self.get_query_id(), query=str(querystring))
        transaction = self.current_transaction.get()
        if transaction is not None:
            return await transaction.connection.execute(sql, args)
        return await self._execute(sql, args)

    async def run_ddl(self, ddl: str, in_pool: bool = False) -> Any:
        transaction = self.current_transaction.get()
        if transaction is not None:
            return await transaction.connection.execute(ddl)
        return await self._execute_ddl(ddl)

    # IMMEDIATE rather than piccolo's DEFERRED: Kith's transactions write, and one that takes the
    # write lock at BEGIN waits for it (busy timeout) instead of failing to upgrade a read.
    def transaction(  # type: ignore[override]
        self,
        transaction_type: TransactionType = TransactionType.immediate,
        allow_nested: bool = True,
    ) -> SQLiteWriterTransaction:
        return SQLiteWriterTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )


class SQLiteWriterTransaction(SQLiteTransaction):
    """piccolo's SQLite transaction on the connection its engine lends it."""

    engine: SQLiteEngineBase

    async def get_connection(self) -> TransactionConnection:  # type: ignore[override]
        return await self.engine._acquire_writer()

    async def begin(self) -> None:
        try:
            await super().begin()
        except BaseException:
            # ``__aexit__`` never runs for a transaction that failed to begin (another process
            # held the lock past the busy timeout): without this the writer stays taken.
            self.engine._release_writer(self.connection)
            raise

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
            self.engine._release_writer(self.connection)
        return exception is None


# -- SQLite converters -----------------------------------------------------------------------
# piccolo's go through a generic wrapper and rebuild each object from its text: reading one
# contact with its emails and phones spent more CPU in them than in SQLite. These give the same
# values and errors; UUIDs and timestamps are remembered by their stored bytes (both immutable;
# a joined read repeats a contact's on every row of its emails and phones).

# Per type: a few thousand recent values cost well under a megabyte.
_REMEMBERED = 4096


@functools.lru_cache(maxsize=_REMEMBERED)
def uuid_out(value: bytes) -> uuid.UUID:
    return uuid.UUID(value.decode("utf8"))


@functools.lru_cache(maxsize=_REMEMBERED)
def timestamptz_out(value: bytes) -> dt.datetime:
    return dt.datetime.fromisoformat(value.decode("utf8")).replace(tzinfo=dt.UTC)


def boolean_out(value: bytes) -> bool:
    return value == b"1"


def integer_out(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        # What piccolo accepts as well: "1.0" (SQLite does not enforce column types).
        return int(Decimal(value.decode("utf8")))


SQLITE_CONVERTERS: dict[str, Callable[[bytes], Any]] = {
    "UUID": uuid_out,
    "TIMESTAMPTZ": timestamptz_out,
    "BOOLEAN": boolean_out,
    "INTEGER": integer_out,
}


def register_sqlite_converters() -> None:
    """Replace piccolo's converters of these types, process-wide as piccolo's own are."""
    for type_name, converter in SQLITE_CONVERTERS.items():
        sqlite3.register_converter(type_name, converter)


# -- PostgreSQL engine -----------------------------------------------------------------------


class PostgresEngineBase(PostgresEngine):
    """piccolo's PostgreSQL engine, handing statements outside a transaction to
    :meth:`_execute_pooled` while its pool runs."""

    @abstractmethod
    async def _execute_pooled(self, sql: str, args: Sequence[Any]) -> Any:
        """Run a statement outside any transaction on a connection of ``self.pool``."""

    async def _run_in_pool(self, query: str, args: Sequence[Any] | None = None) -> Any:
        if not self.pool:
            raise ValueError("A pool isn't currently running.")
        return await self._execute_pooled(query, args or ())


# -- Prepared queries ------------------------------------------------------------------------


class CompiledQueryString(QueryString):
    """A query string whose SQL is already compiled; engines only ever ask for that."""

    __slots__ = ("_compiled",)

    def __init__(self, sql: str, args: list[Any], query_type: str, table: type[Table]) -> None:
        super().__init__("", query_type=query_type, table=table)
        self._compiled = (sql, args)

    def compile_string(self, engine_type: str = "postgres") -> tuple[str, list[Any]]:
        return self._compiled

    def __str__(self) -> str:
        # Only used when piccolo logs queries; the values stay out of logs.
        return self._compiled[0]


# The ``run()`` methods whose work :func:`process_rows` reproduces; a query class with another
# (a proxy such as ``first()``, or a new query type) would come back differently.
_RUNS_REPRODUCED = frozenset({Query.run, Select.run, Objects.run})


def compile_once(query: Any, engine_type: str) -> tuple[str, list[Any], str]:
    """The SQL, arguments and query type ``query.run()`` would send, after the same checks."""
    if (
        not isinstance(query, Query)
        or type(query).run not in _RUNS_REPRODUCED
        or type(query)._run is not Query._run
    ):
        raise TypeError(f"Prepared takes a piccolo query, not {type(query).__name__}")
    query._validate()
    querystrings = query.querystrings
    if len(querystrings) != 1:
        raise TypeError("Prepared supports queries that compile to one statement")
    sql, args = querystrings[0].compile_string(engine_type=engine_type)
    return sql, args, querystrings[0].query_type


def rows_as_returned(query: Query[Any, Any]) -> bool:
    """Whether ``query.run()`` returns the engine's rows as dicts, unchanged: a plain select (no
    JSON loading, objects, nesting, many-to-many columns or callbacks). piccolo's generic pass
    over such rows costs as much as the rest of a short read."""
    if type(query) is not Select or hasattr(query, "_raw_response_callback"):
        return False
    output = query.output_delegate._output
    if output.load_json or output.as_objects or output.nested:
        return False
    if query.callback_delegate._callbacks[CallbackType.success]:
        return False
    return not any(
        isinstance(column, M2MSelect) for column in query.columns_delegate.selected_columns
    )


async def process_rows(query: Query[Any, Any], rows: Any) -> Any:
    """What ``query.run()`` makes of the engine's rows for a query :func:`compile_once` took."""
    result = await query._process_results(rows)
    callbacks = getattr(query, "callback_delegate", None)
    if callbacks is not None:
        result = await callbacks.invoke(result, kind=CallbackType.success)
    return result
