"""The name search index's tokens without a foreign key to their contact: on SQLite checking it
for every token row cost two thirds of a new contact's token insert. Whatever deletes a contact
now deletes its tokens itself (``kith.name_index.forget_subjects``).

SQLite cannot drop a constraint: the table is made again without it, its rows copied (ids
included) and both indexes made again. PostgreSQL drops the constraint and keeps the table, with
its indexes and autovacuum settings."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-11T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "name search tokens without a foreign key"

# The columns as the table had them, the foreign key left out; "UUID" keeps the declared type
# the SQLite engine converts by.
SQLITE_TABLE = (
    'CREATE TABLE "kith_name_token_new" ("id" INTEGER PRIMARY KEY NOT NULL, '
    '"token" INTEGER NOT NULL DEFAULT 0, "contact" UUID NOT NULL, '
    '"source" INTEGER NOT NULL DEFAULT 0)'
)
SQLITE_STEPS = (
    SQLITE_TABLE,
    "INSERT INTO kith_name_token_new (id, token, contact, source) "
    "SELECT id, token, contact, source FROM kith_name_token",
    # Its indexes go with it.
    "DROP TABLE kith_name_token",
    "ALTER TABLE kith_name_token_new RENAME TO kith_name_token",
    # As the migration that made the index had them.
    "CREATE INDEX kith_name_token_search ON kith_name_token (token, contact)",
    "CREATE INDEX kith_name_token_contact ON kith_name_token (contact, source)",
)
POSTGRES_KEYS = (
    "SELECT conname FROM pg_constraint "
    "WHERE conrelid = 'kith_name_token'::regclass AND contype = 'f'"
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        if engine.engine_type == "postgres":
            for row in await engine.run_querystring(QueryString(POSTGRES_KEYS)):
                await engine.run_ddl(
                    f'ALTER TABLE kith_name_token DROP CONSTRAINT "{row["conname"]}"'
                )
            return
        for statement in SQLITE_STEPS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
