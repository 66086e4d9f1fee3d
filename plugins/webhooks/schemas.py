"""What goes in and out of the webhooks service: subscriptions, deliveries, settings."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

EventPattern = Annotated[str, Meta(min_length=1, max_length=100)]
Url = Annotated[str, Meta(min_length=1, max_length=2000)]
Secret = Annotated[str, Meta(min_length=16, max_length=200)]
Description = Annotated[str, Meta(max_length=200)]
DeliveryState = Literal["pending", "delivered", "failed"]
DELIVERY_STATES: tuple[str, ...] = ("pending", "delivered", "failed")


class WebhookSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``[webhooks]`` section of ``kith.toml``.

    With the defaults a failing delivery is retried after 30 s, 1 min, 2 min ... (doubling, at
    most 6 h apart) and given up after 10 attempts, about 8.5 hours after the event.
    """

    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0
    max_attempts: Annotated[int, Meta(ge=1, le=50)] = 10
    backoff_base_seconds: Annotated[float, Meta(ge=0)] = 30.0
    backoff_max_seconds: Annotated[float, Meta(ge=0)] = 6 * 3600.0
    batch_size: Annotated[int, Meta(ge=1, le=10_000)] = 200
    max_parallel: Annotated[int, Meta(ge=1, le=500)] = 20
    poll_seconds: Annotated[float, Meta(gt=0)] = 5.0
    # After a rotation the old secret signs too (a second v1= signature) for this long, so that
    # receivers can switch over without refusing deliveries; 0 ends it at once. At most 30 days.
    secret_grace_seconds: Annotated[float, Meta(ge=0, le=30 * 86400)] = 86400.0


class SubscriptionCreate(Struct, forbid_unknown_fields=True, kw_only=True):
    """A new subscription. Without ``secret`` one is generated; it is shown once."""

    url: Url
    events: Annotated[list[EventPattern], Meta(min_length=1, max_length=50)]
    secret: Secret | None = None
    include_personal_data: bool = False
    description: Description = ""
    active: bool = True


class SubscriptionPatch(Struct, forbid_unknown_fields=True, kw_only=True):
    """Only the fields present are changed."""

    url: Url | UnsetType = UNSET
    events: Annotated[list[EventPattern], Meta(min_length=1, max_length=50)] | UnsetType = UNSET
    include_personal_data: bool | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class SubscriptionOut(Struct, kw_only=True):
    id: uuid.UUID
    url: str
    events: list[str]
    include_personal_data: bool
    active: bool
    description: str
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime


class SubscriptionWithSecret(Struct, kw_only=True):
    """A subscription just created (or its secret just rotated): ``secret`` is shown this once.
    After a rotation, ``previous_secret_until`` says until when the old secret signs too;
    ``null`` when it stopped at once (a grace period of 0) or for a new subscription."""

    subscription: SubscriptionOut
    secret: str
    previous_secret_until: dt.datetime | None = None


class AttemptOut(Struct, kw_only=True):
    """One attempt of a delivery, as kept in its history. ``error`` is Kith's own account of
    what went wrong; what the receiver answered is not kept readable, only its size."""

    attempt: int
    at: dt.datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    response_bytes: int | None = None


class DeliveryOut(Struct, kw_only=True):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event_name: str
    state: DeliveryState
    attempts: int
    status_code: int | None
    error: str | None
    response_bytes: int | None
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime
    history: list[AttemptOut] = msgspec.field(default_factory=list)


class DeliveryDetail(DeliveryOut, kw_only=True):
    """One delivery with the start of what its receiver last answered (``response_text``,
    with a redirect's ``Location`` first). That text comes from another system and may quote
    the person, so it is stored encrypted under the contact's key, and reading it is recorded
    in their audit log. ``null`` when there was no answer, or for a delivery about nobody."""

    response_text: str | None = None


class DeliveryRun(Struct, kw_only=True):
    """What one pass over due deliveries did."""

    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
