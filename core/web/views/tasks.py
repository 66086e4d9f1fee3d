"""My day: the signed-in person's tasks due today and overdue, done or snoozed in one click."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from kith.errors import NotFound
from kith.events import utcnow
from kith.http.auth import current_actor
from kith.schemas import InteractionPatch
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.web.views.common import STAFF, WEB, form_of, kith_of, render, safe_next, see_other
from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

SNOOZES = {"hour": dt.timedelta(hours=1), "tomorrow": dt.timedelta(days=1)}
# A task snoozed to tomorrow comes back at this hour of the installation's day.
MORNING = dt.time(9, 0)


@get("/my-day", opt=STAFF)
async def my_day(request: Request[Any, Any, Any]) -> Template:
    actor = current_actor(request)
    kith = kith_of(request)
    page = await InteractionService(kith, WEB).tasks(
        due="today", assignee_id=actor.id, limit=200, actor=actor
    )
    now = utcnow()
    names: dict[uuid.UUID, str] = {}
    contacts = ContactService(kith, WEB)
    for task in page.items:
        if task.contact_id not in names:
            try:
                names[task.contact_id] = (await contacts.get(task.contact_id, actor)).name
            except NotFound:
                names[task.contact_id] = ""
    overdue = [task for task in page.items if task.due_at is not None and task.due_at < now]
    today = [task for task in page.items if task not in overdue]
    return render(request, "my_day.html", overdue=overdue, today=today, names=names)


@post("/tasks/{task_id:uuid}/done", opt=STAFF)
async def task_done(request: Request[Any, Any, Any], task_id: FromPath[uuid.UUID]) -> Redirect:
    values = await form_of(request)
    await InteractionService(kith_of(request), WEB).complete(task_id, current_actor(request))
    return see_other(safe_next(values.get("next") or "/my-day"))


def snoozed_until(choice: str, now: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    if choice == "tomorrow":
        local = (now.astimezone(zone) + SNOOZES["tomorrow"]).date()
        return dt.datetime.combine(local, MORNING, tzinfo=zone)
    return now + SNOOZES["hour"]


@post("/tasks/{task_id:uuid}/snooze", opt=STAFF)
async def task_snooze(request: Request[Any, Any, Any], task_id: FromPath[uuid.UUID]) -> Redirect:
    values = await form_of(request)
    zone = zoneinfo.ZoneInfo(kith_of(request).settings.timezone)
    until = snoozed_until(values.get("until", "tomorrow"), utcnow(), zone)
    await InteractionService(kith_of(request), WEB).update(
        task_id, InteractionPatch(due_at=until), current_actor(request)
    )
    return see_other(safe_next(values.get("next") or "/my-day"))


PAGES = [my_day, task_done, task_snooze]
