"""Indexes piccolo's column options cannot express (SQLite and PostgreSQL)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-09T13:17:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "one link per 1C object; one notice per subject notice and 1C object"

STATEMENTS = (
    # Re-imports find the record made from a 1C object by its Ид; two at once cannot make two.
    "CREATE UNIQUE INDEX onec_link_object ON onec_link (kind, onec_id)",
    "CREATE INDEX onec_link_kith ON onec_link (kith_id)",
    "CREATE UNIQUE INDEX onec_notice_once ON onec_notice (notice_id, onec_id)",
    "CREATE INDEX onec_exchange_started ON onec_exchange (started_at)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="onec", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
