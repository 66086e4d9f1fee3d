"""Constraints and indexes piccolo's column options cannot express (SQLite and PostgreSQL)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T22:09:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique external ids, timeline index, one contact per primary email"

STATEMENTS = (
    "CREATE UNIQUE INDEX kith_interaction_source_external_id "
    "ON kith_interaction (source, external_id) WHERE external_id IS NOT NULL",
    "CREATE INDEX kith_interaction_timeline ON kith_interaction (contact, occurred_at, id)",
    "CREATE INDEX kith_interaction_open_tasks ON kith_interaction (due_at) "
    "WHERE kind = 'task' AND done_at IS NULL",
    "CREATE UNIQUE INDEX kith_contact_point_primary_email "
    "ON kith_contact_point (lookup) WHERE kind = 'email' AND is_primary",
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
