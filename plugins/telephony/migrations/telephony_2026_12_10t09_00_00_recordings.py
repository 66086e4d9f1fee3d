"""Recordings fetched into Kith: their media type, size and times on the call, and a table of
their sealed pieces."""

from __future__ import annotations

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import UUID, Bytea, Integer
from piccolo.columns.column_types import Timestamptz, Varchar
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder
from piccolo.table import Table

ID = "2026-12-10T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "recordings"

_PARAMS: dict[str, Any] = {
    "default": None,
    "null": True,
    "primary_key": False,
    "unique": False,
    "index": False,
    "index_method": IndexMethod.btree,
    "choices": None,
    "db_column_name": None,
    "secret": False,
}


# A frozen copy of the table as this migration makes it.
class TelephonyRecordingPiece(Table, tablename="telephony_recording_piece"):
    id = UUID(primary_key=True)
    call = UUID()
    contact_id = UUID()
    seq = Integer()
    data = Bytea()


INDEXES = (
    # A recording's pieces in order, and a contact's (erasure, merges).
    "CREATE UNIQUE INDEX telephony_recording_piece_call ON telephony_recording_piece (call, seq)",
    "CREATE INDEX telephony_recording_piece_contact ON telephony_recording_piece (contact_id)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="telephony", description=DESCRIPTION)
    for name, column_class, params in (
        ("recording_type", Varchar, {"length": 100}),
        ("recording_bytes", Integer, {}),
        ("recording_stored_at", Timestamptz, {}),
        ("recording_deleted_at", Timestamptz, {}),
    ):
        manager.add_column(
            table_class_name="TelephonyCall",
            tablename="telephony_call",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params={**_PARAMS, **params},
            schema=None,
        )

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        TelephonyRecordingPiece._meta.db = engine
        for statement in TelephonyRecordingPiece.create_table().ddl:
            await engine.run_ddl(statement)
        for statement in INDEXES:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
