"""Triggers that make evidence tables append-only: UPDATE and DELETE are refused on both
engines (and TRUNCATE on PostgreSQL), so not even a hand-written SQL statement can rewrite
history. The migrations of the consent ledger and of the request history create them."""

from __future__ import annotations

from collections.abc import Sequence

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION kith_privacy_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def trigger_statements(engine_type: str, tables: Sequence[str]) -> list[str]:
    """The statements that make ``tables`` append-only on an engine (``postgres``, ``sqlite``)."""
    if engine_type == "postgres":
        statements = [POSTGRES_FUNCTION]
        for table in tables:
            statements.append(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION kith_privacy_refuse_change()"
            )
            statements.append(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION kith_privacy_refuse_change()"
            )
        return statements
    return [
        f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} is refused'); END"
        for table in tables
        for operation in ("UPDATE", "DELETE")
    ]
