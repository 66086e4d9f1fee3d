"""Append-only request history and the indexes piccolo's column options cannot express.

Request transitions, extensions and certificates are evidence: a trigger refuses UPDATE and
DELETE on them (and TRUNCATE on PostgreSQL), so not even a hand-written SQL statement can
rewrite history. (The consent ledger's triggers, created here before the privacy module became
three plugins, are the rights plugin's migration's now.)
"""

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

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION kith_privacy_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def postgres_statements() -> list[str]:
    statements = [POSTGRES_FUNCTION]
    for table in APPEND_ONLY:
        statements.append(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION kith_privacy_refuse_change()"
        )
        statements.append(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION kith_privacy_refuse_change()"
        )
    return statements


def sqlite_statements() -> list[str]:
    statements = []
    for table in APPEND_ONLY:
        for operation in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} is refused'); "
                "END"
            )
    return statements


async def forwards() -> MigrationManager:
    manager = MigrationManager(
        migration_id=ID, app_name="kith_privacy_workflow", description=DESCRIPTION
    )

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        triggers = (
            postgres_statements() if engine.engine_type == "postgres" else sqlite_statements()
        )
        for statement in (*INDEXES, *triggers):
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
