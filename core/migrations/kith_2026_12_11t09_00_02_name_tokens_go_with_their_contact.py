"""A contact's name tokens are deleted with it by the database. The token table has no foreign
key (checking one cost two thirds of a new contact's token insert on SQLite), so before this a
contact deleted by code that did not know about the index (a plugin's clean-up, say) left its
tokens behind: keyed prefixes of a name that no longer belongs to anyone. A trigger deletes them
with the contact, whoever deletes it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-11T09:00:02:000000"
VERSION = "1.38.0"
DESCRIPTION = "name tokens deleted with their contact"

SQLITE = (
    "CREATE TRIGGER kith_contact_name_tokens AFTER DELETE ON kith_contact "
    "BEGIN DELETE FROM kith_name_token WHERE contact = OLD.id; END",
)
# Once per statement, with the deleted rows as a table: a merge or a bulk clean-up deleting
# many contacts is one delete of their tokens, not one per contact.
POSTGRES = (
    "CREATE OR REPLACE FUNCTION kith_contact_name_tokens() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    "DELETE FROM kith_name_token WHERE contact IN (SELECT id FROM gone); "
    "RETURN NULL; END $$",
    "CREATE TRIGGER kith_contact_name_tokens AFTER DELETE ON kith_contact "
    "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
    "EXECUTE FUNCTION kith_contact_name_tokens()",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in POSTGRES if engine.engine_type == "postgres" else SQLITE:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
