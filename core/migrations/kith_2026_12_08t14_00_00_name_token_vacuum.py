"""PostgreSQL vacuums and analyses the name search index as it grows, not after a fifth of it
is new: a search reads the index alone (an index-only scan) only for rows the visibility map
marks, and every other row costs a visit to the table. At a million contacts the default
(autovacuum after 20 % new rows, about two million) left a search's probes reading the table.
SQLite has no such settings: nothing to do there."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-08T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "name search index kept vacuumed on PostgreSQL"

# After about 1 % new rows (10,000 contacts at a million): vacuum sets the visibility map,
# analyse refreshes the planner's view of how common each token is.
SETTINGS = (
    "autovacuum_vacuum_scale_factor = 0.02",
    "autovacuum_analyze_scale_factor = 0.02",
)
# Vacuum triggered by inserts alone exists from PostgreSQL 13 on.
INSERT_SETTING = "autovacuum_vacuum_insert_scale_factor = 0.01"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def tune() -> None:
        engine = engine_finder()
        assert engine is not None
        if engine.engine_type != "postgres":
            return
        rows = await engine.run_querystring(
            QueryString("SELECT current_setting('server_version_num')::int AS version")
        )
        settings = [*SETTINGS, *([INSERT_SETTING] if rows[0]["version"] >= 130000 else [])]
        await engine.run_ddl(f"ALTER TABLE kith_name_token SET ({', '.join(settings)})")

    manager.add_raw(tune)
    return manager
