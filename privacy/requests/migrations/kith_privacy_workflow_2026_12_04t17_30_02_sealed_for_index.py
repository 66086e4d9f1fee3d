"""Requests by the subject their free text is sealed for (erasure counts them), an index the
rights plugin's migration created before the privacy module became three plugins.

An installation made before then has it under its old name: dropped, and made again here.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-04T17:30:02:000000"
VERSION = "1.38.0"
DESCRIPTION = "requests by sealed subject"

STATEMENTS = (
    "DROP INDEX IF EXISTS kith_privacy_request_sealed_for",
    "CREATE INDEX kith_subject_request_sealed_for ON kith_subject_request (sealed_for)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(
        migration_id=ID, app_name="kith_privacy_workflow", description=DESCRIPTION
    )

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
