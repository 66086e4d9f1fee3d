"""Cheaper equivalents of piccolo's SQLite converters for the column types every read returns.

piccolo registers a converter per declared column type (UUID, TIMESTAMPTZ, BOOLEAN, INTEGER)
that SQLite's driver calls for every value of every row. Each of piccolo's goes through a generic
wrapper and rebuilds its object from the text: reading one contact with its emails and phones
spent more CPU in them than in SQLite (docs/performance.md). These give the same values and the
same errors; UUIDs and timestamps are remembered by their stored bytes (both are immutable, and
a read repeats them: a contact's id and times come back on every row of its emails and phones).

The registration is process-wide, like piccolo's own; :func:`register` is called when Kith's
SQLite engine module is imported, after piccolo's engine module has registered its converters.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

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


CONVERTERS: dict[str, Callable[[bytes], Any]] = {
    "UUID": uuid_out,
    "TIMESTAMPTZ": timestamptz_out,
    "BOOLEAN": boolean_out,
    "INTEGER": integer_out,
}


def register() -> None:
    for type_name, converter in CONVERTERS.items():
        sqlite3.register_converter(type_name, converter)
