"""Trigger rules: the four examples of the guide, each with its dry run; firing once per rule,
contact and period; a restricted contact triggers nothing; rules over the API and the CLI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from _privacy_workflow import NEWSLETTER, cli_env, configure_privacy, run_services
from kith import (
    ContactCreate,
    ContactService,
    InteractionCreate,
    InteractionService,
    Kith,
    UserService,
    utcnow,
)
from kith.loop_settings import RuleSpec, TriggerSettings
from kith.privacy.rights.consent import ConsentService
from kith.privacy.rights.restriction import RestrictionService
from kith.services.cadences import CadenceIn, CadenceService
from kith.services.reminders import ReminderService
from kith.services.triggers import TriggerService, working_hours_between
from kith.testing import KithCli, TokenFactory


def next_monday(hour: int) -> dt.datetime:
    """A Monday at ``hour`` UTC at least a day from now (contacts are created at the real
    time, so the rules look at them from a little later)."""
    day = (utcnow() + dt.timedelta(days=1)).date()
    while day.isoweekday() != 1:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


NOW = next_monday(15)


def configure_triggers(kith: Kith, *rules: RuleSpec) -> None:
    extra = dict(kith.settings.extra)
    extra["triggers"] = {"rules": [__import__("msgspec").to_builtins(r) for r in rules]}
    kith.settings = dataclasses.replace(kith.settings, extra=extra)


async def person(kith: Kith, name: str, **extra: Any) -> uuid.UUID:
    return (await ContactService(kith).create(ContactCreate(name=name, **extra))).id


async def log(kith: Kith, contact: uuid.UUID, kind: str, at: dt.datetime, **extra: Any) -> None:
    await InteractionService(kith).log(
        contact,
        InteractionCreate(kind=kind, occurred_at=at, **extra),  # type: ignore[arg-type]
    )


async def test_churn_rule_orders_overdue_twice_their_interval(kith: Kith) -> None:
    kith.bus.clock = lambda: NOW
    owner = (await UserService(kith).add("owner@staff.example", "agent")).id
    lapsing = await person(kith, "Lapsing Customer", owner_id=owner)
    regular = await person(kith, "Regular Customer", owner_id=owner)
    once = await person(kith, "One Order", owner_id=owner)
    for days in (121, 91, 61):
        await log(kith, lapsing, "order", NOW - dt.timedelta(days=days), amount=decimal.Decimal(10))
    for days in (40, 10):
        await log(kith, regular, "order", NOW - dt.timedelta(days=days), amount=decimal.Decimal(10))
    await log(kith, once, "order", NOW - dt.timedelta(days=300), amount=decimal.Decimal(10))
    rule = RuleSpec(name="churn", condition="order_gap", action="task", factor=2.0)
    configure_triggers(kith, rule)
    triggers = TriggerService(kith)

    dry = await triggers.dry_run("churn", names=True)
    assert [(h.contact_id, h.name) for h in dry.hits] == [(lapsing, "Lapsing Customer")]
    assert dry.hits[0].reason == "orders every 30 days on average; none for 61 days"
    assert await InteractionService(kith).tasks(assignee_id=owner) is not None
    assert (await InteractionService(kith).tasks(assignee_id=owner)).items == []  # dry: no task

    assert await triggers.run("churn") == 1
    assert await triggers.run("churn") == 0  # once per rule, contact and period
    [task] = (await InteractionService(kith).tasks(assignee_id=owner)).items
    assert task.contact_id == lapsing and task.summary.startswith("churn: orders every 30")
    again = await triggers.dry_run("churn")
    assert again.hits == [] and again.already_fired == 1
    [event] = [s.event for s in await kith.bus.list_events(name="trigger.fired")]
    assert event.contact_id == lapsing and event.payload["rule"] == "churn"

    # A new order starts a new period: should it lapse again, the rule fires again.
    await log(kith, lapsing, "order", NOW - dt.timedelta(days=1), amount=decimal.Decimal(10))
    assert (await triggers.dry_run("churn")).hits == []
    later = NOW + dt.timedelta(days=200)
    assert await triggers.run("churn", later) == 2  # lapsing (new period) and regular


async def test_missed_call_not_returned_in_two_working_hours_notifies_the_manager(
    kith: Kith,
) -> None:
    kith.bus.clock = lambda: NOW
    manager = (await UserService(kith).add("manager@staff.example", "agent")).id
    waiting = await person(kith, "Waiting Caller")
    recent = await person(kith, "Recent Caller")
    returned = await person(kith, "Returned Caller")
    monday = NOW.replace(hour=0)
    await log(kith, waiting, "call", monday.replace(hour=10), direction="inbound")
    await log(kith, recent, "call", monday.replace(hour=14), direction="inbound", duration_s=0)
    await log(kith, returned, "call", monday.replace(hour=9), direction="inbound")
    await log(kith, returned, "call", monday.replace(hour=9, minute=30), direction="outbound")
    rule = RuleSpec(
        name="callback",
        condition="missed_call",
        action="notify",
        hours=2,
        user="manager@staff.example",
    )
    configure_triggers(kith, rule)
    triggers = TriggerService(kith)

    dry = await triggers.dry_run("callback")
    assert [h.contact_id for h in dry.hits] == [waiting]
    assert dry.hits[0].reason == "missed call not returned for 5.0 working hours"
    assert await triggers.run("callback") == 1
    [notice] = await ReminderService(kith).notifications(manager)
    assert notice.kind == "trigger" and notice.contact_id == waiting
    assert notice.payload["rule"] == "callback"
    # The recent one falls due at 16:00.
    assert await triggers.run("callback", NOW + dt.timedelta(hours=1)) == 1


def test_working_hours_skip_nights_and_weekends() -> None:
    settings = TriggerSettings()
    friday = dt.datetime(2026, 12, 4, 17, 0, tzinfo=dt.UTC)
    monday = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
    assert working_hours_between(friday, monday, settings, dt.UTC) == 2.0


@pytest.fixture
def ledger(kith: Kith) -> ConsentService:
    configure_privacy(kith, purposes={"newsletter": NEWSLETTER})
    return ConsentService(kith)


async def test_consent_withdrawn_stops_cadences(kith: Kith, ledger: ConsentService) -> None:
    ada = await person(kith, "Ada Lovelace", tags=["vip"])
    bob = await person(kith, "Bob Consenting", tags=["vip"])
    await CadenceService(kith).set(CadenceIn(scope="tag", target="vip", every_days=7))
    for who in (ada, bob):
        await ledger.give(who, "newsletter", channel="form")
    await ledger.withdraw(ada, "newsletter", channel="email")
    rule = RuleSpec(
        name="stop-on-withdrawal",
        condition="event",
        event="consent.withdrawn",
        action="tag",
        tag_to_add="no-cadence",
    )
    configure_triggers(kith, rule)
    later = utcnow() + dt.timedelta(days=8)
    kith.bus.clock = lambda: later
    triggers = TriggerService(kith)
    assert {d.contact_id for d in await CadenceService(kith).due_rows()} == {ada, bob}

    dry = await triggers.dry_run("stop-on-withdrawal")
    assert [h.contact_id for h in dry.hits] == [ada]
    assert await triggers.run_all() == 1
    assert "no-cadence" in (await ContactService(kith).get(ada)).tags
    assert [d.contact_id for d in await CadenceService(kith).due_rows()] == [bob]


async def test_form_lead_without_interaction_in_three_days_gets_a_task(kith: Kith) -> None:
    quiet = await person(kith, "Quiet Lead", source="webforms")
    called = await person(kith, "Called Lead", source="webforms")
    await person(kith, "Imported", source="import")
    await log(kith, quiet, "form_submission", utcnow())
    await log(kith, called, "call", utcnow(), direction="outbound", duration_s=60)
    rule = RuleSpec(
        name="lead-followup",
        condition="no_interaction",
        source="webforms",
        days=3,
        action="task",
        summary="Call the new lead",
    )
    configure_triggers(kith, rule)
    triggers = TriggerService(kith)
    assert (await triggers.dry_run("lead-followup", utcnow() + dt.timedelta(days=2))).hits == []
    kith.bus.clock = lambda: utcnow() + dt.timedelta(days=4)
    dry = await triggers.dry_run("lead-followup")
    assert [h.contact_id for h in dry.hits] == [quiet]
    assert await triggers.run("lead-followup") == 1
    [task] = (await InteractionService(kith).tasks()).items
    assert (task.contact_id, task.summary) == (quiet, "Call the new lead")
    assert await triggers.run("lead-followup") == 0


async def test_a_restricted_contact_triggers_nothing(kith: Kith) -> None:
    kith.bus.clock = lambda: NOW
    lapsing = await person(kith, "Restricted Customer")
    for days in (121, 91, 61):
        await log(kith, lapsing, "order", NOW - dt.timedelta(days=days), amount=decimal.Decimal(5))
    configure_triggers(
        kith, RuleSpec(name="churn", condition="order_gap", action="event", factor=2.0)
    )
    await RestrictionService(kith).restrict(lapsing, "accuracy_contested")
    triggers = TriggerService(kith)
    dry = await triggers.dry_run("churn")
    assert dry.hits == [] and dry.refused == 1
    assert await triggers.run_all() == 0
    assert await kith.bus.list_events(name="trigger.fired") == []


async def test_rules_over_the_api(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    kith.bus.clock = lambda: NOW
    admin = await kith_auth("admin")
    agent = await kith_auth("agent")
    vip = await person(kith, "Big Spender")
    await log(kith, vip, "order", NOW - dt.timedelta(days=3), amount=decimal.Decimal(500000))
    body = {"name": "welcome-a", "condition": "tier", "tier": "A", "action": "event"}
    assert (await kith_client.post("/api/triggers", json=body, headers=agent)).status_code == 403
    created = await kith_client.post("/api/triggers", json=body, headers=admin)
    assert created.status_code == 201, created.text
    again = await kith_client.post("/api/triggers", json=body, headers=admin)
    assert again.status_code == 409
    lacking = await kith_client.post(
        "/api/triggers", json={**body, "name": "x", "tier": None}, headers=admin
    )
    assert lacking.status_code == 422 and "needs tier" in lacking.text
    unknown = await kith_client.post(
        "/api/triggers", json={**body, "name": "y", "condition": "moon"}, headers=admin
    )
    assert unknown.status_code in (400, 422) and "moon" in unknown.text
    dry = (await kith_client.get("/api/triggers/welcome-a/dry-run", headers=agent)).json()
    assert [(h["contact_id"], h["name"]) for h in dry["hits"]] == []  # 1 order: tier B
    for days in (2, 1):
        await log(kith, vip, "order", NOW - dt.timedelta(days=days), amount=decimal.Decimal(1))
    dry = (await kith_client.get("/api/triggers/welcome-a/dry-run", headers=agent)).json()
    assert [(h["contact_id"], h["name"]) for h in dry["hits"]] == [(str(vip), "Big Spender")]
    fired = await kith_client.post("/api/triggers/welcome-a/run", headers=admin)
    assert fired.json() == {"rule": "welcome-a", "fired": 1}
    missing = await kith_client.get("/api/triggers/nope/dry-run", headers=agent)
    assert missing.status_code == 404


def test_kith_triggers_commands(kith_database_url: str, kith_cli: KithCli, tmp_path: Path) -> None:
    _, env = cli_env(kith_database_url, tmp_path / "kith-home")

    async def setup(kith: Kith) -> uuid.UUID:
        return await person(kith, "Quiet Lead", source="webforms")

    run_services(env, setup)
    rule = (
        '{"name": "lead", "condition": "no_interaction", "source": "webforms", "days": 3,'
        ' "action": "task"}'
    )
    added = kith_cli("triggers", "add", rule, env=env)
    assert added.exit_code == 0, added.output
    bad = kith_cli("triggers", "add", '{"name": "x"}', env=env)
    assert bad.exit_code != 0 and "invalid rule" in bad.output
    listed = kith_cli("triggers", "list", env=env)
    assert "lead" in listed.stdout and "no_interaction" in listed.stdout
    dry = kith_cli("triggers", "dry-run", "lead", env=env)
    assert dry.exit_code == 0 and "would fire for nobody" in dry.stderr  # not 3 days yet
    assert (
        kith_cli("triggers", "run", "lead", env=env).stdout.strip() == "Rule lead fired 0 time(s)"
    )
