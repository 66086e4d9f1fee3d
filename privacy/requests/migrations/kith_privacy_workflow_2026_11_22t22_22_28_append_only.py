"""Append-only request history and the indexes piccolo's column options cannot express.

Request transitions, extensions and certificates are evidence: a trigger refuses UPDATE and
DELETE on them (and TRUNCATE on PostgreSQL), so not even a hand-written SQL statement can
rewrite history. (The consent ledger's triggers, created here before the privacy module became
three plugins, are the rights plugin's migration's now.)
"""

from kith.privacy.rights.append_only import trigger_statements
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T22:22:28:000000"
VERSION = "1.38.0"
DESCRIPTION = "append-only triggers on the ledger tables; notice and ledger indexes"

APPEND_ONLY = (
    "kith_subject_request_transition",
    "kith_subject_request_extension",
    "kith_subject_certificate",
)

INDEXES = ("CREATE INDEX kith_subject_request_open ON kith_subject_request (state, due_on)",)


async def forwards() -> MigrationManager:
    manager = MigrationManager(
        migration_id=ID, app_name="kith_privacy_workflow", description=DESCRIPTION
    )

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        triggers = trigger_statements(engine.engine_type, APPEND_ONLY)
        for statement in (*INDEXES, *triggers):
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
