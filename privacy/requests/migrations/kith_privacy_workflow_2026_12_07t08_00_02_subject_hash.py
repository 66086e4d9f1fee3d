"""Requests whose subject is a contact no longer keep a keyed hash of the address they named:
the contact id says who it was, and the hash would outlive the person's erasure."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T08:00:02:000000"
VERSION = "1.38.0"
DESCRIPTION = "no subject hash beside a contact id"


async def forwards() -> MigrationManager:
    manager = MigrationManager(
        migration_id=ID, app_name="kith_privacy_workflow", description=DESCRIPTION
    )

    async def clear() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(
            "UPDATE kith_subject_request SET subject_lookup = NULL "
            "WHERE contact_id IS NOT NULL AND subject_lookup IS NOT NULL"
        )

    manager.add_raw(clear)
    return manager
