"""Queries built once and run many times with different values.

Building a piccolo query costs far more CPU than running a short one: on a 2-core machine a select
with a join took about 0.5 ms to build and compile, and 0.03 ms to run on SQLite. Hot paths
(authenticating a token, reading a contact) run the same query shape on every request with only
the values changing. Piccolo's own ``freeze()`` caches the SQL of a query whose values are fixed;
``Prepared`` does the same for a query with parameters: it builds the query once per database kind
with placeholder values, keeps the compiled SQL, and on each run only puts the values in. Rows are
processed as ``query.run()`` processes them (by the same piccolo query object, or not at all for a
plain select, whose rows piccolo would return unchanged), so they look exactly as it returns them.

    BY_HASH = Prepared(lambda digest: ApiToken.select().where(ApiToken.token_hash == digest))
    rows = await BY_HASH.run(digest=token_digest)

A list value (for ``is_in``, or one column of a multi-row insert) is prepared once per list
length. Values go to the database driver as they are, without piccolo's conversions: pass plain
values (str, int, UUID, datetime), not Table rows, and a JSON column's value encoded as text.
``build`` returns a query (a select, insert, ...), not a proxy such as ``.first()`` or
``.output(as_list=True)``; use :meth:`Prepared.first` instead.

A statement whose rows nobody needs (an audit entry, an outbox event) can be *deferred*:
``await PREPARED.defer(**values)`` runs it just before the current transaction commits, with
every other statement deferred in that transaction, in one round trip on PostgreSQL (one
statement, each in a ``WITH`` clause of its own). On SQLite, where a statement costs no round
trip, and outside a transaction it runs at once. A deferred statement that fails makes the
commit fail (the transaction is rolled back); rolling back to a savepoint does not undo one;
code that reads what it deferred in the same transaction calls :func:`run_deferred` first.

How a query is compiled and its rows processed relies on piccolo's internals, in
:mod:`kith.storage._piccolo_internals`.
"""

from __future__ import annotations

import enum
import functools
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kith.storage._piccolo_internals import (
    CompiledQueryString,
    compile_once,
    process_rows,
    rows_as_returned,
)
from piccolo.engine.base import Engine
from piccolo.query.base import Query
from piccolo.table import Table

# Shapes (database kind and list lengths) kept per prepared query; list pages vary in length.
_MAX_SHAPES = 64


class _Slot(str):
    """Where a value goes: a marker object piccolo passes through into the compiled arguments.

    A ``str``, because piccolo passes strings through unchanged where it converts other values
    (a JSON column's value is dumped unless it is already text): the marker survives to the
    arguments, and a JSON value is given to :meth:`Prepared.run` encoded."""

    name: str
    item: int | None

    def __new__(cls, name: str, index: int | None = None) -> _Slot:
        slot = super().__new__(cls, f"<{name}{'' if index is None else f'[{index}]'}>")
        slot.name = name
        slot.item = index
        return slot

    # Markers are told apart by identity (one per value), never by their text.
    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


@dataclass(frozen=True)
class _Shape:
    query: Query[Any, Any]
    sql: str
    args: tuple[Any, ...]
    slots: tuple[tuple[int, _Slot], ...]
    query_type: str
    # The engine's rows are the result as they are (see rows_as_returned).
    rows_as_returned: bool


def _placeholders(values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: [_Slot(name, i) for i in range(len(value))]
        if isinstance(value, list | tuple)
        else _Slot(name)
        for name, value in values.items()
    }


class Prepared:
    """A piccolo query built by ``build(**placeholders)`` once per database kind, run with
    ``await prepared.run(**values)`` (see the module docstring)."""

    def __init__(
        self, build: Callable[..., Query[Any, Any]], max_shapes: int = _MAX_SHAPES
    ) -> None:
        self._build = build
        # More for a query run with lists of many lengths (a multi-row insert of a batch).
        self._max_shapes = max_shapes
        self._table: type[Table] | None = None
        self._shapes: OrderedDict[tuple[Any, ...], _Shape] = OrderedDict()

    def _shape(self, engine_type: str, values: dict[str, Any]) -> _Shape:
        key = (
            engine_type,
            *sorted(
                (name, len(value) if isinstance(value, list | tuple) else None)
                for name, value in values.items()
            ),
        )
        shape = self._shapes.get(key)
        if shape is not None:
            self._shapes.move_to_end(key)
            return shape
        placeholders = _placeholders(values)
        query = self._build(**placeholders)
        sql, args, query_type = compile_once(query, engine_type)
        slots = tuple((i, arg) for i, arg in enumerate(args) if isinstance(arg, _Slot))
        expected = {
            id(slot)
            for value in placeholders.values()
            for slot in (value if isinstance(value, list) else [value])
        }
        missing = expected - {id(slot) for _, slot in slots}
        if missing:
            # A placeholder that piccolo converted (or dropped) could not be filled in later;
            # counting would not tell when another value is used twice.
            raise TypeError(
                f"prepared query lost {len(missing)} of {len(expected)} placeholders in {sql!r}"
            )
        shape = _Shape(
            query, sql, tuple(args), slots, query_type, rows_as_returned=rows_as_returned(query)
        )
        self._shapes[key] = shape
        if len(self._shapes) > self._max_shapes:
            self._shapes.popitem(last=False)
        return shape

    async def run(self, **values: Any) -> list[dict[str, Any]]:
        """The rows, on the engine the query's table is bound to."""
        return await self.run_on(None, **values)

    def _engine(self, engine: Engine | None, values: dict[str, Any]) -> Engine:
        if self._table is None:
            # Tables are bound to an engine at run time; building once tells which table
            # (and so which engine) this query belongs to.
            self._table = self._build(**_placeholders(values)).table
        if engine is None:
            engine = self._table._meta.db
        if engine is None:
            raise RuntimeError(f"{self._table.__name__} is not bound to a database")
        return engine

    def bind(self, engine: Engine | None, /, **values: Any) -> Bound:
        """The statement with these values, compiled for ``engine`` (the table's when None)."""
        return self._bind(self._engine(engine, values), values)[1]

    def _bind(self, engine: Engine, values: dict[str, Any]) -> tuple[_Shape, Bound]:
        shape = self._shape(engine.engine_type, values)
        args = list(shape.args)
        for position, slot in shape.slots:
            value = values[slot.name] if slot.item is None else values[slot.name][slot.item]
            args[position] = value.value if isinstance(value, enum.Enum) else value
        assert self._table is not None
        return shape, Bound(shape.sql, args, shape.query_type, self._table)

    async def run_on(self, engine: Engine | None, /, **values: Any) -> list[dict[str, Any]]:
        """The rows, on ``engine`` (the table's when None): for code that holds its own
        database rather than following the tables' binding."""
        engine = self._engine(engine, values)
        shape, bound = self._bind(engine, values)
        rows = await engine.run_querystring(bound.querystring(), in_pool=True)
        if shape.rows_as_returned:
            plain: list[dict[str, Any]] = engine.transform_response_to_dicts(rows) if rows else []
            return plain
        result: list[dict[str, Any]] = await process_rows(shape.query, rows)
        return result

    async def defer(self, **values: Any) -> None:
        """Run the statement just before the current transaction commits (see the module
        docstring), on the engine its table is bound to."""
        await self.defer_on(None, **values)

    async def defer_on(self, engine: Engine | None, /, **values: Any) -> None:
        """:meth:`defer` on ``engine`` (the table's when None)."""
        engine = self._engine(engine, values)
        bound = self._bind(engine, values)[1]
        pending = _deferred_list(engine)
        if pending is None:
            await engine.run_querystring(bound.querystring(), in_pool=True)
        else:
            pending.append(bound)

    async def first(self, **values: Any) -> dict[str, Any] | None:
        """The first row or None; build the query with ``.limit(1)`` where more could match."""
        rows = await self.run(**values)
        return rows[0] if rows else None


