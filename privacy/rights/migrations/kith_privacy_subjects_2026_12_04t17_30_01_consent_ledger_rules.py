"""The consent ledger is append-only: triggers refuse UPDATE and DELETE on consent events and
notices (and TRUNCATE on PostgreSQL), so not even a hand-written SQL statement can rewrite
history. Anonymisation after erasure never needs an update: it deletes the pseudonym mapping
(kith_consent_subject) instead. Also the indexes of notices by version and of a subject's
consent history.

The request workflow's migration 2026-11-22T22:22:28 made these before the consent ledger
became the rights plugin's; on an installation made before then this one is recorded as run
without running (piccolo's fake migration).
"""

from kith.privacy.rights.append_only import trigger_statements
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-04T17:30:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "append-only consent ledger; notice and ledger indexes"

APPEND_ONLY = ("kith_consent_event", "kith_privacy_notice")

INDEXES = (
    "CREATE UNIQUE INDEX kith_privacy_notice_purpose_version "
    "ON kith_privacy_notice (purpose, version)",
    "CREATE INDEX kith_consent_event_history "
    "ON kith_consent_event (subject, purpose, occurred_at, id)",
)


async def forwards() -> MigrationManager:
    from kith.privacy.rights.piccolo_app import ran_before

    manager = MigrationManager(
        migration_id=ID, app_name="kith_privacy_subjects", description=DESCRIPTION
    )
    manager.fake = await ran_before("kith_privacy_workflow", "2026-11-22T22:22:28:000000")

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        triggers = trigger_statements(engine.engine_type, APPEND_ONLY)
        for statement in (*INDEXES, *triggers):
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
