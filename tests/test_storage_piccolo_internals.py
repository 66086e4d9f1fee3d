"""The piccolo internals Kith's storage relies on are still there and behave as relied on.

Kith's SQLite converters give what piccolo's give, for good values and bad ones.
"""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import uuid

import piccolo.engine.sqlite as piccolo_sqlite
import pytest
from kith.storage import _piccolo_internals as seam
from kith.storage.sqlite import KithSQLiteEngine  # noqa: F401 - registers the converters

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
