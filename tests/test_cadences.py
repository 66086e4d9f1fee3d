"""Keep-in-touch cadences: the next contact date moves with each real interaction only; a
contact's own cadence wins over its tags' and tier's; the due list over the API and the CLI;
due contacts become tasks for their owner once per due date."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from pathlib import Path
from typing import Any

import httpx
from _privacy_workflow import cli_env, run_services
from kith import (
    ContactCreate,
    ContactService,
    InteractionCreate,
    InteractionService,
    Kith,
    UserService,
    utcnow,
)
from kith.services.cadences import CadenceIn, CadenceService
from kith.testing import KithCli, TokenFactory

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


async def log(kith: Kith, contact: uuid.UUID, kind: str, days_ago: float, **extra: Any) -> None:
    await InteractionService(kith).log(
        contact,
        InteractionCreate(kind=kind, occurred_at=NOW - dt.timedelta(days=days_ago), **extra),  # type: ignore[arg-type]
    )


async def test_the_next_contact_date_moves_with_real_interactions_only(kith: Kith) -> None:
    kith.bus.clock = lambda: NOW
    ada = (await ContactService(kith).create(ContactCreate(name="Ada", tags=["vip"]))).id
    cadences = CadenceService(kith)
    await cadences.set(CadenceIn(scope="tag", target="vip", every_days=30))
    await log(kith, ada, "call", 45, duration_s=120, direction="outbound")

    [due] = await cadences.due_rows(now=NOW)
    assert due.contact_id == ada
    assert due.due_at == NOW - dt.timedelta(days=15)
    assert due.overdue_days == 15
    assert due.reason == "last contact 2026-10-17; every 30 days (tag vip)"

    # Notes, tasks and missed calls are not being in touch.
    await log(kith, ada, "note", 1, summary="thought of her")
    await log(kith, ada, "call", 1, duration_s=0, direction="outbound")
    await log(kith, ada, "call", 1, direction="inbound")
    assert [d.contact_id for d in await cadences.due_rows(now=NOW)] == [ada]

    # An email, a meeting, an order, an answered call: each moves the date.
    for kind, extra in (
        ("email", {}),
        ("meeting", {}),
        ("order", {"amount": decimal.Decimal("10")}),
        ("call", {"duration_s": 30}),
    ):
        await log(kith, ada, kind, 10, **extra)
        assert await cadences.due_rows(now=NOW) == []
        [later] = await cadences.due_rows(now=NOW + dt.timedelta(days=20))
        assert later.due_at == NOW + dt.timedelta(days=20)
        await InteractionService(kith).delete_older_than(NOW, kinds=[kind])
        await log(kith, ada, "call", 45, duration_s=120, direction="outbound")


async def test_own_cadence_wins_and_tier_cadences_apply(kith: Kith) -> None:
    kith.bus.clock = lambda: NOW
    contacts = ContactService(kith)
    ada = (await contacts.create(ContactCreate(name="Ada", tags=["vip"]))).id
    bob = (await contacts.create(ContactCreate(name="Bob"))).id
    paused = (await contacts.create(ContactCreate(name="Cy", tags=["vip", "no-cadence"]))).id
    await log(kith, bob, "order", 100, amount=decimal.Decimal("50000"))  # tier B
    cadences = CadenceService(kith)
    await cadences.set(CadenceIn(scope="tag", target="vip", every_days=7))
    await cadences.set(CadenceIn(scope="contact", target=str(ada), every_days=90))
    await cadences.set(CadenceIn(scope="tier", target="B", every_days=60))
    for who in (ada, paused):
        await log(kith, who, "email", 30)

    [due] = await cadences.due_rows(now=NOW)
    assert (due.contact_id, due.scope, due.every_days, due.overdue_days) == (bob, "tier", 60, 40)
    assert due.reason == "last contact 2026-08-23; every 60 days (tier B)"


async def test_due_contacts_over_the_api_and_the_cli_and_as_tasks(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    kith.bus.clock = lambda: NOW
    owner = (await UserService(kith).add("owner@staff.example", "agent")).id
    ada = (await ContactService(kith).create(ContactCreate(name="Ada Lovelace", owner_id=owner))).id
    await log(kith, ada, "meeting", 40)
    headers = await kith_auth("agent")
    created = await kith_client.post(
        "/api/cadences",
        json={"scope": "contact", "target": str(ada), "every_days": 14},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    bad = await kith_client.post(
        "/api/cadences", json={"scope": "tag", "target": "x", "every_days": 0}, headers=headers
    )
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem")

    response = await kith_client.get("/api/contacts/due", headers=headers)
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert item["contact_id"] == str(ada) and item["name"] == "Ada Lovelace"
    assert item["overdue_days"] == 26

    kith.settings.extra["cadences"] = {"create_tasks": True}
    kith.settings._parsed.clear()
    cadences = CadenceService(kith)
    assert await cadences.create_tasks(NOW) == 1
    assert await cadences.create_tasks(NOW + dt.timedelta(hours=1)) == 0  # once per due date
    [task] = (await InteractionService(kith).tasks(assignee_id=owner)).items
    assert task.contact_id == ada and task.summary.startswith("Keep in touch")


def test_kith_contacts_due_and_cadences_commands(
    kith_database_url: str, kith_cli: KithCli, tmp_path: Path
) -> None:
    _, env = cli_env(kith_database_url, tmp_path / "kith-home")

    async def setup(kith: Kith) -> uuid.UUID:
        ada = (await ContactService(kith).create(ContactCreate(name="Ada Lovelace"))).id
        await InteractionService(kith).log(
            ada,
            InteractionCreate(kind="meeting", occurred_at=utcnow() - dt.timedelta(days=40)),
        )
        return ada

    ada = run_services(env, setup)
    added = kith_cli("cadences", "set", "contact", str(ada), "14", env=env)
    assert added.exit_code == 0, added.output
    refused = kith_cli("cadences", "set", "contact", "not-an-id", "14", env=env)
    assert refused.exit_code != 0 and "contact id" in refused.output
    result = kith_cli("contacts", "due", env=env)
    assert result.exit_code == 0, result.output
    assert "Ada Lovelace" in result.stdout and "every 14 days" in result.stdout
    assert str(ada) in result.stdout
