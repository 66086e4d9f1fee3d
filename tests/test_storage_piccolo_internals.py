"""The piccolo internals Kith's storage relies on (kith.storage._piccolo_internals) are still
there, with the signatures the seam expects, and still behave as relied on.

A failure here after a piccolo upgrade names what changed; the seam's docstring says why Kith
depends on it. Adapt the seam (or the engine using it), then widen piccolo's pin in
pyproject.toml.
"""

from __future__ import annotations

import ast
import asyncio
import contextvars
import datetime as dt
import decimal
import hashlib
import inspect
import re
import sqlite3
import textwrap
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import piccolo.engine.sqlite as piccolo_sqlite
import pytest
from kith.ids import new_id
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, PhoneIn
from kith.services import contacts as contacts_service
from kith.services import users as users_service
from kith.services.contacts import ContactService
from kith.storage import _piccolo_internals as seam
from kith.storage.postgres import KithPostgresEngine, _HotTransaction
from kith.storage.prepared import Prepared
from kith.storage.sqlite import KithSQLiteEngine, ThreadedConnection, WriterSession
from kith.tables import ApiToken, Contact, ContactPoint
from piccolo.columns import JSON, M2M, UUID, Boolean, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.m2m import M2MSelect
from piccolo.columns.reference import LazyTableReference
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType
from piccolo.query.base import Query
from piccolo.query.methods.delete import DeletionError
from piccolo.query.methods.objects import Objects
from piccolo.query.methods.select import Select
from piccolo.query.mixins import CallbackDelegate, CallbackType, Output
from piccolo.querystring import QueryString
from piccolo.table import Table

POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY
NO_DEFAULT = inspect.Parameter.empty


