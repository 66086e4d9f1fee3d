"""The custom field declarations' version: one row the database sets to a new random value
whenever a statement adds, changes or deletes a declaration, whichever process or code path runs
it. A process remembers the declarations it read with their version and reads them again only
when the version differs (``kith.services.fields.FieldService.declared_at``)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-11T09:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "custom field declarations' version"

TABLE = (
    "CREATE TABLE kith_custom_field_version (id INTEGER PRIMARY KEY NOT NULL, "
    "version BIGINT NOT NULL)"
)
FIRST = "INSERT INTO kith_custom_field_version (id, version) VALUES (1, 0)"

SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER kith_custom_field_{event.lower()} AFTER {event} ON kith_custom_field "
    "BEGIN UPDATE kith_custom_field_version SET version = random(); END"
    for event in ("INSERT", "UPDATE", "DELETE")
)
POSTGRES_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION kith_custom_field_changed() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    # 63 random bits: random() gives a double in [0, 1).
    "UPDATE kith_custom_field_version SET version = "
    "floor(random() * 9223372036854775807)::bigint; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER kith_custom_field_changed "
    "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON kith_custom_field "
    "FOR EACH STATEMENT EXECUTE FUNCTION kith_custom_field_changed()",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        triggers = POSTGRES_TRIGGERS if engine.engine_type == "postgres" else SQLITE_TRIGGERS
        for statement in (TABLE, FIRST, *triggers):
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
