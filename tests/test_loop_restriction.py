"""The loop and restriction (Art. 18), on SQLite and PostgreSQL: a contact's tier in its JSON,
and a restricted contact's tier, cadence, digest, due and overdue reminders left alone."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid

import httpx
from kith import (
    ContactCreate,
    ContactService,
    InteractionCreate,
    InteractionService,
    Kith,
    UserService,
)
from kith.bootstrap import open_kith
from kith.http import create_app
from kith.privacy.rights.restriction import RestrictionService
from kith.services.cadences import CadenceIn, CadenceService
from kith.services.reminders import ReminderService
from kith.services.tiers import TierService
from kith.settings import Settings
from kith.testing import TokenFactory

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def _buyer(kith: Kith, name: str, amount: str, days_ago: int = 3) -> uuid.UUID:
    contact = (await ContactService(kith).create(ContactCreate(name=name))).id
    await InteractionService(kith).log(
        contact,
        InteractionCreate(
            kind="order",
            occurred_at=NOW - dt.timedelta(days=days_ago),
            amount=decimal.Decimal(amount),
        ),
    )
    return contact


async def test_the_tier_is_in_the_contact_json(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    kith.bus.clock = lambda: NOW
    headers = await kith_auth("agent")
    buyer = await _buyer(kith, "Buyer", "25000")
    browser = (await ContactService(kith).create(ContactCreate(name="Browser"))).id
    one = (await kith_client.get(f"/api/contacts/{buyer}", headers=headers)).json()
    assert one["tier"] == "B"
    other = (await kith_client.get(f"/api/contacts/{browser}", headers=headers)).json()
    assert other["tier"] is None
    listed = (await kith_client.get("/api/contacts", headers=headers)).json()["items"]
    assert {c["id"]: c["tier"] for c in listed} == {str(buyer): "B", str(browser): None}

    # The card in the browser shows it among the details.
    await UserService(kith).add("sam@staff.example", "agent", "", PASSWORD)
    app = create_app(kith, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://kith.test") as web,
    ):
        token = CSRF.search((await web.get("/signin")).text)
        assert token
        form = {"_csrf_token": token.group(1), "email": "sam@staff.example", "password": PASSWORD}
        await web.post("/signin", data=form)
        card = (await web.get(f"/contacts/{buyer}")).text
        assert '<dt>Tier</dt><dd class="tier">B</dd>' in card
        assert 'class="tier"' not in (await web.get(f"/contacts/{browser}")).text


async def test_a_restricted_contact_keeps_its_tier_and_gets_no_reminders(kith: Kith) -> None:
    kith.bus.clock = lambda: NOW
    owner = (await UserService(kith).add("sam@staff.example", "agent")).id
    restricted = await _buyer(kith, "Restricted", "25000", days_ago=100)
    free = await _buyer(kith, "Free", "25000", days_ago=100)
    await InteractionService(kith).log(
        restricted,
        InteractionCreate(
            kind="task", summary="Call back", due_at=NOW - dt.timedelta(days=1), assignee_id=owner
        ),
    )
    await RestrictionService(kith).restrict(restricted, "accuracy_contested")
    tiers = TierService(kith)
    assert (await tiers.value(restricted, NOW)).tier == "B"

    # A year on, the free contact drops to C; the restricted one stays as it was.
    later = NOW + dt.timedelta(days=365)
    assert await tiers.recompute(now=later) == 1
    assert (await tiers.value(free, later)).tier == "C"
    assert (await tiers.value(restricted, later)).tier == "B"

    # Due for a cadence, but not brought up while restricted.
    cadences = CadenceService(kith)
    await cadences.set(CadenceIn(scope="tier", target="B", every_days=30))
    await cadences.set(CadenceIn(scope="tier", target="C", every_days=30))
    assert [row.contact_id for row in await cadences.due_rows(now=later)] == [free]

    # Its overdue task is passed over: no event, no notice, and none after.
    reminders = ReminderService(kith)
    assert await reminders.publish_overdue(now=NOW) == 0
    assert await reminders.notifications(owner) == []
    assert await reminders.publish_overdue(now=NOW) == 0
    # Nor is it in the owner's digest.
    digest = await reminders.digest(owner, now=NOW)
    assert digest.tasks == []

    # Lifted, it is processed again.
    await RestrictionService(kith).lift(restricted, "details confirmed")
    assert await tiers.recompute(now=later) == 1
    assert (await tiers.value(restricted, later)).tier == "C"


async def test_a_restricted_contacts_task_publishes_no_task_due(
    kith: Kith, kith_settings: Settings
) -> None:
    clock = [NOW - dt.timedelta(hours=1)]
    kith.bus.clock = lambda: clock[0]
    owner = (await UserService(kith).add("sam@staff.example", "agent")).id
    restricted = (await ContactService(kith).create(ContactCreate(name="Restricted"))).id
    free = (await ContactService(kith).create(ContactCreate(name="Free"))).id
    tasks = {}
    for contact in (restricted, free):
        task, _ = await InteractionService(kith).log(
            contact,
            InteractionCreate(kind="task", summary="Call back", due_at=NOW, assignee_id=owner),
        )
        tasks[contact] = task.id
    await RestrictionService(kith).restrict(restricted, "accuracy_contested")
    reminders = ReminderService(kith)
    assert await kith.bus.publish_due_tasks() == 0  # not due yet

    clock[0] = NOW
    assert await kith.bus.publish_due_tasks() == 1
    assert await kith.bus.publish_due_tasks() == 0
    # A restarted worker (a new Kith on the same database) publishes nothing again.
    other = open_kith(kith_settings)
    other.bus.clock = kith.bus.clock
    await other.start()
    try:
        assert await other.bus.publish_due_tasks() == 0
    finally:
        await other.close()
        kith.database._bind()

    def due_events() -> list[str]:
        return [s.event.payload["interaction_id"] for s in summaries]

    summaries = await kith.bus.list_events(name="task.due", limit=100)
    assert due_events() == [str(tasks[free])]
    assert [(n.kind, n.contact_id) for n in await reminders.notifications(owner)] == [
        ("task.due", free)
    ]

    # Lifted, the due time it was passed over for stays passed over, as task.overdue does ...
    await RestrictionService(kith).lift(restricted, "details confirmed")
    assert await kith.bus.publish_due_tasks() == 0
    # ... and a new due time fires as usual.
    await reminders.snooze(tasks[restricted], minutes=30)
    clock[0] = NOW + dt.timedelta(minutes=30)
    assert await kith.bus.publish_due_tasks() == 1
    summaries = await kith.bus.list_events(name="task.due", limit=100)
    assert sorted(due_events()) == sorted([str(tasks[free]), str(tasks[restricted])])
