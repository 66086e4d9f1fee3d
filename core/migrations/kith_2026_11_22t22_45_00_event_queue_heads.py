"""Per-contact delivery order kept by the database: one pending head per subscriber and
contact, the later deliveries queued behind it (SQLite and PostgreSQL)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T22:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "event delivery queue heads"

STATEMENTS = (
    # Replaced: claims no longer look for earlier pending deliveries of the contact.
    "DROP INDEX kith_event_delivery_pending_contact",
    # At most one delivery of a contact's events to a subscriber is pending at a time.
    "CREATE UNIQUE INDEX kith_event_delivery_one_head "
    "ON kith_event_delivery (subscriber, contact_id) WHERE state = 'pending'",
    # Promotion takes the earliest queued delivery of a subscriber and contact.
    "CREATE INDEX kith_event_delivery_queued "
    "ON kith_event_delivery (subscriber, contact_id, event) WHERE state = 'queued'",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
