"""Merges of contacts and the records that undo them."""

from kith.ids import new_id
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete
from piccolo.columns.column_types import UUID, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

ID = "2026-12-08T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "merges of contacts, with their undo records"


class Merge(Table, tablename="kith_merge"):
    id = UUID(primary_key=True, default=new_id)


MERGE_COLUMNS = (
    ("id", UUID, {"primary_key": True, "default": new_id}),
    ("survivor", UUID, {"index": True}),
    ("actor", Varchar, {"length": 200, "default": "system"}),
    ("at", Timestamptz, {}),
    ("undo_until", Timestamptz, {}),
    ("state", Varchar, {"length": 10, "default": "done"}),
    ("survivor_updated_at", Timestamptz, {}),
    ("snapshot", Text, {"null": True, "default": None, "secret": True}),
    ("undone_at", Timestamptz, {"null": True, "default": None}),
    ("undone_by", Varchar, {"length": 200, "null": True, "default": None}),
)
LOSER_COLUMNS = (
    ("id", UUID, {"primary_key": True, "default": new_id}),
    (
        "merge",
        ForeignKey,
        {"references": Merge, "on_delete": OnDelete.cascade, "null": False, "index": True},
    ),
    ("contact_id", UUID, {"index": True}),
    ("position", Integer, {"default": 0}),
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)
    for class_name, tablename, columns in (
        ("Merge", "kith_merge", MERGE_COLUMNS),
        ("MergedContact", "kith_merge_loser", LOSER_COLUMNS),
    ):
        manager.add_table(class_name=class_name, tablename=tablename)
        for name, column_class, params in columns:
            manager.add_column(
                table_class_name=class_name,
                tablename=tablename,
                column_name=name,
                db_column_name=name,
                column_class_name=column_class.__name__,
                column_class=column_class,
                params=params,
            )
    return manager
