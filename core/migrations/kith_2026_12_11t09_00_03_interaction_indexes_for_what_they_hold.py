"""Fewer index entries for each interaction written. The contact index is the first column of
the timeline index, which serves everything it did (the card's timeline, a contact's deletion);
the due time and the assignee are set on tasks only, so their indexes keep the rows that have
one: logging a call, a note or a message writes three index entries fewer. Every query on a due
time or an assignee compares it to a value, which the databases know implies it is not null, so
the narrower indexes serve them as before."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-11T09:00:03:000000"
VERSION = "1.38.0"
DESCRIPTION = "interaction indexes only for the rows they serve"

STATEMENTS = (
    "DROP INDEX IF EXISTS kith_interaction_contact",
    "DROP INDEX IF EXISTS kith_interaction_due_at",
    "CREATE INDEX kith_interaction_due_at ON kith_interaction (due_at) WHERE due_at IS NOT NULL",
    "DROP INDEX IF EXISTS kith_interaction_assignee",
    "CREATE INDEX kith_interaction_assignee ON kith_interaction (assignee) "
    "WHERE assignee IS NOT NULL",
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
