"""Tables of the loop that turns data into work: reminders and notifications, keep-in-touch
cadences, value tiers and trigger rules. Ids, codes, numbers and times only: nothing here is a
personal value, so nothing here is encrypted (names are read from the contact when shown)."""

from __future__ import annotations

import decimal

from kith.ids import new_id
from kith.tables import Contact, Interaction, User
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
from piccolo.table import Table


class ReminderMark(Table, tablename="kith_reminder_mark"):
    """That ``kind`` (``overdue``) was published for a task at one due time: unique per
    (task, kind, due time), so a restarted worker never publishes it twice, and a snoozed task
    (a new due time) is reminded again."""

    id = UUID(primary_key=True, default=new_id)
    task = ForeignKey(references=Interaction, on_delete=OnDelete.cascade, null=False)
    kind = Varchar(length=20)
    due_at = Timestamptz()
    at = Timestamptz()


class Notification(Table, tablename="kith_notification"):
    """One notification to one user: the in-app list, and the queue the other channels
    (plugins' ``kith_deliver_notification``) are served from."""

    id = UUID(primary_key=True, default=new_id)
    user = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False)
    kind = Varchar(length=40)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=True)
    task = ForeignKey(references=Interaction, on_delete=OnDelete.cascade, null=True)
    # Ids, counts and codes only (msgspec JSON): what the notification is about.
    payload = JSON(default={})
    created_at = Timestamptz()
    read_at = Timestamptz(null=True, default=None)
    # When every channel took it (NULL: still to hand to the channels).
    delivered_at = Timestamptz(null=True, default=None)
    attempts = Integer(default=0)


class UserReminderPreference(Table, tablename="kith_user_reminders"):
    """A user's time zone and the local time of their daily digest."""

    id = UUID(primary_key=True, default=new_id)
    user = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False, unique=True)
    timezone = Varchar(length=64)
    digest_at = Varchar(length=5, null=True, default=None)
    digest_enabled = Boolean(default=True)


class DigestMark(Table, tablename="kith_digest_mark"):
    """A user's digest of one local day was made (unique per user and day)."""

    id = UUID(primary_key=True, default=new_id)
    user = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False)
    day = Varchar(length=10)
    at = Timestamptz()


class Cadence(Table, tablename="kith_cadence"):
    """ "Contact every N days" for one contact, one tag or one tier."""

    id = UUID(primary_key=True, default=new_id)
    scope = Varchar(length=10)
    target = Varchar(length=100)
    every_days = Integer()
    created_at = Timestamptz()


class ContactValue(Table, tablename="kith_contact_value"):
    """A contact's orders in one currency: how many, how much, first and last."""

    id = BigSerial(primary_key=True)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False)
    currency = Varchar(length=10)
    orders = Integer(default=0)
    monetary = Numeric(digits=(18, 2), default=decimal.Decimal(0))
    first_order_at = Timestamptz(null=True, default=None)
    last_order_at = Timestamptz(null=True, default=None)


class ContactTier(Table, tablename="kith_contact_tier"):
    """A contact's value tier, as last computed."""

    id = UUID(primary_key=True, default=new_id)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False, unique=True)
    tier = Varchar(length=30)
    computed_at = Timestamptz()


class TriggerRule(Table, tablename="kith_trigger_rule"):
    """A trigger rule added through the API or the CLI (rules of ``kith.toml`` are not
    stored)."""

    id = UUID(primary_key=True, default=new_id)
    name = Varchar(length=100, unique=True)
    definition = JSON(default={})
    enabled = Boolean(default=True)
    created_at = Timestamptz()


class Firing(Table, tablename="kith_firing"):
    """A rule (a trigger rule, or a cadence turning into a task) fired for a contact in one
    period: unique per (rule, contact, period), so it never fires twice for it."""

    id = UUID(primary_key=True, default=new_id)
    rule = Varchar(length=120)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False)
    period = Varchar(length=64)
    fired_at = Timestamptz()
    action = Varchar(length=20, default="")


LOOP_TABLES: list[type[Table]] = [
    ReminderMark,
    Notification,
    UserReminderPreference,
    DigestMark,
    Cadence,
    ContactValue,
    ContactTier,
    TriggerRule,
    Firing,
]
