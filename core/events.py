"""Typed events: what happened in the CRM, published through the unit of work."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from kith.ids import new_id


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Event(msgspec.Struct, kw_only=True, frozen=True):
    """One event. ``contact_id`` orders delivery per contact; the payload holds ids, not personal
    data, so events can travel to subscribers without leaking it."""

    name: str
    id: uuid.UUID = msgspec.field(default_factory=new_id)
    occurred_at: dt.datetime = msgspec.field(default_factory=utcnow)
    actor: str = "system"
    contact_id: uuid.UUID | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


class EventType(msgspec.Struct, frozen=True):
    """A declared event name and what its payload carries (for docs and validation).

    ``evidence`` marks events that document a data protection request itself (ids only): an
    erasure keeps them, where it deletes every other event about the person."""

    name: str
    description: str
    payload_keys: tuple[str, ...] = ()
    evidence: bool = False


CORE_EVENT_TYPES: tuple[EventType, ...] = (
    EventType("contact.created", "A contact was created.", ("contact_id", "kind", "source")),
    EventType("contact.updated", "A contact's fields changed.", ("contact_id", "fields")),
    EventType("contact.archived", "A contact was archived.", ("contact_id",)),
    EventType(
        "interaction.logged",
        "An interaction (note, call, task...) was added to a contact's timeline.",
        ("interaction_id", "contact_id", "kind", "source"),
    ),
    EventType("interaction.updated", "An interaction changed.", ("interaction_id", "fields")),
    EventType(
        "contact.merged",
        "Contacts were merged into one (the survivor, contact_id); the others no longer exist.",
        ("contact_id", "merge_id", "losers"),
    ),
    EventType(
        "contact.unmerged",
        "A merge was undone: the merged contacts exist again as they were.",
        ("contact_id", "merge_id", "losers"),
    ),
    EventType("task.due", "A task reached its due time.", ("interaction_id", "assignee_id")),
    EventType(
        "task.overdue",
        "An open task is past its due time by the overdue margin of [reminders].",
        ("interaction_id", "assignee_id", "due_at"),
    ),
    EventType(
        "contact.tier_changed",
        "A contact's value tier changed (from null when it had none, to null when it lost it).",
        ("contact_id", "from", "to"),
    ),
    EventType(
        "trigger.fired",
        "A trigger rule fired for a contact (once per rule, contact and period).",
        ("contact_id", "rule", "period"),
    ),
    EventType("mail.queued", "An email was queued for sending (kith.mail).", ("mail_id",)),
)
