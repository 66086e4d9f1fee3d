"""What goes in and out of the telephony service: calls and provider status."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from msgspec import Struct


class CallOut(Struct, kw_only=True):
    """One call as Kith knows it. The other party's number and the recording reference are
    personal data: they are not part of it (the contact and the timeline show them)."""

    id: uuid.UUID
    provider: str
    call_id: str
    contact_id: uuid.UUID | None
    interaction_id: uuid.UUID | None
    direction: str
    extension: str | None
    user_id: uuid.UUID | None
    queue: str | None
    started_at: dt.datetime | None
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration_s: int | None
    talk_s: int | None
    outcome: str | None
    transfers: list[dict[str, Any]] = msgspec.field(default_factory=list)
    recording_seconds: int | None = None
    has_recording: bool = False
    # The audio is stored in Kith and plays at /api/calls/{id}/recording.
    recording_stored: bool = False
    callback_task_id: uuid.UUID | None = None
    callback_closed_by: uuid.UUID | None = None


class ProviderStatus(Struct, kw_only=True):
    """How one provider's events are arriving: ``lag_seconds`` is how late the last event
    reached Kith after the provider says it happened."""

    provider: str
    enabled: bool
    events: int
    last_event_at: dt.datetime | None
    lag_seconds: float | None


class Recorded(Struct, kw_only=True):
    """What a webhook did: how many events it carried and how many were new."""

    events: int
    new: int
