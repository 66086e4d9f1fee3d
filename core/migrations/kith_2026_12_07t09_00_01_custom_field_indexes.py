"""Indexes of custom field values (a migration's raw statements run before its new tables
are made, so they come in a migration of their own)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T09:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "custom field value indexes"

STATEMENTS = (
    # One value per contact and field; a list filtered on a field's value finds it by index.
    "CREATE UNIQUE INDEX kith_custom_field_value_contact_field "
    "ON kith_custom_field_value (contact, field)",
    "CREATE INDEX kith_custom_field_value_by_value ON kith_custom_field_value (field, value)",
    "CREATE INDEX kith_custom_field_value_by_number ON kith_custom_field_value (field, number)",
    "CREATE INDEX kith_custom_field_value_lookup ON kith_custom_field_value (lookup) "
    "WHERE lookup IS NOT NULL",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
