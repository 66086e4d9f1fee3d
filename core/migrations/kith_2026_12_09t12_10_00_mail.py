"""Outgoing email queued for the event bus to send (kith.mail)."""

from kith.ids import new_id
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import UUID, Integer, Text, Timestamptz, Varchar

ID = "2026-12-09T12:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outgoing mail"

COLUMNS = (
    ("id", UUID, {"primary_key": True, "default": new_id}),
    ("contact_id", UUID, {"null": True, "default": None, "index": True}),
    ("recipient", Text, {"default": "", "secret": True}),
    ("subject", Text, {"default": "", "secret": True}),
    ("body", Text, {"default": "", "secret": True}),
    ("html", Text, {"null": True, "default": None, "secret": True}),
    ("reply_to", Varchar, {"length": 320, "null": True, "default": None}),
    ("state", Varchar, {"length": 10, "default": "pending"}),
    ("attempts", Integer, {"default": 0}),
    ("error", Text, {"null": True, "default": None}),
    ("created_at", Timestamptz, {}),
    ("sent_at", Timestamptz, {"null": True, "default": None}),
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)
    manager.add_table(class_name="Mail", tablename="kith_mail")
    for name, column_class, params in COLUMNS:
        manager.add_column(
            table_class_name="Mail",
            tablename="kith_mail",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
        )
    return manager
