"""The in-app notification list, the digest, reminder preferences and snoozing a task; the
same service as ``kith reminders`` and ``kith tasks snooze``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from kith.actor import Actor
from kith.errors import InvalidInput
from kith.http.auth import current_actor
from kith.http.routes.contacts import API, READ, WRITE
from kith.notices import UserNotice
from kith.schemas import InteractionOut
from kith.services.reminders import Digest, ReminderPreferences, ReminderService
from litestar import Request, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter


class NoticePage(msgspec.Struct, kw_only=True):
    items: list[UserNotice]
    unread: int


class MarkRead(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which notifications to mark read: ``ids``, or every one when left out."""

    ids: list[uuid.UUID] | None = None


class Marked(msgspec.Struct, kw_only=True):
    marked: int


class Snooze(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Either ``until`` (a time) or ``minutes`` from now."""

    until: dt.datetime | None = None
    minutes: int | None = None


def _me(actor: Actor) -> uuid.UUID:
    if actor.id is None:
        raise InvalidInput("notifications belong to users; sign in as one")
    return actor.id


@get("/api/notifications", opt=READ, tags=["notifications"], summary="My notifications")
async def list_notifications(
    request: Request[Any, Any, Any],
    unread: Annotated[bool, QueryParameter(description="only those not read yet")] = False,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> NoticePage:
    """The signed-in user's notifications, newest first: tasks due and overdue, digests,
    trigger rules. Ids only; read the contact or task for names."""
    service = ReminderService(request.app.state.kith, API)
    me = _me(current_actor(request))
    items = await service.notifications(me, unread=unread, limit=limit)
    unread_count = len(await service.notifications(me, unread=True, limit=200))
    return NoticePage(items=items, unread=unread_count)


@post("/api/notifications/read", opt=READ, tags=["notifications"], summary="Mark read")
async def mark_read(request: Request[Any, Any, Any], data: JSONBody[MarkRead]) -> Marked:
    service = ReminderService(request.app.state.kith, API)
    marked = await service.mark_read(_me(current_actor(request)), data.ids)
    return Marked(marked=marked)


@get("/api/digest", opt=READ, tags=["notifications"], summary="My digest for today")
async def digest(request: Request[Any, Any, Any]) -> Digest:
    """Today's open tasks due by the end of the day (in the user's time zone) and contacts due
    a call, with names (each read audited)."""
    actor = current_actor(request)
    service = ReminderService(request.app.state.kith, API)
    return await service.digest(_me(actor), actor=actor)


@get("/api/notifications/preferences", opt=READ, tags=["notifications"], summary="Mine")
async def preferences(request: Request[Any, Any, Any]) -> ReminderPreferences:
    service = ReminderService(request.app.state.kith, API)
    return await service.preferences(_me(current_actor(request)))


@put("/api/notifications/preferences", opt=READ, tags=["notifications"], summary="Set mine")
async def set_preferences(
    request: Request[Any, Any, Any], data: JSONBody[ReminderPreferences]
) -> ReminderPreferences:
    """Time zone (``Europe/Berlin``) and local digest time (``07:30``) of the digest."""
    service = ReminderService(request.app.state.kith, API)
    return await service.set_preferences(_me(current_actor(request)), data)


@post("/api/tasks/{task_id:uuid}/snooze", opt=WRITE, tags=["tasks"], summary="Snooze a task")
async def snooze(
    request: Request[Any, Any, Any], task_id: FromPath[uuid.UUID], data: JSONBody[Snooze]
) -> InteractionOut:
    """Move an open task's due time; it is reminded again at the new time."""
    service = ReminderService(request.app.state.kith, API)
    return await service.snooze(
        task_id, until=data.until, minutes=data.minutes, actor=current_actor(request)
    )


REMINDER_ROUTES = [list_notifications, mark_read, digest, preferences, set_preferences, snooze]
