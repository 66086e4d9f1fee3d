"""Indexes piccolo's column options cannot express: unique suppression hashes, one record per
erasure step and per recipient notice, a subject's audit entries in time order. (The indexes of
the outbox's events by contact and of requests by sealed subject, created here before the
privacy module became three plugins, belong to core's and the requests plugin's migrations.)
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T22:50:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "subject rights indexes"

STATEMENTS = (
    "CREATE UNIQUE INDEX kith_privacy_suppression_digest "
    "ON kith_privacy_suppression (kind, digest, kek_id, reason)",
    "CREATE UNIQUE INDEX kith_privacy_erasure_step_once ON kith_privacy_erasure_step (job, step)",
    "CREATE UNIQUE INDEX kith_privacy_recipient_notice_once "
    "ON kith_privacy_recipient_notice (notice_id, recipient)",
    "CREATE INDEX kith_privacy_audit_contact_time ON kith_privacy_audit (contact_id, at, id)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(
        migration_id=ID, app_name="kith_privacy_subjects", description=DESCRIPTION
    )

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
