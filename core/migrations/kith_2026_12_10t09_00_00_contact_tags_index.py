"""A contacts list ordered by last change reads the unarchived contacts in that order from an
index, not all of them sorted, on both engines. A contacts list filtered by tag reads the
contacts holding it, not every contact: on PostgreSQL a GIN index over the tags (a JSON array)
answers the containment test the list asks (``tags::jsonb @> '["vip"]'``). SQLite cannot index
the elements of a JSON array: there the tag is checked on the rows the other conditions and the
order leave."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-10T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "contacts by tag and by last change"

BY_CHANGE = (
    "CREATE INDEX IF NOT EXISTS kith_contact_updated ON kith_contact (archived, updated_at, id)"
)
# SQLite reads the unarchived contacts through the archived index and sorts them for a list
# newest first; PostgreSQL walks the primary key backwards.
BY_ID = "CREATE INDEX IF NOT EXISTS kith_contact_live ON kith_contact (archived, id)"
BY_TAG = "CREATE INDEX IF NOT EXISTS kith_contact_tags ON kith_contact USING gin ((tags::jsonb))"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(BY_CHANGE)
        if engine.engine_type == "postgres":
            await engine.run_ddl(BY_TAG)
        else:
            await engine.run_ddl(BY_ID)

    manager.add_raw(create)
    return manager
