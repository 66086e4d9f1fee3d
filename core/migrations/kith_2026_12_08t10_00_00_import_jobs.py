"""CSV import jobs: the file, the progress committed so far and the counts."""

from kith.ids import new_id
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete
from piccolo.columns.column_types import (
    UUID,
    BigInt,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

ID = "2026-12-08T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "import jobs"


class User(Table, tablename="kith_user"):
    id = UUID(primary_key=True, default=new_id)


COLUMNS = (
    ("id", UUID, {"primary_key": True, "default": new_id}),
    ("kind", Varchar, {"length": 20}),
    ("state", Varchar, {"length": 10, "default": "pending", "index": True}),
    ("file_path", Text, {}),
    ("file_name", Varchar, {"length": 300, "default": ""}),
    ("fingerprint", Varchar, {"length": 64, "index": True}),
    ("file_size", BigInt, {"default": 0}),
    ("options", Text, {"default": "{}"}),
    ("total", Integer, {"default": 0}),
    ("rows_done", Integer, {"default": 0}),
    ("last_line", Integer, {"default": 0}),
    ("imported", Integer, {"default": 0}),
    ("invalid", Integer, {"default": 0}),
    ("duplicate", Integer, {"default": 0}),
    ("suppressed", Integer, {"default": 0}),
    ("error_path", Text, {"null": True, "default": None}),
    ("error_bytes", BigInt, {"default": 0}),
    ("message", Text, {"null": True, "default": None}),
    ("lease_owner", Varchar, {"length": 200, "null": True, "default": None}),
    ("lease_until", Timestamptz, {"null": True, "default": None}),
    (
        "created_by",
        ForeignKey,
        {"references": User, "on_delete": OnDelete.set_null, "null": True},
    ),
    ("created_at", Timestamptz, {}),
    ("updated_at", Timestamptz, {}),
    ("finished_at", Timestamptz, {"null": True, "default": None}),
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)
    manager.add_table(class_name="ImportJob", tablename="kith_import_job")
    for name, column_class, params in COLUMNS:
        manager.add_column(
            table_class_name="ImportJob",
            tablename="kith_import_job",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
        )
    return manager
