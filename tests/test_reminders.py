"""Reminders: task.due and task.overdue once each (also after a restart), notifications to the
assignee in the in-app list and through plugin channels, digests in the user's time zone, snooze."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from kith import (
    ContactCreate,
    ContactService,
    Event,
    InteractionCreate,
    InteractionService,
    Kith,
    Subscriber,
    UserNotice,
    UserService,
    hookimpl,
)
from kith.bootstrap import open_kith
from kith.services.reminders import ReminderPreferences, ReminderService
from kith.settings import Settings
from kith.testing import KithCli, TokenFactory

START = dt.datetime(2026, 12, 7, 6, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class Channel:
    """A notification channel plugin: what it was handed, failing on demand."""

    def __init__(self) -> None:
        self.received: list[UserNotice] = []
        self.fail = False

    @hookimpl
    async def kith_deliver_notification(self, kith: Kith, notice: UserNotice) -> None:
        if self.fail:
            raise RuntimeError("the channel is down")
        self.received.append(notice)


@pytest.fixture
def clock(kith: Kith) -> Clock:
    fake = Clock()
    kith.bus.clock = fake
    return fake


async def new_user(kith: Kith, email: str = "sam@staff.example") -> uuid.UUID:
    return (await UserService(kith).add(email, "agent")).id


async def new_contact(kith: Kith, name: str = "Ada Lovelace", **extra: Any) -> uuid.UUID:
    return (await ContactService(kith).create(ContactCreate(name=name, **extra))).id


async def new_task(
    kith: Kith, contact_id: uuid.UUID, due: dt.datetime, assignee: uuid.UUID | None
) -> uuid.UUID:
    task, _ = await InteractionService(kith).log(
        contact_id,
        InteractionCreate(kind="task", summary="Call back", due_at=due, assignee_id=assignee),
    )
    return task.id


async def published(kith: Kith, name: str) -> list[Event]:
    return [summary.event for summary in await kith.bus.list_events(name=name, limit=100)]


async def test_due_and_overdue_fire_once_each_also_across_a_restart(
    kith: Kith, kith_settings: Settings, clock: Clock
) -> None:
    user = await new_user(kith)
    contact = await new_contact(kith)
    task = await new_task(kith, contact, START + dt.timedelta(hours=1), user)
    reminders = ReminderService(kith)

    assert await kith.bus.publish_due_tasks() == 0
    assert await reminders.publish_overdue() == 0
    clock.advance(hours=1)
    assert await kith.bus.publish_due_tasks() == 1
    assert await reminders.publish_overdue() == 0  # due, not overdue yet (60 minutes' margin)
    clock.advance(minutes=61)
    assert await reminders.publish_overdue() == 1
    assert await reminders.publish_overdue() == 0

    # A restarted worker (a new Kith on the same database) publishes nothing again.
    other = open_kith(kith_settings)
    other.bus.clock = clock
    await other.start()
    try:
        assert await other.bus.publish_due_tasks() == 0
        assert await ReminderService(other).publish_overdue() == 0
    finally:
        await other.close()
        kith.database._bind()

    [due] = await published(kith, "task.due")
    [overdue] = await published(kith, "task.overdue")
    for event in (due, overdue):
        assert event.contact_id == contact
        assert event.payload["interaction_id"] == str(task)
        assert event.payload["assignee_id"] == str(user)
    notices = await reminders.notifications(user)
    assert [n.kind for n in notices] == ["task.overdue", "task.due"]
    assert all(n.task_id == task and n.contact_id == contact for n in notices)
    # Nothing personal travels in the notice.
    assert "Call back" not in repr(notices) and "Ada" not in repr(notices)
