"""Indexes of the event outbox (SQLite and PostgreSQL). Partial indexes keep the dispatcher's
queries proportional to the work waiting, not to the history kept."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T22:22:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "event outbox indexes"

STATEMENTS = (
    # Fan-out takes the oldest events not yet fanned out.
    "CREATE INDEX kith_event_unfanned ON kith_event (id) WHERE fanned_out_at IS NULL",
    # Per-contact order: an event not yet fanned out holds back later ones of its contact.
    "CREATE INDEX kith_event_unfanned_contact ON kith_event (contact_id, id) "
    "WHERE fanned_out_at IS NULL",
    "CREATE UNIQUE INDEX kith_event_delivery_event_subscriber "
    "ON kith_event_delivery (event, subscriber)",
    # Claiming: a subscriber's pending deliveries in event order.
    "CREATE INDEX kith_event_delivery_pending ON kith_event_delivery (subscriber, event) "
    "WHERE state = 'pending'",
    # Per-contact order: is an earlier delivery of this contact to this subscriber pending?
    "CREATE INDEX kith_event_delivery_pending_contact "
    "ON kith_event_delivery (subscriber, contact_id, event) WHERE state = 'pending'",
    "CREATE INDEX kith_event_delivery_dead ON kith_event_delivery (event) WHERE state = 'dead'",
    # The scheduler: open tasks whose due time has no task.due yet (re-armed when due_at moves).
    "CREATE INDEX kith_interaction_due_unpublished ON kith_interaction (due_at) "
    "WHERE kind = 'task' AND done_at IS NULL AND due_at IS NOT NULL "
    "AND (due_event_at IS NULL OR due_event_at <> due_at)",
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
