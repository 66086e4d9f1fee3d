"""What a user is told: one notice, as every notification channel receives it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from kith.events import utcnow
from kith.ids import new_id
from kith.loop_tables import Notification

NOTICE_KINDS = ("task.due", "task.overdue", "digest", "trigger")


class UserNotice(msgspec.Struct, kw_only=True):
    """A notification to one user. ``kind`` is ``task.due``, ``task.overdue``, ``digest`` or
    ``trigger``; ``payload`` holds ids, counts and codes only, never a personal value: a
    channel that shows names reads them through the services (each read is audited).

    A digest's payload: ``day`` (the user's local date), ``tasks`` (ids of their open tasks due
    by the end of that day) and ``due_contacts`` (ids of their contacts due for a call). A
    trigger's: ``rule``. A task's: ``due_at``."""

    id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    contact_id: uuid.UUID | None
    task_id: uuid.UUID | None
    payload: dict[str, Any]
    created_at: dt.datetime
    read_at: dt.datetime | None = None


async def add_notice(
    user_id: uuid.UUID,
    kind: str,
    *,
    contact_id: uuid.UUID | None = None,
    task_id: uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> uuid.UUID:
    """Write a notification for a user (inside the caller's transaction, if any)."""
    notice_id = new_id()
    await Notification.insert(
        Notification(
            id=notice_id,
            user=user_id,
            kind=kind,
            contact=contact_id,
            task=task_id,
            payload=msgspec.json.encode(payload or {}).decode(),
            created_at=now or utcnow(),
        )
    ).run()
    return notice_id
