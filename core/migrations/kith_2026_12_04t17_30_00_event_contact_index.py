"""A subject's events found without scanning everyone's (an erasure deletes them, so its cost
does not grow with other subjects). The privacy module's migration created this index before
core answered for its own data; an installation made before then has it under its old name:
dropped, and made again here."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-04T17:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "events by contact"

STATEMENTS = (
    "DROP INDEX IF EXISTS kith_privacy_event_contact",
    "CREATE INDEX kith_event_contact ON kith_event (contact_id)",
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
