"""KPI reports against hand-computed values on a fixture firm, on SQLite and PostgreSQL, over
the service, the API and the CLI (CSV)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from pathlib import Path
from typing import Any

import httpx
from _privacy_workflow import cli_env, run_services
from kith import ContactCreate, ContactService, InteractionCreate, InteractionService, Kith
from kith.services.reports import ReportService
from kith.tables import Contact
from kith.testing import KithCli, TokenFactory

NOW = dt.datetime(2026, 12, 9, 12, 0, tzinfo=dt.UTC)  # a Wednesday
MONDAY = "2026-12-07"
LAST_MONDAY = "2026-11-30"


async def person(
    kith: Kith, name: str, source: str, created: dt.datetime, tags: list[str] | None = None
) -> uuid.UUID:
    contact = (
        await ContactService(kith).create(ContactCreate(name=name, source=source, tags=tags or []))
    ).id
    # The fixture firm's history: when each contact arrived.
    await (
        Contact.update({Contact.created_at: created, Contact.updated_at: created})
        .where(Contact.id == contact)
        .run()
    )
    return contact


async def log(kith: Kith, contact: uuid.UUID, kind: str, at: dt.datetime, **extra: Any) -> None:
    await InteractionService(kith).log(
        contact,
        InteractionCreate(kind=kind, occurred_at=at, **extra),  # type: ignore[arg-type]
    )


async def firm(kith: Kith) -> dict[str, uuid.UUID]:
    h = dt.timedelta(hours=1)
    a = await person(kith, "A", "webforms", NOW - dt.timedelta(days=1), ["lead"])
    b = await person(kith, "B", "webforms", NOW - dt.timedelta(days=2), ["lead"])
    c = await person(kith, "C", "import", NOW - dt.timedelta(days=8))
    d = await person(kith, "D", "import", NOW - dt.timedelta(days=800))
    e = await person(kith, "E", "import", NOW - dt.timedelta(days=800))
    # Orders: A one in RUB (tier B), C two in RUB and one in EUR (tier A).
    await log(kith, a, "order", NOW - 2 * h, amount=decimal.Decimal("30000"))
    for amount in ("60000", "50000", "10000"):
        await log(kith, c, "order", NOW - 3 * h, amount=decimal.Decimal(amount))
    await log(kith, c, "order", NOW - 3 * h, amount=decimal.Decimal("100"), channel="EUR")
    # Calls: three inbound missed (two called back after 10 and 30 minutes, one not), two
    # inbound answered, one outbound.
    start = NOW - dt.timedelta(days=1)
    await log(kith, a, "call", start, direction="inbound")
    await log(kith, a, "call", start + 10 * h / 60, direction="outbound", duration_s=40)
    await log(kith, b, "call", start, direction="inbound", duration_s=0)
    await log(kith, b, "call", start + 30 * h / 60, direction="outbound")
    await log(kith, c, "call", start, direction="inbound")
    await log(kith, c, "call", start - h, direction="inbound", duration_s=30)
    await log(kith, b, "call", start - h, direction="inbound", duration_s=90)
    # Tasks: one done on time, one done late, one open and overdue, one open not due.
    service = InteractionService(kith)
    for due, done in (
        (NOW - 5 * h, NOW - 6 * h),
        (NOW - 5 * h, NOW - 4 * h),
        (NOW - 5 * h, None),
        (NOW + 5 * h, None),
    ):
        await service.log(a, InteractionCreate(kind="task", summary="t", due_at=due, done_at=done))
    # E has a meeting 400 days ago: still stale (12 months). D: nothing ever.
    await log(kith, e, "meeting", NOW - dt.timedelta(days=400))
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


async def test_every_kpi_against_hand_computed_values(kith: Kith) -> None:
    kith.bus.clock = lambda: NOW
    await firm(kith)
    reports = ReportService(kith)

    async def rows(name: str) -> list[list[Any]]:
        return (await reports.run(name, NOW)).rows

    assert await rows("new-contacts") == [
        ["2024-09-30", "import", 2, 0],
        [LAST_MONDAY, "import", 1, 0],
        [MONDAY, "webforms", 2, 2],
    ]
    assert await rows("conversion") == [["import", 3, 1, 33.33], ["webforms", 2, 1, 50]]
    # Missed: 3; called back: 2 (600 s and 1800 s): median 600, p90 1800.
    [[missed, back, median, p90]] = await rows("callback-time")
    assert (missed, back, round(median), round(p90)) == (3, 2, 600, 1800)
    assert await rows("tasks-on-time") == [[1, 1, 1, 33.33]]
    assert await rows("calls-answered") == [[5, 2, 40]]
    assert await rows("revenue-by-tier") == [
        ["A", "EUR", 1, 100],
        ["A", "RUB", 3, 120000],
        ["B", "RUB", 1, 30000],
    ]
    assert await rows("stale-data") == [[5, 2, 40]]


async def test_reports_over_the_api(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    headers = await kith_auth("agent")
    listed = (await kith_client.get("/api/reports", headers=headers)).json()
    assert "callback-time" in [r["name"] for r in listed]
    empty = (await kith_client.get("/api/reports/calls-answered", headers=headers)).json()
    assert empty["columns"] == ["inbound", "answered", "answered_pct"]
    assert empty["rows"] == [[0, 0, None]]
    missing = await kith_client.get("/api/reports/nope", headers=headers)
    assert missing.status_code == 404 and "callback-time" in missing.text


def test_kith_report_csv(kith_database_url: str, kith_cli: KithCli, tmp_path: Path) -> None:
    _, env = cli_env(kith_database_url, tmp_path / "kith-home")

    async def setup(kith: Kith) -> None:
        contact = (await ContactService(kith).create(ContactCreate(name="Z"))).id
        await log(kith, contact, "call", NOW, direction="inbound", duration_s=5)
        await log(kith, contact, "call", NOW, direction="inbound")

    run_services(env, setup)
    result = kith_cli("report", "calls-answered", "--csv", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "inbound,answered,answered_pct\n2,1,50\n"
    unknown = kith_cli("report", "nope", env=env)
    assert unknown.exit_code != 0 and "no report" in unknown.output
