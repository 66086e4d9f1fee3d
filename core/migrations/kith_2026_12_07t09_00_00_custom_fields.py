"""Custom fields: their declarations and the contacts' values."""

from kith.ids import new_id
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete
from piccolo.columns.column_types import (
    JSON,
    UUID,
    Boolean,
    DoublePrecision,
    ForeignKey,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

ID = "2026-12-07T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "custom fields and their values"


class Contact(Table, tablename="kith_contact"):
    id = UUID(primary_key=True, default=new_id)


class CustomField(Table, tablename="kith_custom_field"):
    id = UUID(primary_key=True, default=new_id)


FIELD_COLUMNS = (
    ("id", UUID, {"primary_key": True, "default": new_id}),
    ("name", Varchar, {"length": 50, "unique": True}),
    ("label", Varchar, {"length": 200, "default": ""}),
    ("type", Varchar, {"length": 20}),
    ("required", Boolean, {"default": False}),
    ("default", Text, {"null": True, "default": None}),
    ("choices", JSON, {"default": []}),
    ("currency", Varchar, {"length": 3, "null": True, "default": None}),
    ("personal", Boolean, {"default": False}),
    ("searchable", Boolean, {"default": False}),
    ("category", Varchar, {"length": 50, "null": True, "default": None}),
    ("purpose", Varchar, {"length": 100, "null": True, "default": None}),
    ("archived", Boolean, {"default": False}),
    ("created_at", Timestamptz, {}),
    ("updated_at", Timestamptz, {}),
)
VALUE_COLUMNS = (
    ("id", UUID, {"primary_key": True, "default": new_id}),
    (
        "contact",
        ForeignKey,
        {"references": Contact, "on_delete": OnDelete.cascade, "null": False, "index": True},
    ),
    (
        "field",
        ForeignKey,
        {"references": CustomField, "on_delete": OnDelete.cascade, "null": False},
    ),
    ("value", Text, {"null": True, "default": None}),
    ("protected", Text, {"null": True, "default": None, "secret": True}),
    ("number", DoublePrecision, {"null": True, "default": None}),
    ("kind", Varchar, {"length": 60, "null": True, "default": None}),
    ("lookup", Varchar, {"length": 128, "null": True, "default": None}),
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)
    for class_name, tablename, columns in (
        ("CustomField", "kith_custom_field", FIELD_COLUMNS),
        ("CustomFieldValue", "kith_custom_field_value", VALUE_COLUMNS),
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
