"""What a telephony provider adapter hands to Kith: one normalised event per thing that happened.

Every adapter (Asterisk AMI, Twilio, Zadarma, Mango Office, or a third party's) turns its own
protocol into these events and nothing else; the call service builds the provider-neutral call
from them. Events may arrive twice and out of order: ``key`` makes a repeat harmless, and the
call service orders what it knows by ``at``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

CallEventKind = Literal["ringing", "answered", "transferred", "ended", "recording_ready"]
CallDirection = Literal["inbound", "outbound", "internal"]
CallOutcome = Literal["answered", "missed", "busy", "failed", "cancelled", "voicemail"]


class CallEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One normalised provider event about one call.

    ``call_id`` is the provider's own id of the whole call (Asterisk's Linkedid, Twilio's
    CallSid, Zadarma's pbx_call_id, Mango's entry_id), so that every leg and every event of a
    call meets on it. ``key`` is unique per event of that provider: delivering the same event
    twice gives the same key.
    """

    provider: str
    call_id: str
    key: str
    kind: CallEventKind
    at: dt.datetime
    direction: CallDirection | None = None
    # The two parties as the provider gave them; the call service normalises them to E.164.
    from_number: str | None = None
    to_number: str | None = None
    # The office side: the extension that rang or talks, and the queue the call came through.
    extension: str | None = None
    queue: str | None = None
    # On "ended": the provider's verdict when it gives one (the call service infers it otherwise).
    outcome: CallOutcome | None = None
    # On "transferred": where the call went.
    transferred_to: str | None = None
    # On "recording_ready": the provider's reference (a URL or a file name) and its length.
    recording_ref: str | None = None
    recording_seconds: int | None = None
    # Anything else an adapter wants to keep for diagnosis; never personal values.
    detail: dict[str, str] = msgspec.field(default_factory=dict)