def parameters(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """Name, kind and default of each parameter."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


# -- piccolo code the seam reproduces ------------------------------------------------------------

# What the seam reproduces or depends on line by line, and where. A changed fingerprint means
# piccolo changed that code: re-read it against the Kith code named, adapt that, then update
# the fingerprint (the first 16 hex digits of the SHA-256 of ``inspect.getsource``).
REPRODUCED: dict[str, tuple[Callable[..., Any], str, str]] = {
    "piccolo.engine.sqlite.SQLiteEngine.run_querystring": (
        SQLiteEngine.run_querystring,
        "daa84d07b7abc88b",
        "SQLiteEngineBase.run_querystring",
    ),
    "piccolo.engine.sqlite.SQLiteEngine.run_ddl": (
        SQLiteEngine.run_ddl,
        "dfda8cdf8740d80f",
        "SQLiteEngineBase.run_ddl",
    ),
    "piccolo.engine.sqlite.SQLiteTransaction.__aenter__": (
        SQLiteTransaction.__aenter__,
        "579894a54e56b9a8",
        "SQLiteWriterTransaction.get_connection and begin",
    ),
    "piccolo.engine.sqlite.SQLiteTransaction.__aexit__": (
        SQLiteTransaction.__aexit__,
        "08149562d0e1db2e",
        "SQLiteWriterTransaction.__aexit__",
    ),
    "piccolo.engine.postgres.PostgresEngine._run_in_pool": (
        PostgresEngine._run_in_pool,
        "f14a5a8f651202d5",
        "PostgresEngineBase._run_in_pool",
    ),
    "piccolo.engine.postgres.PostgresEngine.run_querystring": (
        PostgresEngine.run_querystring,
        "348d22aa818ace11",
        "PostgresEngineBase._run_in_pool, which it calls",
    ),
    "piccolo.engine.postgres.PostgresEngine.run_ddl": (
        PostgresEngine.run_ddl,
        "4a703f445f51738d",
        "PostgresEngineBase._run_in_pool, which it calls",
    ),
    "piccolo.query.base.Query._run": (Query._run, "ae5367ac41b4ff24", "compile_once"),
    "piccolo.query.base.Query._process_results": (
        Query._process_results,
        "25a0e316b16416c3",
        "rows_as_returned",
    ),
    "piccolo.query.methods.select.Select.run": (Select.run, "336b708ea6201308", "process_rows"),
    "piccolo.query.methods.select.Select.response_handler": (
        Select.response_handler,
        "cd4f9f129ee19fa5",
        "rows_as_returned",
    ),
    "piccolo.query.methods.objects.Objects.run": (
        Objects.run,
        "3dae07d4f1cbcdbb",
        "process_rows",
    ),
    "piccolo.engine.sqlite.convert_uuid_out": (
        piccolo_sqlite.convert_uuid_out,
        "b1106ad21ee2893f",
        "uuid_out",
    ),
    "piccolo.engine.sqlite.convert_timestamptz_out": (
        piccolo_sqlite.convert_timestamptz_out,
        "79ab493ca83cf9ed",
        "timestamptz_out",
    ),
    "piccolo.engine.sqlite.convert_boolean_out": (
        piccolo_sqlite.convert_boolean_out,
        "b7b9c63b710d5133",
        "boolean_out",
    ),
    "piccolo.engine.sqlite.convert_int_out": (
        piccolo_sqlite.convert_int_out,
        "492fffff9a8ce769",
        "integer_out",
    ),
    "piccolo.engine.sqlite.decode_to_string": (
        piccolo_sqlite.decode_to_string,
        "9e42fe79f9a0d6b4",
        "the SQLite converters (bytes in)",
    ),
}


@pytest.mark.parametrize("name", sorted(REPRODUCED))
def test_reproduced_piccolo_code_is_unchanged(name: str) -> None:
    function, fingerprint, ours = REPRODUCED[name]
    source = inspect.getsource(function)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == fingerprint, (
        f"piccolo changed {name}; check kith.storage._piccolo_internals ({ours}) against it"
    )


# -- names Kith's subclasses add -----------------------------------------------------------------


def names_defined(cls: type) -> set[str]:
    """What a class defines: its own attributes and every ``self.<name> =`` in its code."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    assigned = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }
    bookkeeping = {
        "__abstractmethods__",
        "__annotations__",
        "__dict__",
        "__doc__",
        "__module__",
        "__parameters__",
        "__slots__",
        "__weakref__",
        "_abc_impl",
    }
    return (assigned | set(vars(cls))) - bookkeeping


# Each Kith class over a piccolo one, and the names it means to override. Any other name it
# shares with piccolo's class (one piccolo added) would silently replace or be replaced.
OVERRIDES: list[tuple[type, type, set[str]]] = [
    (seam.SQLiteEngineBase, SQLiteEngine, {"run_querystring", "run_ddl", "transaction"}),
    (KithSQLiteEngine, SQLiteEngine, {"__init__"}),
    (seam.SQLiteWriterTransaction, SQLiteTransaction, {"get_connection", "begin", "__aexit__"}),
    (seam.PostgresEngineBase, PostgresEngine, {"_run_in_pool"}),
    (KithPostgresEngine, PostgresEngine, {"__init__", "close_connection_pool", "transaction"}),
    # BEGIN waits for the first statement that needs one, so begin, commit and rollback are
    # its own, and they keep piccolo's record of how the transaction ended.
    (
        _HotTransaction,
        PostgresTransaction,
        {"__init__", "get_connection", "begin", "commit", "rollback", "__aexit__"}
        | {"_committed", "_rolled_back"},
    ),
    (seam.CompiledQueryString, QueryString, {"__init__", "compile_string", "__str__"}),
]


@pytest.mark.parametrize(
    ("ours", "theirs", "overrides"), OVERRIDES, ids=[o[0].__name__ for o in OVERRIDES]
)
def test_kith_subclasses_override_only_what_they_mean_to(
    ours: type, theirs: type, overrides: set[str]
) -> None:
    shared = names_defined(ours) & set(dir(theirs))
    assert shared == overrides, f"{ours.__name__} and piccolo's {theirs.__name__} share {shared}"


# -- SQLite converters ---------------------------------------------------------------------------

GOOD = {
    "UUID": [b"0190a8f4-3c1d-7c4e-9f5e-3a1b2c3d4e5f", b"{0190A8F4-3C1D-7C4E-9F5E-3A1B2C3D4E5F}"],
    "TIMESTAMPTZ": [b"2026-11-23 04:05:06.123456", b"2026-02-28 23:59:59", b"2026-01-01"],
    "BOOLEAN": [b"1", b"0", b""],
    "INTEGER": [b"0", b"-42", b" 7 ", b"1.0", b"12345678901234567890123"],
}
BAD = {
    "UUID": [b"not-a-uuid", b"0190a8f4", b"\xff"],
    "TIMESTAMPTZ": [b"yesterday", b"2026-13-01 00:00:00", b"\xff"],
    "INTEGER": [b"hello", b"0x10", b""],
}


@pytest.mark.parametrize(("type_name", "value"), [(t, v) for t in GOOD for v in GOOD[t]])
def test_same_values_as_piccolo(type_name: str, value: bytes) -> None:
    ours = seam.SQLITE_CONVERTERS[type_name](value)
    theirs = piccolo_sqlite.CONVERTERS[type_name](value)
    assert ours == theirs
    assert type(ours) is type(theirs)
    if isinstance(ours, dt.datetime):
        assert ours.tzinfo == theirs.tzinfo == dt.UTC


@pytest.mark.parametrize(("type_name", "value"), [(t, v) for t in BAD for v in BAD[t]])
def test_same_errors_as_piccolo(type_name: str, value: bytes) -> None:
    errors = (ValueError, decimal.InvalidOperation)
    with pytest.raises(errors) as theirs:
        piccolo_sqlite.CONVERTERS[type_name](value)
    with pytest.raises(errors) as ours:
        seam.SQLITE_CONVERTERS[type_name](value)
    assert type(ours.value) is type(theirs.value)


def test_remembered_values_are_shared_and_cannot_be_changed() -> None:
    text = b"0190a8f4-3c1d-7c4e-9f5e-3a1b2c3d4e5f"
    first = seam.uuid_out(text)
    assert seam.uuid_out(bytes(text)) is first
    with pytest.raises(TypeError):
        first.int = 0  # type: ignore[misc]
    at = seam.timestamptz_out(b"2026-11-23 04:05:06")
    assert seam.timestamptz_out(b"2026-11-23 04:05:06") is at
    with pytest.raises(AttributeError):
        at.year = 2000  # type: ignore[misc]


def test_queries_return_converted_values() -> None:
    connection = sqlite3.connect(":memory:", detect_types=sqlite3.PARSE_DECLTYPES)
    connection.execute("CREATE TABLE t (id UUID, at TIMESTAMPTZ, ok BOOLEAN, n INTEGER)")
    row_id = uuid.uuid4()
    connection.execute(
        "INSERT INTO t VALUES (?, ?, ?, ?)", (str(row_id), "2026-11-23 04:05:06", "1", 3)
    )
    assert connection.execute("SELECT * FROM t").fetchone() == (
        row_id,
        dt.datetime(2026, 11, 23, 4, 5, 6, tzinfo=dt.UTC),
        True,
        3,
    )


# -- SQLite engine: statement entry points -------------------------------------------------------


class Gadget(Table, tablename="kith_test_gadget"):
    id = UUID(primary_key=True)
    name = Varchar(length=50)
    at = Timestamptz()
    on = Boolean(default=False)
    n = Integer(default=0)
    data = JSON(default={})


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[KithSQLiteEngine]:
    """Kith's SQLite engine on a fresh file, with :class:`Gadget` bound to it and created."""
    engine = KithSQLiteEngine(path=str(tmp_path / "internals.sqlite3"))
    Gadget._meta.db = engine
    try:
        await Gadget.create_table().run()
        yield engine
    finally:
        await engine.close()


def gadget(name: str, id: uuid.UUID | None = None) -> Gadget:
    at = dt.datetime(2026, 11, 23, 4, 5, tzinfo=dt.UTC)
    return Gadget(id=id or new_id(), name=name, at=at, n=7)


@pytest.fixture
def sqlite_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The engine hooks piccolo's calls reached, and the statements each connection ran, as
    ``(hook, statement)`` in order; ``connection`` for a statement a transaction ran on
    the writer it was lent."""
    seen: list[tuple[str, str]] = []
    real_execute = KithSQLiteEngine._execute
    real_ddl = KithSQLiteEngine._execute_ddl
    real_acquire = KithSQLiteEngine._acquire_writer
    real_release = KithSQLiteEngine._release_writer
    real_connection_execute = WriterSession.execute

    async def execute(self: KithSQLiteEngine, sql: str, args: list[Any]) -> Any:
        seen.append(("execute", sql))
        return await real_execute(self, sql, args)

    async def execute_ddl(self: KithSQLiteEngine, ddl: str) -> Any:
        seen.append(("execute_ddl", ddl))
        return await real_ddl(self, ddl)

    async def acquire(self: KithSQLiteEngine) -> Any:
        seen.append(("acquire_writer", ""))
        return await real_acquire(self)

    def release(self: KithSQLiteEngine, connection: Any) -> None:
        seen.append(("release_writer", ""))
        real_release(self, connection)

    async def connection_execute(self: WriterSession, sql: str, args: Any = ()) -> Any:
        seen.append(("connection", sql))
        return await real_connection_execute(self, sql, args)

    monkeypatch.setattr(KithSQLiteEngine, "_execute", execute)
    monkeypatch.setattr(KithSQLiteEngine, "_execute_ddl", execute_ddl)
    monkeypatch.setattr(KithSQLiteEngine, "_acquire_writer", acquire)
    monkeypatch.setattr(KithSQLiteEngine, "_release_writer", release)
    monkeypatch.setattr(WriterSession, "execute", connection_execute)
    return seen


def test_engine_entry_points_have_the_signatures_overridden() -> None:
    assert parameters(Engine.run_querystring) == [
        ("self", POSITIONAL, NO_DEFAULT),
        ("querystring", POSITIONAL, NO_DEFAULT),
        ("in_pool", POSITIONAL, True),
    ]
    assert parameters(Engine.run_ddl) == [
        ("self", POSITIONAL, NO_DEFAULT),
        ("ddl", POSITIONAL, NO_DEFAULT),
        ("in_pool", POSITIONAL, True),
    ]
    assert parameters(SQLiteEngine.transaction) == [
        ("self", POSITIONAL, NO_DEFAULT),
        ("transaction_type", POSITIONAL, TransactionType.deferred),
        ("allow_nested", POSITIONAL, True),
    ]
    assert parameters(SQLiteTransaction.__init__) == [
        ("self", POSITIONAL, NO_DEFAULT),
        ("engine", POSITIONAL, NO_DEFAULT),
        ("transaction_type", POSITIONAL, TransactionType.deferred),
        ("allow_nested", POSITIONAL, True),
    ]
    assert parameters(Engine.print_query) == [
        ("self", POSITIONAL, NO_DEFAULT),
        ("query_id", POSITIONAL, NO_DEFAULT),
        ("query", POSITIONAL, NO_DEFAULT),
    ]
    assert parameters(Engine.get_query_id) == [("self", POSITIONAL, NO_DEFAULT)]


def test_connection_kwargs_detect_types_and_leave_transactions_to_the_engine(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "kwargs.sqlite3")
    for engine in (SQLiteEngine(path=path), KithSQLiteEngine(path=path)):
        kwargs = engine.connection_kwargs
        assert kwargs["database"] == path
        assert kwargs["detect_types"] & sqlite3.PARSE_DECLTYPES
        assert kwargs["isolation_level"] is None


async def test_piccolo_queries_reach_the_overridden_entry_points(
    sqlite_engine: KithSQLiteEngine, sqlite_calls: list[tuple[str, str]]
) -> None:
    await Gadget.insert(gadget("a")).run()
    await Gadget.select().where(Gadget.name == "a").run()
    await Gadget.count().run()
    await Gadget.raw("SELECT 1 AS one").run()
    await Gadget.update({Gadget.n: 8}).where(Gadget.name == "a").run()
    outside = [(hook, sql.split()[0]) for hook, sql in sqlite_calls if hook != "connection"]
    assert outside == [
        ("execute", "INSERT"),
        ("execute", "SELECT"),
        ("execute", "SELECT"),
        ("execute", "SELECT"),
        ("execute", "UPDATE"),
    ]
    sqlite_calls.clear()

    await Gadget.create_index([Gadget.name]).run()
    assert [hook for hook, _ in sqlite_calls if hook != "connection"] == ["execute_ddl"]


async def test_query_logging_prints_what_piccolo_prints(
    sqlite_engine: KithSQLiteEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = []
    for engine in (SQLiteEngine(path=sqlite_engine.path), sqlite_engine):
        engine.log_queries = True
        Gadget._meta.db = engine
        capsys.readouterr()
        await Gadget.select(Gadget.name).where(Gadget.name == "x").run()
        printed.append(re.sub(r"Query \d+", "Query N", capsys.readouterr().out))
    theirs, ours = printed
    assert ours == theirs
    assert "kith_test_gadget" in ours


async def test_rows_are_what_piccolos_own_engine_returns(sqlite_engine: KithSQLiteEngine) -> None:
    c = new_id()
    queries: list[Callable[[], Any]] = [
        lambda: Gadget.insert(gadget("c", c)),
        lambda: Gadget.select().order_by(Gadget.name),
        lambda: Gadget.select(Gadget.name, Gadget.data).output(load_json=True),
        lambda: Gadget.count(),
        lambda: Gadget.exists().where(Gadget.name == "c"),
        lambda: Gadget.raw("SELECT name, n AS name, n FROM kith_test_gadget ORDER BY n"),
        lambda: Gadget.update({Gadget.n: 9}).where(Gadget.name == "c").returning(Gadget.n),
    ]
    await Gadget.insert(gadget("a"), gadget("b")).run()
    ours = [await query().run() for query in queries]
    await Gadget.delete().where(Gadget.name == "c").run()
    Gadget._meta.db = SQLiteEngine(path=sqlite_engine.path)
    theirs = [await query().run() for query in queries]
    assert ours == theirs
    assert ours[0] == [{"id": c}]


async def test_piccolos_column_types_read_through_kiths_converters(
    sqlite_engine: KithSQLiteEngine,
) -> None:
    assert set(seam.SQLITE_CONVERTERS) <= set(piccolo_sqlite.CONVERTERS)
    declared = await Gadget.raw("SELECT name, type FROM pragma_table_info('kith_test_gadget')")
    assert {row["name"]: row["type"] for row in declared} == {
        "id": "UUID",
        "name": "VARCHAR(50)",
        "at": "TIMESTAMPTZ",
        "on": "BOOLEAN",
        "n": "INTEGER",
        "data": "JSON",
    }
    await Gadget.insert(gadget("a")).run()
    first, second = [(await Gadget.select().run())[0] for _ in range(2)]
    assert first == second
    # Remembered by their stored bytes: only Kith's converters give the very same objects.
    assert first["id"] is second["id"]
    assert first["at"] is second["at"]
    assert type(first["on"]) is bool and type(first["n"]) is int


# -- SQLite transactions: piccolo's, on the lent writer ------------------------------------------


def test_transactions_keep_the_private_state_the_seam_reads(tmp_path: Path) -> None:
    assert {"_parent", "_committed", "_rolled_back", "context", "connection"} <= set(
        SQLiteTransaction.__slots__
    )
    engine = KithSQLiteEngine(path=str(tmp_path / "state.sqlite3"))
    assert isinstance(engine.current_transaction, contextvars.ContextVar)
    assert engine.current_transaction.get() is None
    transaction = engine.transaction()
    assert isinstance(transaction, seam.SQLiteWriterTransaction)
    assert transaction.transaction_type is TransactionType.immediate
    assert transaction._parent is None
    assert transaction._committed is False
    assert transaction._rolled_back is False


def statements(calls: list[tuple[str, str]]) -> list[str]:
    """What a transaction did: the writer's statements and the hooks that lent it."""
    return [sql if hook == "connection" else hook for hook, sql in calls]


async def names() -> list[str]:
    rows = await Gadget.select(Gadget.name).order_by(Gadget.name).run()
    return [row["name"] for row in rows]


async def test_a_transaction_begins_on_the_lent_writer_commits_and_gives_it_back(
    sqlite_engine: KithSQLiteEngine, sqlite_calls: list[tuple[str, str]]
) -> None:
    async with sqlite_engine.transaction() as transaction:
        assert sqlite_engine.current_transaction.get() is transaction
        assert isinstance(transaction.connection, WriterSession)
        await Gadget.insert(gadget("a")).run()
    done = statements(sqlite_calls)
    assert done[:2] == ["acquire_writer", "BEGIN IMMEDIATE"]
    assert done[2].startswith("INSERT INTO")
    assert done[3:] == ["COMMIT", "release_writer"]
    assert sqlite_engine.current_transaction.get() is None
    assert not sqlite_engine._writer_lock.locked()
    assert await names() == ["a"]


async def test_statements_inside_a_transaction_run_on_the_event_loop_thread(
    sqlite_engine: KithSQLiteEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the boundaries, which may wait for another process, hop to the writer's thread."""
    ran: list[tuple[str, bool]] = []
    real_run = ThreadedConnection._run

    def run(self: ThreadedConnection, sql: str, args: Any) -> Any:
        ran.append((sql.split()[0], threading.current_thread() is threading.main_thread()))
        return real_run(self, sql, args)

    monkeypatch.setattr(ThreadedConnection, "_run", run)
    async with sqlite_engine.transaction():
        await Gadget.insert(gadget("a")).run()
        assert await Gadget.count().run() == 1
        await Gadget.update({Gadget.n: 8}).where(Gadget.name == "a").run()
    assert ran == [
        ("BEGIN", True),
        ("INSERT", True),
        ("SELECT", True),
        ("UPDATE", True),
        ("COMMIT", True),
    ]
    rows = await Gadget.select(Gadget.name, Gadget.n).run()
    assert rows == [{"name": "a", "n": 8}]


async def test_a_begin_that_must_wait_for_another_process_waits_off_the_event_loop(
    sqlite_engine: KithSQLiteEngine, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "internals.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:

        async def write() -> None:
            async with sqlite_engine.transaction():
                await Gadget.insert(gadget("a")).run()

        task = asyncio.create_task(write())
        # The loop keeps running other work while the transaction waits for the lock.
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert not task.done()
        other.execute("COMMIT")
        await asyncio.wait_for(task, 10)
    finally:
        other.close()
    assert await names() == ["a"]
    # The busy timeout is back for what runs on the writer's thread afterwards.
    rows = await sqlite_engine._writer().execute("PRAGMA busy_timeout")
    assert rows == [{"timeout": 10_000}]


async def test_an_exception_rolls_the_transaction_back(
    sqlite_engine: KithSQLiteEngine, sqlite_calls: list[tuple[str, str]]
) -> None:
    with pytest.raises(LookupError):
        async with sqlite_engine.transaction():
            await Gadget.insert(gadget("a")).run()
            raise LookupError
    done = statements(sqlite_calls)
    assert done[-2:] == ["ROLLBACK", "release_writer"]
    assert "COMMIT" not in done
    assert sqlite_engine.current_transaction.get() is None
    assert not sqlite_engine._writer_lock.locked()
    assert await names() == []


@pytest.mark.parametrize("ending", ["commit", "rollback"])
async def test_a_transaction_ended_by_hand_is_not_ended_twice(
    sqlite_engine: KithSQLiteEngine, sqlite_calls: list[tuple[str, str]], ending: str
) -> None:
    async with sqlite_engine.transaction() as transaction:
        await Gadget.insert(gadget("a")).run()
        await getattr(transaction, ending)()
    done = statements(sqlite_calls)
    assert done.count("COMMIT") + done.count("ROLLBACK") == 1
    assert done[-2:] == [ending.upper(), "release_writer"]
    assert await names() == (["a"] if ending == "commit" else [])


async def test_a_transaction_rolled_back_by_hand_that_then_fails_is_rolled_back_once(
    sqlite_engine: KithSQLiteEngine, sqlite_calls: list[tuple[str, str]]
) -> None:
    with pytest.raises(LookupError):
        async with sqlite_engine.transaction() as transaction:
            await transaction.rollback()
            raise LookupError
    assert statements(sqlite_calls).count("ROLLBACK") == 1
    assert not sqlite_engine._writer_lock.locked()


async def test_a_nested_transaction_is_its_parent_and_does_not_end_it(
    sqlite_engine: KithSQLiteEngine, sqlite_calls: list[tuple[str, str]]
) -> None:
    async with sqlite_engine.transaction() as outer:
        async with sqlite_engine.transaction() as inner:
            assert inner is outer
            await Gadget.insert(gadget("a")).run()
        assert sqlite_engine.current_transaction.get() is outer
        assert "COMMIT" not in statements(sqlite_calls)
        await Gadget.insert(gadget("b")).run()
    done = statements(sqlite_calls)
    assert done.count("acquire_writer") == done.count("release_writer") == 1
    assert done.count("COMMIT") == 1
    assert await names() == ["a", "b"]


async def test_savepoints_and_atomic_run_on_the_writer(
    sqlite_engine: KithSQLiteEngine, sqlite_calls: list[tuple[str, str]]
) -> None:
    async with sqlite_engine.transaction() as transaction:
        await Gadget.insert(gadget("a")).run()
        savepoint = await transaction.savepoint("before_b")
        await Gadget.insert(gadget("b")).run()
        await savepoint.rollback_to()
    atomic = sqlite_engine.atomic()
    atomic.add(Gadget.insert(gadget("c")))
    await atomic.run()
    done = statements(sqlite_calls)
    assert "SAVEPOINT before_b" in done
    assert "ROLLBACK TO SAVEPOINT before_b" in done
    assert done.count("acquire_writer") == done.count("release_writer") == 2
    assert await names() == ["a", "c"]


async def test_a_transaction_that_may_not_nest_is_refused_inside_one(
    sqlite_engine: KithSQLiteEngine,
) -> None:
    async with sqlite_engine.transaction():
        with pytest.raises(Exception, match="already active"):
            sqlite_engine.transaction(allow_nested=False)
    assert not sqlite_engine._writer_lock.locked()


# -- PostgreSQL engine: statements outside a transaction -----------------------------------------


def test_the_transaction_methods_kith_extends_have_their_signatures() -> None:
    """Hot transactions pass ``engine`` and ``allow_nested`` on, and run deferred statements
    in ``commit()`` before piccolo's own."""
    assert parameters(PostgresTransaction.__init__) == [
        ("self", POSITIONAL, NO_DEFAULT),
        ("engine", POSITIONAL, NO_DEFAULT),
        ("allow_nested", POSITIONAL, True),
    ]
    assert parameters(PostgresTransaction.commit) == [("self", POSITIONAL, NO_DEFAULT)]
    assert inspect.iscoroutinefunction(PostgresTransaction.commit)


def test_the_pool_method_has_the_signature_overridden() -> None:
    assert parameters(PostgresEngine._run_in_pool) == [
        ("self", POSITIONAL, NO_DEFAULT),
        ("query", POSITIONAL, NO_DEFAULT),
        ("args", POSITIONAL, None),
    ]
    assert "pool" in PostgresEngine.__slots__
    assert parameters(PostgresEngine.close_connection_pool) == [("self", POSITIONAL, NO_DEFAULT)]


@pytest.fixture
def postgres_engine(kith: Kith) -> KithPostgresEngine:
    if kith.database.kind != "postgresql":
        pytest.skip("the PostgreSQL engine")
    assert isinstance(kith.database.engine, KithPostgresEngine)
    return kith.database.engine


async def test_statements_outside_a_transaction_reach_the_pooled_hook(
    postgres_engine: KithPostgresEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = KithPostgresEngine._execute_pooled

    async def spy(self: KithPostgresEngine, sql: str, args: Any) -> Any:
        seen.append(sql.split()[0])
        return await real(self, sql, args)

    monkeypatch.setattr(KithPostgresEngine, "_execute_pooled", spy)
    await Contact.select().run()
    await Contact.count().run()
    await Contact.raw("SELECT 1").run()
    await Contact.create_index([Contact.kind], if_not_exists=True).run()
    assert seen == ["SELECT", "SELECT", "SELECT", "CREATE"]

    async with postgres_engine.transaction():
        await Contact.select().run()
    await Contact.select().run(in_pool=False)
    assert len(seen) == 4


# -- Prepared queries ----------------------------------------------------------------------------


def test_query_strings_and_queries_have_what_prepared_queries_use() -> None:
    assert parameters(QueryString.__init__)[:5] == [
        ("self", POSITIONAL, NO_DEFAULT),
        ("template", POSITIONAL, NO_DEFAULT),
        ("args", inspect.Parameter.VAR_POSITIONAL, NO_DEFAULT),
        ("query_type", KEYWORD_ONLY, "generic"),
        ("table", KEYWORD_ONLY, None),
    ]
    assert parameters(QueryString.compile_string) == [
        ("self", POSITIONAL, NO_DEFAULT),
        ("engine_type", POSITIONAL, "postgres"),
    ]
    assert isinstance(inspect.getattr_static(Query, "querystrings"), property)
    assert parameters(Query._validate) == [("self", POSITIONAL, NO_DEFAULT)]
    assert parameters(Query._process_results) == [
        ("self", POSITIONAL, NO_DEFAULT),
        ("results", POSITIONAL, NO_DEFAULT),
    ]
    assert parameters(CallbackDelegate.invoke) == [
        ("self", POSITIONAL, NO_DEFAULT),
        ("results", POSITIONAL, NO_DEFAULT),
        ("kind", KEYWORD_ONLY, NO_DEFAULT),
    ]
    select = Contact.select(Contact.id)
    output = select.output_delegate._output
    assert isinstance(output, Output)
    assert (output.load_json, output.as_objects, output.nested) == (False, False, False)
    assert select.callback_delegate._callbacks == {kind: [] for kind in CallbackType}
    assert select.columns_delegate.selected_columns == [Contact.id]


class Marker:
    """A value piccolo cannot know: it must come out of compilation as it went in."""


async def test_values_pass_through_compilation_unchanged(kith: Kith) -> None:
    engine = Contact._meta.db
    assert engine is not None
    m = [Marker() for _ in range(7)]
    queries: list[tuple[Any, list[Marker]]] = [
        (Contact.select().where(Contact.id == m[0]), [m[0]]),
        (
            ContactPoint.select()
            .where(ContactPoint.contact.is_in([m[0], m[1]]))
            .where(ContactPoint.kind == m[2]),
            [m[0], m[1], m[2]],
        ),
        (
            Contact.insert(
                Contact(id=m[0], kind=m[1], display_name=m[2], created_at=m[3], updated_at=m[4])
            ),
            m[:5],
        ),
        (Contact.update({Contact.kind: m[5]}).where(Contact.id == m[6]), [m[5], m[6]]),
        (Contact.raw("SELECT {} AS x", m[0]), [m[0]]),
    ]
    for query, markers in queries:
        _, args, _ = seam.compile_once(query, engine.engine_type)
        passed = [arg for arg in args if isinstance(arg, Marker)]
        assert len(passed) == len(markers), str(query)
        assert all(a is b for a, b in zip(passed, markers, strict=True)), str(query)


async def test_a_compiled_query_string_runs_on_piccolos_own_engine(tmp_path: Path) -> None:
    engine = SQLiteEngine(path=str(tmp_path / "stock.sqlite3"))
    compiled = seam.CompiledQueryString("SELECT ? AS x, ? AS y", [1, "a"], "select", Gadget)
    assert await engine.run_querystring(compiled) == [{"x": 1, "y": "a"}]
    assert str(compiled) == "SELECT ? AS x, ? AS y"


async def _contacts(kith: Kith, count: int) -> list[uuid.UUID]:
    service = ContactService(kith)
    ids = []
    for number in range(count):
        created = await service.create(
            ContactCreate(
                name=f"Person {number}",
                emails=[EmailIn(f"p{number}@example.com")],
                phones=[PhoneIn(f"+44 20 7946 00{number:02d}")],
                tags=["a", f"t{number}"],
            )
        )
        ids.append(created.id)
    return ids


def comparable(result: Any) -> Any:
    """Table objects compare by primary key only; compare their class and every value."""
    if isinstance(result, list) and result and isinstance(result[0], Table):
        return [(type(row), row.to_dict()) for row in result]
    return result


async def test_prepared_queries_return_what_query_run_returns(kith: Kith) -> None:
    ids = await _contacts(kith, 3)
    first = ids[0]
    reads: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
        ("all columns", lambda i: Contact.select().where(Contact.id == i), {"i": first}),
        (
            "joined columns",
            lambda i: (
                ContactPoint.select(ContactPoint.value, ContactPoint.contact.display_name)
                .where(ContactPoint.contact == i)
                .order_by(ContactPoint.value)
            ),
            {"i": first},
        ),
        (
            "a joined table's every column",
            lambda i: (
                ContactPoint.select(ContactPoint.id, *ContactPoint.contact.all_columns())
                .where(ContactPoint.contact == i)
                .order_by(ContactPoint.position)
            ),
            {"i": first},
        ),
        (
            "nested",
            lambda i: (
                ContactPoint.select(ContactPoint.value, ContactPoint.contact.display_name)
                .where(ContactPoint.contact == i)
                .order_by(ContactPoint.value)
                .output(nested=True)
            ),
            {"i": first},
        ),
        (
            "JSON loaded",
            lambda i: (
                Contact.select(Contact.id, Contact.tags)
                .where(Contact.id == i)
                .output(load_json=True)
            ),
            {"i": first},
        ),
        (
            "a joined JSON column, loaded and nested",
            lambda i: (
                ContactPoint.select(ContactPoint.value, ContactPoint.contact.tags)
                .where(ContactPoint.contact == i)
                .order_by(ContactPoint.value)
                .output(load_json=True, nested=True)
            ),
            {"i": first},
        ),
        (
            "a list, a limit and an offset",
            lambda ids: (
                ContactPoint.select(ContactPoint.contact, ContactPoint.value)
                .where(ContactPoint.contact.is_in(ids))
                .order_by(ContactPoint.value)
                .limit(4)
                .offset(1)
            ),
            {"ids": ids},
        ),
        (
            "callbacks",
            lambda i: (
                Contact.select(Contact.id)
                .where(Contact.id == i)
                .callback(lambda rows: [row["id"] for row in rows])
                .callback(lambda found: {"found": found})
            ),
            {"i": first},
        ),
        ("objects", lambda i: Contact.objects().where(Contact.id == i), {"i": first}),
        (
            "objects with a related object",
            lambda i: (
                ContactPoint.objects(ContactPoint.contact)
                .where(ContactPoint.contact == i)
                .order_by(ContactPoint.value)
            ),
            {"i": first},
        ),
        ("a count", lambda kind: Contact.count().where(Contact.kind == kind), {"kind": "person"}),
        ("exists", lambda i: Contact.exists().where(Contact.id == i), {"i": first}),
        (
            "raw",
            lambda i: Contact.raw("SELECT id, kind FROM kith_contact WHERE id = {}", i),
            {"i": first},
        ),
        ("nothing found", lambda i: Contact.select().where(Contact.id == i), {"i": new_id()}),
    ]
    for name, build, values in reads:
        expected = await build(**values).run()
        got = await Prepared(build).run(**values)
        assert comparable(got) == comparable(expected), name
        assert type(got) is type(expected), name

    # A write runs through piccolo, is undone, then runs prepared: the answers must match.
    at = dt.datetime(2026, 11, 23, 4, 5, 6, tzinfo=dt.UTC)
    added = new_id()
    writes: list[tuple[str, Callable[..., Any], dict[str, Any], Callable[[], Any]]] = [
        (
            "an insert",
            lambda i, created, updated: Contact.insert(
                Contact(
                    id=i, kind="person", display_name="New", created_at=created, updated_at=updated
                )
            ),
            {"i": added, "created": at, "updated": at},
            lambda: Contact.delete().where(Contact.id == added),
        ),
        (
            "an update returning",
            lambda i, kind: (
                Contact.update({Contact.kind: kind})
                .where(Contact.id == i)
                .returning(Contact.id, Contact.kind)
            ),
            {"i": first, "kind": "organization"},
            lambda: Contact.update({Contact.kind: "person"}).where(Contact.id == first),
        ),
    ]
    for name, build, values, undo in writes:
        expected = await build(**values).run()
        await undo().run()
        got = await Prepared(build).run(**values)
        assert got == expected, name


class Band(Table, tablename="kith_test_band"):
    name = Varchar()
    genres = M2M(LazyTableReference("GenreToBand", module_path=__name__))


class Genre(Table, tablename="kith_test_genre"):
    name = Varchar()


class GenreToBand(Table, tablename="kith_test_genre_to_band"):
    band = ForeignKey(Band)
    genre = ForeignKey(Genre)


def test_plain_selects_and_only_those_skip_piccolos_row_pass() -> None:
    plain = [
        Contact.select().where(Contact.id == Marker()),
        ApiToken.select(ApiToken.id, ApiToken.user.role),
        ContactPoint.select(ContactPoint.value, *ContactPoint.contact.all_columns()),
        Contact.select(Contact.id).output(load_json=False, nested=False),
    ]
    m2m = Band.select(Band.name, Band.genres(Genre.name, as_list=True))
    assert any(isinstance(c, M2MSelect) for c in m2m.columns_delegate.selected_columns)
    processed = [
        Contact.select(Contact.tags).output(load_json=True),
        ContactPoint.select(ContactPoint.contact.display_name).output(nested=True),
        Contact.select().callback(lambda rows: rows),
        m2m,
        Contact.objects(),
        Contact.count(),
        Contact.exists(),
        Contact.raw("SELECT 1"),
    ]
    assert [seam.rows_as_returned(query) for query in plain] == [True] * len(plain)
    assert [seam.rows_as_returned(query) for query in processed] == [False] * len(processed)


def test_kiths_hot_reads_skip_piccolos_row_pass() -> None:
    for prepared in (
        contacts_service._POINTS_OF,
        users_service._TOKEN_BY_HASH,
    ):
        build = prepared._build
        markers = {
            name: [Marker()] if name == "ids" else Marker()
            for name in inspect.signature(build).parameters
        }
        assert seam.rows_as_returned(build(**markers)), prepared


async def test_what_prepared_queries_cannot_reproduce_is_refused(kith: Kith) -> None:
    proxies: list[Callable[..., Any]] = [
        lambda i: Contact.select().where(Contact.id == i).first(),
        lambda i: Contact.select(Contact.id).where(Contact.id == i).output(as_list=True),
        lambda i: Contact.select().where(Contact.id == i).output(as_json=True),
    ]
    for build in proxies:
        with pytest.raises(TypeError, match="piccolo query"):
            await Prepared(build).run(i=new_id())
    # What query.run() refuses, a prepared query refuses the same way.
    with pytest.raises(DeletionError):
        await Contact.delete().run()
    with pytest.raises(DeletionError):
        await Prepared(lambda: Contact.delete()).run()
