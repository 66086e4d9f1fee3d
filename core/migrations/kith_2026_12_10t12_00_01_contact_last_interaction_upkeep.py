"""The database keeps ``kith_contact.last_interaction_at`` itself: triggers on
``kith_interaction`` set it when an interaction is logged, and work it out again when one is
changed, moved to another contact (a merge) or deleted (erasure, retention, an undone import),
whichever code path does it. Existing contacts get theirs here. An index reads the list ordered
by it, contacts with none included, on both engines. (A migration's raw statements run before
its new columns are made: this is a migration of its own.)"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-10T12:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "contact last interaction time: upkeep and index"

# A task is something to do, not something that happened: it does not count.
LATEST = (
    "(SELECT MAX(i.occurred_at) FROM kith_interaction i "
    "WHERE i.contact = {contact} AND i.kind <> 'task')"
)
FILL = (
    "UPDATE kith_contact SET last_interaction_at = "
    + LATEST.format(contact="kith_contact.id")
)
INDEX = (
    "CREATE INDEX IF NOT EXISTS kith_contact_last_interaction "
    "ON kith_contact (archived, last_interaction_at, id)"
)

SQLITE_TRIGGERS = (
    "CREATE TRIGGER kith_interaction_last_insert AFTER INSERT ON kith_interaction "
    "WHEN NEW.kind <> 'task' BEGIN "
    "UPDATE kith_contact SET last_interaction_at = NEW.occurred_at WHERE id = NEW.contact "
    "AND (last_interaction_at IS NULL OR last_interaction_at < NEW.occurred_at); END",
    "CREATE TRIGGER kith_interaction_last_update "
    "AFTER UPDATE OF occurred_at, kind, contact ON kith_interaction BEGIN "
    "UPDATE kith_contact SET last_interaction_at = "
    + LATEST.format(contact="kith_contact.id")
    + " WHERE id IN (OLD.contact, NEW.contact); END",
    "CREATE TRIGGER kith_interaction_last_delete AFTER DELETE ON kith_interaction "
    "WHEN OLD.kind <> 'task' BEGIN "
    "UPDATE kith_contact SET last_interaction_at = "
    + LATEST.format(contact="kith_contact.id")
    + " WHERE id = OLD.contact AND last_interaction_at = OLD.occurred_at; END",
)

POSTGRES_FUNCTION = (
    "CREATE OR REPLACE FUNCTION kith_interaction_last() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "IF TG_OP = 'INSERT' THEN "
    "IF NEW.kind <> 'task' THEN "
    "UPDATE kith_contact SET last_interaction_at = NEW.occurred_at WHERE id = NEW.contact "
    "AND (last_interaction_at IS NULL OR last_interaction_at < NEW.occurred_at); "
    "END IF; "
    "ELSIF TG_OP = 'DELETE' THEN "
    "IF OLD.kind <> 'task' THEN "
    "UPDATE kith_contact SET last_interaction_at = "
    + LATEST.format(contact="kith_contact.id")
    + " WHERE id = OLD.contact AND last_interaction_at = OLD.occurred_at; "
    "END IF; "
    "ELSE "
    "UPDATE kith_contact SET last_interaction_at = "
    + LATEST.format(contact="kith_contact.id")
    + " WHERE id IN (OLD.contact, NEW.contact); "
    "END IF; "
    "RETURN NULL; "
    "END $$"
)
POSTGRES_TRIGGERS = (
    POSTGRES_FUNCTION,
    "CREATE TRIGGER kith_interaction_last_insert_delete AFTER INSERT OR DELETE "
    "ON kith_interaction FOR EACH ROW EXECUTE FUNCTION kith_interaction_last()",
    "CREATE TRIGGER kith_interaction_last_update "
    "AFTER UPDATE OF occurred_at, kind, contact ON kith_interaction FOR EACH ROW "
    "WHEN (OLD.occurred_at IS DISTINCT FROM NEW.occurred_at OR OLD.kind IS DISTINCT FROM "
    "NEW.kind OR OLD.contact IS DISTINCT FROM NEW.contact) "
    "EXECUTE FUNCTION kith_interaction_last()",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        postgres = engine.engine_type == "postgres"
        for statement in (FILL, INDEX, *(POSTGRES_TRIGGERS if postgres else SQLITE_TRIGGERS)):
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
