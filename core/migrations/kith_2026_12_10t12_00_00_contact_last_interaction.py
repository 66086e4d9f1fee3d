"""Contacts: when each last had an interaction (its newest timeline entry other than a task),
so the contacts list can be ordered by it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz

ID = "2026-12-10T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "contact last interaction time"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)
    manager.add_column(
        table_class_name="Contact",
        tablename="kith_contact",
        column_name="last_interaction_at",
        db_column_name="last_interaction_at",
        column_class_name=Timestamptz.__name__,
        column_class=Timestamptz,
        params={"null": True, "default": None},
    )
    return manager
