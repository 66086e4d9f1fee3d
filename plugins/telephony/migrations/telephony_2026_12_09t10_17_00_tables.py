"""Calls and the provider events taken in."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import JSON, UUID, Integer, Text, Timestamptz, Varchar
from piccolo.engine import engine_finder
from piccolo.table import Table

ID = "2026-12-09T10:17:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "calls and provider events"


# Frozen copies of the tables as this migration makes them.
class TelephonyCall(Table, tablename="telephony_call"):
    id = UUID(primary_key=True)
    provider = Varchar(length=50)
    call_id = Varchar(length=200)
    contact_id = UUID(null=True, default=None)
    interaction_id = UUID(null=True, default=None)
    direction = Varchar(length=10, default="inbound")
    number = Text(null=True, default=None)
    extension = Varchar(length=50, null=True, default=None)
    user_id = UUID(null=True, default=None)
    queue = Varchar(length=100, null=True, default=None)
    started_at = Timestamptz(null=True, default=None)
    answered_at = Timestamptz(null=True, default=None)
    ended_at = Timestamptz(null=True, default=None)
    duration_s = Integer(null=True, default=None)
    talk_s = Integer(null=True, default=None)
    provider_outcome = Varchar(length=20, null=True, default=None)
    outcome = Varchar(length=20, null=True, default=None)
    transfers = JSON(default=[])
    recording_ref = Text(null=True, default=None)
    recording_seconds = Integer(null=True, default=None)
    recording_at = Timestamptz(null=True, default=None)
    callback_task_id = UUID(null=True, default=None)
    callback_closed_by = UUID(null=True, default=None)
    published = JSON(default=[])
    created_at = Timestamptz()
    updated_at = Timestamptz()


class TelephonyEvent(Table, tablename="telephony_event"):
    id = UUID(primary_key=True)
    provider = Varchar(length=50)
    key = Varchar(length=200)
    call_id = Varchar(length=200)
    kind = Varchar(length=20)
    at = Timestamptz()
    received_at = Timestamptz()


INDEXES = (
    # One call per provider call id; one row per provider event (repeats are refused).
    "CREATE UNIQUE INDEX telephony_call_provider_call ON telephony_call (provider, call_id)",
    "CREATE INDEX telephony_call_contact ON telephony_call (contact_id)",
    # Open callbacks of a contact; recordings past their retention.
    "CREATE INDEX telephony_call_callback ON telephony_call (contact_id, callback_task_id)",
    "CREATE INDEX telephony_call_recording_at ON telephony_call (recording_at)",
    "CREATE UNIQUE INDEX telephony_event_provider_key ON telephony_event (provider, key)",
    "CREATE INDEX telephony_event_received ON telephony_event (provider, received_at)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="telephony", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for table in (TelephonyCall, TelephonyEvent):
            # The SQL of this engine (the frozen copies are not bound to one).
            table._meta.db = engine
            for statement in table.create_table().ddl:
                await engine.run_ddl(statement)
        for statement in INDEXES:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
