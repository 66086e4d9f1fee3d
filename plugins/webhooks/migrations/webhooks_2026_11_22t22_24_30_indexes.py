"""Indexes piccolo's column options cannot express (SQLite and PostgreSQL)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T22:24:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "one delivery per event and subscription; due deliveries"

STATEMENTS = (
    # The subscriber may see an event twice (at-least-once); this keeps one delivery for it.
    "CREATE UNIQUE INDEX webhooks_delivery_event_subscription "
    "ON webhooks_delivery (subscription, event_id)",
    "CREATE INDEX webhooks_delivery_due ON webhooks_delivery (next_attempt_at) "
    "WHERE state = 'pending'",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="webhooks", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
