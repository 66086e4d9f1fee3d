"""Web forms: forms, submissions and double opt-in confirmations."""

from kith import new_id
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import (
    JSON,
    UUID,
    Boolean,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)

ID = "2026-12-09T12:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "forms, submissions, opt-ins"

NULL = {"null": True, "default": None}
TABLES = {
    ("WebForm", "webforms_form"): (
        ("id", Varchar, {"length": 63, "primary_key": True}),
        ("title", Varchar, {"length": 200}),
        ("definition", JSON, {"default": "{}"}),
        ("active", Boolean, {"default": True}),
        ("origin", Varchar, {"length": 10, "default": "api"}),
        ("dropped_suppressed", Integer, {"default": 0}),
        ("created_at", Timestamptz, {}),
        ("updated_at", Timestamptz, {}),
    ),
    ("WebFormSubmission", "webforms_submission"): (
        ("id", UUID, {"primary_key": True, "default": new_id}),
        ("form_id", Varchar, {"length": 63, "index": True}),
        ("contact_id", UUID, {"index": True}),
        ("interaction_id", UUID, {"index": True}),
        ("created_contact", Boolean, {"default": False}),
        ("utm_source", Varchar, {"length": 200, **NULL}),
        ("utm_medium", Varchar, {"length": 200, **NULL}),
        ("utm_campaign", Varchar, {"length": 200, **NULL}),
        ("utm_term", Varchar, {"length": 200, **NULL}),
        ("utm_content", Varchar, {"length": 200, **NULL}),
        ("gclid", Text, {**NULL, "secret": True}),
        ("yclid", Text, {**NULL, "secret": True}),
        ("page_url", Text, {**NULL, "secret": True}),
        ("referrer", Text, {**NULL, "secret": True}),
        ("client_address", Text, {**NULL, "secret": True}),
        ("user_agent", Text, {**NULL, "secret": True}),
        ("submitted_at", Timestamptz, {}),
    ),
    ("WebFormOptIn", "webforms_opt_in"): (
        ("id", UUID, {"primary_key": True, "default": new_id}),
        ("form_id", Varchar, {"length": 63, "index": True}),
        ("contact_id", UUID, {"index": True}),
        ("submission_id", UUID, {}),
        ("interaction_id", UUID, {}),
        ("purposes", JSON, {"default": "[]"}),
        ("expires_at", Timestamptz, {"index": True}),
        ("confirmed_at", Timestamptz, NULL),
        ("created_at", Timestamptz, {}),
    ),
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="webforms", description=DESCRIPTION)
    for (class_name, tablename), columns in TABLES.items():
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
