"""When the values stored before value times existed were set: at the latest when their
contact last changed, so a retention period counted from then never ends too early. (A
migration's raw statements run before its new columns are made: this is a migration of its
own.)"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-08T13:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "custom field value times of existing values"

STATEMENTS = (
    "UPDATE kith_custom_field_value SET set_at = (SELECT updated_at FROM kith_contact "
    "WHERE kith_contact.id = kith_custom_field_value.contact) WHERE set_at IS NULL",
    # Retention finds a field's values set before a moment by index.
    "CREATE INDEX kith_custom_field_value_set_at ON kith_custom_field_value (field, set_at)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
