"""Reminders: task.due and task.overdue once each (also after a restart), notifications to the
assignee in the in-app list and through plugin channels, digests in the user's time zone, snooze."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from _privacy_workflow import cli_env, run_services
from kith import (
    ContactCreate,
    ContactService,
    Event,
    InteractionCreate,
    InteractionService,
    InvalidInput,
    Kith,
    UserNotice,
    UserService,
    hookimpl,
    utcnow,
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


async def test_channels_get_each_notice_and_a_failing_one_gets_it_again(
    kith: Kith, clock: Clock
) -> None:
    channel = Channel()
    assert kith.plugins is not None
    kith.plugins.register(channel, "test-channel")
    user = await new_user(kith)
    contact = await new_contact(kith)
    task = await new_task(kith, contact, START, user)
    await kith.bus.publish_due_tasks()
    reminders = ReminderService(kith)

    channel.fail = True
    assert await reminders.deliver_pending() == 0
    assert channel.received == []
    channel.fail = False
    assert await reminders.deliver_pending() == 1
    assert await reminders.deliver_pending() == 0
    [notice] = channel.received
    assert (notice.kind, notice.user_id, notice.task_id) == ("task.due", user, task)


async def test_the_in_app_list_over_the_api(
    kith: Kith, kith_client: httpx.AsyncClient, clock: Clock
) -> None:
    users = UserService(kith)
    me = await new_user(kith, "me@staff.example")
    issued = await users.create_token("me@staff.example")
    headers = {"Authorization": f"Bearer {issued.secret}"}
    contact = await new_contact(kith)
    first = await new_task(kith, contact, START, me)
    await new_task(kith, contact, START, await new_user(kith, "other@staff.example"))
    await kith.bus.publish_due_tasks()

    listed = (await kith_client.get("/api/notifications", headers=headers)).json()
    assert listed["unread"] == 1
    [item] = listed["items"]
    assert item["task_id"] == str(first) and item["kind"] == "task.due"
    marked = await kith_client.post(
        "/api/notifications/read", json={"ids": [item["id"]]}, headers=headers
    )
    assert marked.json() == {"marked": 1}
    listed = (await kith_client.get("/api/notifications?unread=true", headers=headers)).json()
    assert listed == {"items": [], "unread": 0}


async def test_digest_for_a_user_in_another_time_zone(
    kith: Kith, kith_client: httpx.AsyncClient, clock: Clock
) -> None:
    # 06:00 UTC is 09:00 in Moscow and 22:00 the day before in Los Angeles.
    reminders = ReminderService(kith)
    moscow = await new_user(kith, "msk@staff.example")
    angeles = await new_user(kith, "la@staff.example")
    await reminders.set_preferences(moscow, ReminderPreferences(timezone="Europe/Moscow"))
    await reminders.set_preferences(
        angeles, ReminderPreferences(timezone="America/Los_Angeles", digest_at="07:30")
    )
    ada = await new_contact(kith, "Ada Lovelace")
    # Moscow's today ends at 21:00 UTC: the first task is in it, the second is tomorrow's.
    today = await new_task(kith, ada, dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC), moscow)
    await new_task(kith, ada, dt.datetime(2026, 12, 7, 21, 30, tzinfo=dt.UTC), moscow)
    la_task = await new_task(kith, ada, dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC), angeles)

    assert await reminders.send_digests() == 1  # Moscow's 09:00 has come, LA's 07:30 not
    assert await reminders.send_digests() == 0  # once a day, restart or not
    [notice] = await reminders.notifications(moscow)
    assert notice.kind == "digest"
    assert notice.payload["day"] == "2026-12-07" and notice.payload["tasks"] == [str(today)]

    digest = await reminders.digest(moscow)
    assert digest.day == "2026-12-07" and digest.timezone == "Europe/Moscow"
    assert [(t.task_id, t.contact, t.summary) for t in digest.tasks] == [
        (today, "Ada Lovelace", "Call back")
    ]

    clock.now = dt.datetime(2026, 12, 7, 15, 30, tzinfo=dt.UTC)  # 07:30 in Los Angeles
    assert await reminders.send_digests() == 1
    [la_notice] = await reminders.notifications(angeles)
    assert la_notice.payload["day"] == "2026-12-07" and la_notice.payload["tasks"] == [str(la_task)]
    with pytest.raises(InvalidInput, match="time zone"):
        await reminders.set_preferences(moscow, ReminderPreferences(timezone="Mars/Olympus"))


async def test_snooze_rearms_the_reminders(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory, clock: Clock
) -> None:
    user = await new_user(kith)
    contact = await new_contact(kith)
    task = await new_task(kith, contact, START, user)
    reminders = ReminderService(kith)
    assert await kith.bus.publish_due_tasks() == 1
    headers = await kith_auth("agent")
    response = await kith_client.post(
        f"/api/tasks/{task}/snooze", json={"minutes": 120}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert dt.datetime.fromisoformat(response.json()["due_at"]) == START + dt.timedelta(hours=2)
    refused = await kith_client.post(
        f"/api/tasks/{task}/snooze",
        json={"minutes": 1, "until": "2027-01-01T00:00:00Z"},
        headers=headers,
    )
    assert refused.status_code == 422
    clock.advance(minutes=90)
    assert await reminders.publish_overdue() == 0  # snoozed: not overdue
    assert await kith.bus.publish_due_tasks() == 0
    clock.advance(minutes=30)
    assert await kith.bus.publish_due_tasks() == 1  # due again at the new time
    clock.advance(minutes=61)
    assert await reminders.publish_overdue() == 1


def test_kith_tasks_snooze_and_reminders_commands(
    kith_database_url: str, kith_cli: KithCli, tmp_path: Path
) -> None:
    _, env = cli_env(kith_database_url, tmp_path / "kith-home")

    async def setup(kith: Kith) -> uuid.UUID:
        user = await new_user(kith)
        contact = await new_contact(kith)
        return await new_task(kith, contact, utcnow() + dt.timedelta(hours=1), user)

    task = run_services(env, setup)
    snoozed = kith_cli("tasks", "snooze", str(task), "--minutes", "30", env=env)
    assert snoozed.exit_code == 0, snoozed.output
    assert "Snoozed 'Call back'" in snoozed.stdout
    neither = kith_cli("tasks", "snooze", str(task), env=env)
    assert neither.exit_code != 0 and "--until or --minutes" in neither.output
    zone = kith_cli("reminders", "timezone", "sam@staff.example", "Asia/Tokyo", env=env)
    assert zone.exit_code == 0 and "Asia/Tokyo" in zone.stdout
    wrong = kith_cli("reminders", "timezone", "sam@staff.example", "Nowhere/Land", env=env)
    assert wrong.exit_code != 0 and "time zone" in wrong.output
    digest = kith_cli("reminders", "digest", "sam@staff.example", env=env)
    assert digest.exit_code == 0, digest.output
