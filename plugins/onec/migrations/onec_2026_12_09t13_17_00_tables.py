"""The 1C plugin's tables: links to 1C objects, order details, exchange sessions and log,
notices owed to 1C and sync conflicts."""

from __future__ import annotations

from typing import Any

from kith import new_id
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import (
    JSON,
    UUID,
    Boolean,
    Integer,
    Numeric,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-09T13:17:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "1C links, orders, sessions, exchanges, notices and conflicts"


def _params(**given: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "default": None,
        "null": False,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": False,
    }
    params.update(given)
    return params


def _id(generated: bool = True) -> tuple[str, type[Column], dict[str, Any]]:
    return ("id", UUID, _params(primary_key=True, default=new_id if generated else None))


def _text(
    name: str, length: int | None = None, **given: Any
) -> tuple[str, type[Column], dict[str, Any]]:
    given.setdefault("default", "")
    if length is None:
        return (name, Text, _params(**given))
    return (name, Varchar, _params(length=length, **given))


def _time(name: str, null: bool = False) -> tuple[str, type[Column], dict[str, Any]]:
    return (name, Timestamptz, _params(null=null))


def _flag(name: str) -> tuple[str, type[Column], dict[str, Any]]:
    return (name, Boolean, _params(default=False))


TABLES: dict[tuple[str, str], list[tuple[str, type[Column], dict[str, Any]]]] = {
    ("OnecLink", "onec_link"): [
        _id(),
        _text("kind", 20),
        _text("onec_id", 200),
        ("kith_id", UUID, _params()),
        ("contact_id", UUID, _params(null=True, index=True)),
        _text("digest", 64),
        ("synced", JSON, _params(default="{}")),
        _text("data_version", 100),
        _text("state", 20, default="active"),
        _time("updated_at"),
    ],
    ("OnecOrder", "onec_order"): [
        _id(generated=False),
        ("contact_id", UUID, _params(index=True)),
        _text("onec_id", 200),
        _text("operation", 50),
        _text("number", 100),
        ("amount", Numeric, _params(null=True, digits=(18, 2))),
        _text("currency", 3),
        _text("status", 200),
        _flag("paid"),
        _flag("shipped"),
        _flag("cancelled"),
        _flag("deleted"),
        ("lines", JSON, _params(default="[]")),
        _time("updated_at"),
    ],
    ("OnecSession", "onec_session"): [
        _id(),
        _text("token_hash", 64, unique=True),
        _text("exchange_type", 20),
        _time("created_at"),
        _time("expires_at"),
    ],
    ("OnecExchange", "onec_exchange"): [
        _id(),
        _text("channel", 20),
        _text("action", 40),
        _text("filename", 200),
        _text("state", 20, default="running"),
        ("counts", JSON, _params(default="{}")),
        _text("error"),
        _time("started_at"),
        _time("finished_at", null=True),
    ],
    ("OnecNotice", "onec_notice"): [
        _id(),
        ("notice_id", UUID, _params()),
        _text("onec_id", 200),
        _text("action", 20),
        _text("state", 20, default="pending"),
        ("attempts", Integer, _params(default=0)),
        _text("error"),
        _time("created_at"),
        _time("sent_at", null=True),
    ],
    ("OnecConflict", "onec_conflict"): [
        _id(),
        ("contact_id", UUID, _params(index=True)),
        _text("onec_id", 200),
        _text("field", 100),
        _text("winner", 10),
        _time("created_at"),
    ],
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="onec", description=DESCRIPTION)
    for (class_name, tablename), columns in TABLES.items():
        manager.add_table(class_name=class_name, tablename=tablename, schema=None, columns=None)
        for name, column_class, params in columns:
            manager.add_column(
                table_class_name=class_name,
                tablename=tablename,
                column_name=name,
                db_column_name=name,
                column_class_name=column_class.__name__,
                column_class=column_class,
                params=params,
                schema=None,
            )
    return manager
