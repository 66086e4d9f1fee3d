"""Custom fields: who declared each (an admin, kith.toml or a plugin), the retention class of a
personal field's values, and when each value was set (for per-field retention)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz, Varchar

ID = "2026-12-08T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "custom field origin, retention and value times"

COLUMNS = (
    (
        "CustomField",
        "kith_custom_field",
        "declared_by",
        Varchar,
        {"length": 100, "default": "admin"},
    ),
    (
        "CustomField",
        "kith_custom_field",
        "retention",
        Varchar,
        {"length": 100, "null": True, "default": None},
    ),
    (
        "CustomFieldValue",
        "kith_custom_field_value",
        "set_at",
        Timestamptz,
        {"null": True, "default": None},
    ),
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)
    for class_name, tablename, name, column_class, params in COLUMNS:
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
