"""Closing the loop: reminder marks, notifications, users' digest times, cadences, contact
values and tiers, trigger rules and their firings."""

import decimal

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import (
    JSON,
    UUID,
    BigSerial,
    Boolean,
    ForeignKey,
    Integer,
    Numeric,
    OnDelete,
    Timestamptz,
    Varchar,
)
from piccolo.engine import engine_finder
from piccolo.table import Table

ID = "2026-12-09T16:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "reminders, notifications, cadences, tiers and triggers"


# Frozen copies of the tables as this migration makes them.
class User(Table, tablename="kith_user"):
    id = UUID(primary_key=True)


class Contact(Table, tablename="kith_contact"):
    id = UUID(primary_key=True)


class Interaction(Table, tablename="kith_interaction"):
    id = UUID(primary_key=True)


class ReminderMark(Table, tablename="kith_reminder_mark"):
    id = UUID(primary_key=True)
    task = ForeignKey(references=Interaction, on_delete=OnDelete.cascade, null=False)
    kind = Varchar(length=20)
    due_at = Timestamptz()
    at = Timestamptz()


class Notification(Table, tablename="kith_notification"):
    id = UUID(primary_key=True)
    user = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False)
    kind = Varchar(length=40)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=True)
    task = ForeignKey(references=Interaction, on_delete=OnDelete.cascade, null=True)
    payload = JSON(default={})
    created_at = Timestamptz()
    read_at = Timestamptz(null=True, default=None)
    delivered_at = Timestamptz(null=True, default=None)
    attempts = Integer(default=0)


class UserReminderPreference(Table, tablename="kith_user_reminders"):
    id = UUID(primary_key=True)
    user = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False, unique=True)
    timezone = Varchar(length=64)
    digest_at = Varchar(length=5, null=True, default=None)
    digest_enabled = Boolean(default=True)


class DigestMark(Table, tablename="kith_digest_mark"):
    id = UUID(primary_key=True)
    user = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False)
    day = Varchar(length=10)
    at = Timestamptz()


class Cadence(Table, tablename="kith_cadence"):
    id = UUID(primary_key=True)
    scope = Varchar(length=10)
    target = Varchar(length=100)
    every_days = Integer()
    created_at = Timestamptz()


class ContactValue(Table, tablename="kith_contact_value"):
    id = BigSerial(primary_key=True)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False)
    currency = Varchar(length=10)
    orders = Integer(default=0)
    monetary = Numeric(digits=(18, 2), default=decimal.Decimal(0))
    first_order_at = Timestamptz(null=True, default=None)
    last_order_at = Timestamptz(null=True, default=None)


class ContactTier(Table, tablename="kith_contact_tier"):
    id = UUID(primary_key=True)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False, unique=True)
    tier = Varchar(length=30)
    computed_at = Timestamptz()


class TriggerRule(Table, tablename="kith_trigger_rule"):
    id = UUID(primary_key=True)
    name = Varchar(length=100, unique=True)
    definition = JSON(default={})
    enabled = Boolean(default=True)
    created_at = Timestamptz()


class Firing(Table, tablename="kith_firing"):
    id = UUID(primary_key=True)
    rule = Varchar(length=120)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False)
    period = Varchar(length=64)
    fired_at = Timestamptz()
    action = Varchar(length=20, default="")


TABLES = (
    ReminderMark,
    Notification,
    UserReminderPreference,
    DigestMark,
    Cadence,
    ContactValue,
    ContactTier,
    TriggerRule,
    Firing,
)

INDEXES = (
    # Once per task, kind and due time: the guard that makes reminders exactly-once.
    "CREATE UNIQUE INDEX kith_reminder_mark_once ON kith_reminder_mark (task, kind, due_at)",
    # A user's in-app list, newest first; the channels' queue.
    'CREATE INDEX kith_notification_user ON kith_notification ("user", created_at)',
    "CREATE INDEX kith_notification_undelivered ON kith_notification (delivered_at)",
    "CREATE INDEX kith_notification_contact ON kith_notification (contact)",
    "CREATE INDEX kith_notification_task ON kith_notification (task)",
    'CREATE UNIQUE INDEX kith_digest_mark_once ON kith_digest_mark ("user", day)',
    "CREATE UNIQUE INDEX kith_cadence_target ON kith_cadence (scope, target)",
    "CREATE UNIQUE INDEX kith_contact_value_currency ON kith_contact_value (contact, currency)",
    "CREATE UNIQUE INDEX kith_firing_once ON kith_firing (rule, contact, period)",
    "CREATE INDEX kith_firing_contact ON kith_firing (contact)",
    # Real interactions of a contact, latest first (cadences, tiers, triggers).
    "CREATE INDEX kith_interaction_contact_kind ON kith_interaction (contact, kind, occurred_at)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for table in (User, Contact, Interaction, *TABLES):
            # The SQL of this engine (the frozen copies are not bound to one).
            table._meta.db = engine
        for table in TABLES:
            for statement in table.create_table().ddl:
                await engine.run_ddl(statement)
        for statement in INDEXES:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