def row_chunks(count: int, largest: int) -> Iterator[slice]:
    """Slices of ``count`` rows for multi-row statements of a few lengths only: ``largest``
    rows, then powers of two for the rest. A prepared insert keeps one shape per length, so
    any number of rows needs at most ``log2(largest) + 2`` shapes rather than one per count
    (a shape of a hundred rows holds a hundred row objects)."""
    start = 0
    while count - start >= largest:
        yield slice(start, start + largest)
        start += largest
    size = 1 << max(largest.bit_length() - 1, 0)
    while start < count:
        while size > count - start:
            size >>= 1
        yield slice(start, start + size)
        start += size


@dataclass(frozen=True)
class Bound:
    """A statement with its values, compiled for one database kind."""

    sql: str
    args: list[Any]
    query_type: str
    table: type[Table]

    def querystring(self) -> CompiledQueryString:
        return CompiledQueryString(self.sql, self.args, self.query_type, self.table)


def _deferred_list(engine: Engine) -> list[Bound] | None:
    """Where the current transaction keeps its deferred statements; None when there is no
    transaction or it runs them at once (see :class:`kith.storage.postgres.KithPostgresEngine`)."""
    transaction = engine.current_transaction.get()
    deferred: list[Bound] | None = getattr(transaction, "deferred", None)
    return deferred


async def run_deferred(engine: Engine) -> None:
    """Run the statements deferred in the current transaction now (for code about to read
    what it deferred)."""
    pending = _deferred_list(engine)
    if pending:
        statements = list(pending)
        pending.clear()
        await run_together(engine, statements)


_PLACEHOLDER = re.compile(r"\$(\d+)")


# Remembered: a write's deferred statements are the same few prepared shapes at the same
# offsets every time, and the substitution over a multi-row insert cost a few percent of a
# contact create's CPU.
@functools.lru_cache(maxsize=256)
def _renumbered(sql: str, offset: int) -> str:
    """``sql`` with its placeholders ``$n`` moved up by ``offset``."""
    return _PLACEHOLDER.sub(lambda match: f"${int(match.group(1)) + offset}", sql)


@functools.lru_cache(maxsize=256)
def _placeholders_clear(sql: str, count: int) -> bool:
    """Whether ``$1`` to ``$count`` are the only things in ``sql`` that look like ``$n``."""
    return {int(n) for n in _PLACEHOLDER.findall(sql)} == set(range(1, count + 1))


async def run_together(engine: Engine, statements: Sequence[Bound]) -> None:
    """Run statements whose rows are not needed, in one round trip on PostgreSQL."""
    if not statements:
        return
    if engine.engine_type != "postgres" or len(statements) == 1:
        for bound in statements:
            await engine.run_querystring(bound.querystring(), in_pool=True)
        return
    parts: list[str] = []
    args: list[Any] = []
    for number, bound in enumerate(statements):
        if not _placeholders_clear(bound.sql, len(bound.args)):
            # Not only placeholders look like $n here: renumbering could change the SQL.
            raise ValueError(f"cannot combine {bound.sql!r}: its placeholders are unclear")
        parts.append(f"s{number} AS ({_renumbered(bound.sql, len(args))})")
        args += bound.args
    combined = "WITH " + ", ".join(parts) + " SELECT 1"
    await engine.run_querystring(
        CompiledQueryString(combined, args, "insert", statements[0].table), in_pool=True
    )


__all__ = ["Bound", "Prepared", "row_chunks", "run_deferred", "run_together"]
