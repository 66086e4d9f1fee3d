"""The webhooks plugin's tables: subscriptions and the log of their deliveries."""

from __future__ import annotations

from kith import new_id
from piccolo.columns import (
    JSON,
    UUID,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class WebhookSubscription(Table, tablename="webhooks_subscription"):
    """Where to send which events. The secret signs every delivery; it is a credential, not
    personal data, and must be readable to sign, so it is stored as given."""

    id = UUID(primary_key=True, default=new_id)
    url = Text()
    events = JSON(default=[])
    secret = Varchar(length=200)
    include_personal_data = Boolean(default=False)
    active = Boolean(default=True)
    description = Varchar(length=200, default="")
    created_by = Varchar(length=100, default="system")
    created_at = Timestamptz()
    updated_at = Timestamptz()


class WebhookDelivery(Table, tablename="webhooks_delivery"):
    """One event for one subscription, updated after every attempt.

    The request body is not stored: it is rebuilt from the event envelope at each attempt, so
    personal data never rests here and an erased contact is not sent on a later retry.
    """

    id = UUID(primary_key=True, default=new_id)
    subscription = ForeignKey(
        references=WebhookSubscription, on_delete=OnDelete.cascade, null=False, index=True
    )
    event_id = UUID()
    event_name = Varchar(length=100)
    # Which data subject the event is about, for access requests (what went where) and erasure.
    contact_id = UUID(null=True, default=None, index=True)
    # Set once an attempt carried the contact's personal data, not only ids.
    shared_personal_data = Boolean(default=False)
    event = JSON(default={})
    state = Varchar(length=20, default="pending")
    attempts = Integer(default=0)
    status_code = Integer(null=True, default=None)
    error = Text(null=True, default=None)
    history = JSON(default=[])
    next_attempt_at = Timestamptz(null=True, default=None)
    last_attempt_at = Timestamptz(null=True, default=None)
    delivered_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


WEBHOOK_TABLES: list[type[Table]] = [WebhookSubscription, WebhookDelivery]
