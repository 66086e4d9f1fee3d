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
    personal data, but whoever reads it can sign as Kith, so it is sealed through the field
    protector under the subscription's own key (:mod:`kith.plugins.webhooks.secret_store`)."""

    id = UUID(primary_key=True, default=new_id)
    url = Text()
    events = JSON(default=[])
    # Readable only without field encryption (or until `kith migrate` seals it), else "".
    secret = Varchar(length=200)
    sealed_secret = Text(null=True, default=None)
    # The secret before the last rotation, sealed; it signs too until previous_secret_until.
    previous_secret = Text(null=True, default=None)
    previous_secret_until = Timestamptz(null=True, default=None)
    include_personal_data = Boolean(default=False)
    active = Boolean(default=True)
    description = Varchar(length=200, default="")
    created_by = Varchar(length=100, default="system")
    created_at = Timestamptz()
    updated_at = Timestamptz()


class WebhookDelivery(Table, tablename="webhooks_delivery"):
    """One event for one subscription, updated after every attempt.

    The request body is not stored: it is rebuilt from the event envelope at each attempt, so
    an erased contact is not sent on a later retry. What the receiver answered is text from
    another system that may quote the person: only its size is kept readable, and the start of
    the last answer is a personal field (``response_text``) sealed under the contact's key.
    ``error`` holds Kith's own words only.
    """

    # The contact id is no foreign key (the delivery log outlives a deleted contact), so the
    # privacy registry is told which column names a row's subject.
    kith_subject_column = "contact_id"

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
    # The last answer's size in bytes, and its start (with a redirect's Location), sealed.
    response_bytes = Integer(null=True, default=None)
    response_text = Text(null=True, default=None, secret=True)
    history = JSON(default=[])
    next_attempt_at = Timestamptz(null=True, default=None)
    last_attempt_at = Timestamptz(null=True, default=None)
    delivered_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


WEBHOOK_TABLES: list[type[Table]] = [WebhookSubscription, WebhookDelivery]
