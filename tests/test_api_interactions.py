"""Interactions and tasks: every kind, idempotent external ids, the timeline, due dates."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import uuid
from typing import Any

import httpx
import pytest
from kith.pagination import encode_cursor
from kith.runtime import Kith
from kith.schemas import ContactCreate, InteractionCreate, InteractionOut
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.services.users import UserService
from kith.testing import TokenFactory

Json = dict[str, Any]
UTC = dt.UTC


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
async def agent(kith_auth: TokenFactory) -> dict[str, str]:
    return await kith_auth("agent", email="agent@firm.example")


@pytest.fixture
async def contact_id(kith: Kith) -> str:
    return str((await ContactService(kith).create(ContactCreate(name="Ada Lovelace"))).id)


async def log(
    client: httpx.AsyncClient, headers: dict[str, str], contact: str, body: Json
) -> httpx.Response:
    return await client.post(f"/api/contacts/{contact}/interactions", json=body, headers=headers)


async def timeline(client: httpx.AsyncClient, headers: dict[str, str], contact: str) -> list[Json]:
    response = await client.get(f"/api/contacts/{contact}/timeline?limit=200", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


# -- kinds -------------------------------------------------------------------------------------


KINDS: list[Json] = [
    {"kind": "note", "summary": "prefers email", "body": "Said so at the fair."},
    {
        "kind": "call",
        "direction": "inbound",
        "duration_s": 125,
        "channel": "phone",
        "summary": "asked for a quote",
    },
    {"kind": "email", "direction": "outbound", "summary": "Quote #12", "body": "Dear Ada, ..."},
    {"kind": "meeting", "occurred_at": "2025-03-04T10:00:00+01:00", "summary": "demo"},
    {"kind": "form_submission", "source": "webforms", "external_id": "sub-1", "summary": "lead"},
    {"kind": "order", "amount": "1234.50", "source": "onec", "external_id": "ORD-7"},
    {"kind": "task", "summary": "call back", "due_at": "2025-03-05T09:00:00Z"},
]


@pytest.mark.parametrize("body", KINDS, ids=[k["kind"] for k in KINDS])
async def test_every_kind_is_logged_and_read_back(
    kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str, body: Json
) -> None:
    response = await log(kith_client, agent, contact_id, body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/api/interactions/{created['id']}"
    assert created["contact_id"] == contact_id
    for name, value in body.items():
        if name == "amount":
            assert decimal.Decimal(created[name]) == decimal.Decimal(value)
        elif name.endswith("_at"):
            assert utc(created[name]) == utc(value)
        else:
            assert created[name] == value
    read = await kith_client.get(f"/api/interactions/{created['id']}", headers=agent)
    assert read.json() == created
    assert [item["id"] for item in await timeline(kith_client, agent, contact_id)] == [
        created["id"]
    ]


async def test_unknown_contact_and_kind(
    kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str
) -> None:
    missing = await log(kith_client, agent, str(uuid.uuid4()), {"kind": "note"})
    assert missing.status_code == 404
    bad_kind = await log(kith_client, agent, contact_id, {"kind": "telegram"})
    assert bad_kind.status_code == 422
    assert "kind" in bad_kind.json()["detail"]
    negative = await log(kith_client, agent, contact_id, {"kind": "call", "duration_s": -1})
    assert negative.status_code == 422
    assert "duration_s" in negative.json()["detail"]


async def test_amount_keeps_its_cents(
    kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str
) -> None:
    for amount in ("0.10", "19.99", "1000000.01", 7):
        response = await log(kith_client, agent, contact_id, {"kind": "order", "amount": amount})
        assert response.status_code == 201, response.text
        assert decimal.Decimal(response.json()["amount"]) == decimal.Decimal(str(amount))
    for wrong in ("1.005", "NaN", "Infinity", "1e20"):
        refused = await log(kith_client, agent, contact_id, {"kind": "order", "amount": wrong})
        assert refused.status_code == 422, wrong
        assert refused.json()["field"] == "amount"


async def test_time_without_offset_is_read_in_the_installation_zone(
    kith: Kith, kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str
) -> None:
    kith.settings = dataclasses.replace(kith.settings, timezone="America/New_York")
    response = await log(
        kith_client, agent, contact_id, {"kind": "meeting", "occurred_at": "2025-01-15T23:30:00"}
    )
    assert utc(response.json()["occurred_at"]) == dt.datetime(2025, 1, 16, 4, 30, tzinfo=UTC)


# -- idempotency -------------------------------------------------------------------------------


async def test_same_external_id_twice_is_one_interaction(
    kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str
) -> None:
    body = {"kind": "call", "source": "twilio", "external_id": "CA123", "summary": "first"}
    first = await log(kith_client, agent, contact_id, body)
    again = await log(kith_client, agent, contact_id, {**body, "summary": "retried"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert len(await timeline(kith_client, agent, contact_id)) == 1


async def test_same_external_id_for_another_contact_is_a_conflict(
    kith: Kith, kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str
) -> None:
    other = str((await ContactService(kith).create(ContactCreate(name="Bob"))).id)
    body = {"kind": "call", "source": "twilio", "external_id": "CA123"}
    assert (await log(kith_client, agent, contact_id, body)).status_code == 201
    response = await log(kith_client, agent, other, body)
    assert response.status_code == 409
    assert response.json()["field"] == "external_id"
    assert await timeline(kith_client, agent, other) == []


async def test_same_external_id_from_another_source_is_another_interaction(
    kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str
) -> None:
    first = await log(
        kith_client, agent, contact_id, {"kind": "order", "source": "onec", "external_id": "7"}
    )
    second = await log(
        kith_client, agent, contact_id, {"kind": "order", "source": "shop", "external_id": "7"}
    )
    assert (first.status_code, second.status_code) == (201, 201)
    assert len(await timeline(kith_client, agent, contact_id)) == 2


# -- timeline ----------------------------------------------------------------------------------


async def test_timeline_is_newest_first_across_pages(
    kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str
) -> None:
    times = [
        "2025-01-01T10:00:00+02:00",  # 08:00 UTC
        "2025-01-01T09:00:00Z",
        "2025-01-01T09:00:00Z",  # a tie: the later-logged one comes first
        "2024-12-31T23:59:59.999999Z",
        "2025-01-01T09:00:00.000001Z",
        "2025-06-01T12:00:00-07:00",
        "2025-01-01T09:00:00Z",
    ]
    logged = []
    for index, at in enumerate(times):
        response = await log(
            kith_client,
            agent,
            contact_id,
            {"kind": "note", "summary": str(index), "occurred_at": at},
        )
        assert response.status_code == 201, response.text
        logged.append(response.json())
    expected = [
        item["id"]
        for item in sorted(logged, key=lambda i: (utc(i["occurred_at"]), i["id"]), reverse=True)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await kith_client.get(
                f"/api/contacts/{contact_id}/timeline", params=params, headers=agent
            )
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert expected[0] == logged[5]["id"]
    assert expected[-1] == logged[3]["id"]


async def test_timeline_errors(
    kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str
) -> None:
    missing = await kith_client.get(f"/api/contacts/{uuid.uuid4()}/timeline", headers=agent)
    assert missing.status_code == 404
    bad = await kith_client.get(
        f"/api/contacts/{contact_id}/timeline", params={"cursor": "WyJ4IiwieSJd"}, headers=agent
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "cursor"


# -- changing and task-only fields -------------------------------------------------------------


async def test_patch_done_at_closes_and_reopens_a_task(
    kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str
) -> None:
    task = (
        await log(
            kith_client, agent, contact_id, {"kind": "task", "due_at": "2020-01-01T09:00:00Z"}
        )
    ).json()
    url = f"/api/interactions/{task['id']}"
    open_ids = await _task_ids(kith_client, agent, due="overdue")
    assert task["id"] in open_ids
    done = await kith_client.patch(url, json={"done_at": "2020-01-02T10:00:00Z"}, headers=agent)
    assert done.status_code == 200, done.text
    assert utc(done.json()["done_at"]) == dt.datetime(2020, 1, 2, 10, tzinfo=UTC)
    assert done.json()["due_at"] == task["due_at"]
    assert task["id"] not in await _task_ids(kith_client, agent, due="all")
    reopened = await kith_client.patch(url, json={"done_at": None}, headers=agent)
    assert reopened.json()["done_at"] is None
    assert task["id"] in await _task_ids(kith_client, agent, due="all")


async def test_patch_changes_only_what_is_sent(
    kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str
) -> None:
    call = (
        await log(
            kith_client,
            agent,
            contact_id,
            {"kind": "call", "summary": "quote", "body": "long talk", "duration_s": 60},
        )
    ).json()
    response = await kith_client.patch(
        f"/api/interactions/{call['id']}", json={"summary": "quote sent"}, headers=agent
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["summary"] == "quote sent"
    assert changed["body"] == "long talk"
    assert changed["duration_s"] == 60
    cleared = await kith_client.patch(
        f"/api/interactions/{call['id']}", json={"duration_s": None}, headers=agent
    )
    assert cleared.json()["duration_s"] is None
    no_time = await kith_client.patch(
        f"/api/interactions/{call['id']}", json={"occurred_at": None}, headers=agent
    )
    assert no_time.status_code == 422
    missing = await kith_client.patch(
        f"/api/interactions/{uuid.uuid4()}", json={"summary": "x"}, headers=agent
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "field_value",
    [
        ("due_at", "2025-01-01T09:00:00Z"),
        ("done_at", "2025-01-01T09:00:00Z"),
        ("assignee_id", "self"),
    ],
)
async def test_task_only_fields_are_refused_on_a_note(
    kith: Kith,
    kith_client: httpx.AsyncClient,
    agent: dict[str, str],
    contact_id: str,
    field_value: tuple[str, str],
) -> None:
    name, value = field_value
    if value == "self":
        value = str((await UserService(kith).by_email("agent@firm.example")).id)
    created = await log(kith_client, agent, contact_id, {"kind": "note", name: value})
    assert created.status_code == 422
    assert created.json()["field"] == name
    note = (await log(kith_client, agent, contact_id, {"kind": "note"})).json()
    patched = await kith_client.patch(
        f"/api/interactions/{note['id']}", json={name: value}, headers=agent
    )
    assert patched.status_code == 422
    assert patched.json()["field"] == name


async def test_assignee_must_be_a_user(
    kith_client: httpx.AsyncClient, agent: dict[str, str], contact_id: str
) -> None:
    response = await log(
        kith_client, agent, contact_id, {"kind": "task", "assignee_id": str(uuid.uuid4())}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "assignee_id"


# -- the tasks endpoint ------------------------------------------------------------------------


async def _task_ids(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list[str]:
    response = await client.get("/api/tasks", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_tasks_by_due_and_assignee(
    kith: Kith,
    kith_client: httpx.AsyncClient,
    kith_auth: TokenFactory,
    agent: dict[str, str],
    contact_id: str,
) -> None:
    users = UserService(kith)
    me = (await users.by_email("agent@firm.example")).id
    other = (await users.add("colleague@firm.example", "agent")).id
    now = dt.datetime.now(UTC)

    async def task(due: dt.datetime | None, assignee: uuid.UUID | None, **extra: Any) -> str:
        body: Json = {"kind": "task", **extra}
        if due is not None:
            body["due_at"] = due.isoformat()
        if assignee is not None:
            body["assignee_id"] = str(assignee)
        response = await log(kith_client, agent, contact_id, body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    late_mine = await task(now - dt.timedelta(days=3), me)
    late_theirs = await task(now - dt.timedelta(days=2), other)
    future_mine = await task(now + dt.timedelta(days=3), me)
    undated_mine = await task(None, me)
    await task(now - dt.timedelta(days=5), me, done_at=now.isoformat())
    await log(kith_client, agent, contact_id, {"kind": "note"})

    assert await _task_ids(kith_client, agent, due="overdue") == [late_mine, late_theirs]
    # "today" is what must be done by the end of today, overdue included.
    assert await _task_ids(kith_client, agent, due="today") == [late_mine, late_theirs]
    assert await _task_ids(kith_client, agent, due="all") == [
        late_mine,
        late_theirs,
        future_mine,
        undated_mine,
    ]
    assert await _task_ids(kith_client, agent, due="overdue", assignee="me") == [late_mine]
    assert await _task_ids(kith_client, agent, assignee="me") == [
        late_mine,
        future_mine,
        undated_mine,
    ]
    assert await _task_ids(kith_client, agent, assignee=str(other)) == [late_theirs]
    # Someone else's "me" is themselves.
    colleague = await kith_auth("agent")
    assert await _task_ids(kith_client, colleague, assignee="me") == []
    bad = await kith_client.get("/api/tasks", params={"assignee": "bob"}, headers=agent)
    assert bad.status_code == 422
    assert bad.json()["field"] == "assignee"
    bad_due = await kith_client.get("/api/tasks", params={"due": "tomorrow"}, headers=agent)
    assert bad_due.status_code == 422


async def _service_tasks(
    kith: Kith, zone: str, contact: str, dues: list[str]
) -> tuple[InteractionService, list[InteractionOut]]:
    kith.settings = dataclasses.replace(kith.settings, timezone=zone)
    service = InteractionService(kith)
    made = []
    for due in dues:
        out, _ = await service.log(
            uuid.UUID(contact), InteractionCreate(kind="task", due_at=utc(due), summary=due)
        )
        made.append(out)
    return service, made


@pytest.mark.parametrize(
    ("zone", "now", "today", "later"),
    [
        # New York is five hours behind UTC: 22:30 on the 15th locally.
        (
            "America/New_York",
            "2025-01-16T03:30:00Z",
            ["2025-01-16T04:59:59Z", "2025-01-15T06:00:00Z"],
            ["2025-01-16T05:00:00Z", "2025-01-16T12:00:00Z"],
        ),
        # Auckland is thirteen hours ahead: 23:30 on the 15th locally.
        (
            "Pacific/Auckland",
            "2025-01-15T10:30:00Z",
            ["2025-01-15T10:59:59Z", "2025-01-14T12:00:00Z"],
            ["2025-01-15T11:00:00Z", "2025-01-15T20:00:00Z"],
        ),
        # Berlin's spring-forward day has 23 hours: it ends at 22:00 UTC.
        (
            "Europe/Berlin",
            "2025-03-30T12:00:00Z",
            ["2025-03-30T21:59:59Z"],
            ["2025-03-30T22:00:00Z", "2025-03-30T22:30:00Z"],
        ),
        # Berlin's fall-back day has 25 hours: it ends at 23:00 UTC.
        (
            "Europe/Berlin",
            "2025-10-26T12:00:00Z",
            ["2025-10-26T22:30:00Z", "2025-10-26T22:59:59Z"],
            ["2025-10-26T23:00:00Z"],
        ),
    ],
)
async def test_today_ends_at_local_midnight(
    kith: Kith, contact_id: str, zone: str, now: str, today: list[str], later: list[str]
) -> None:
    service, made = await _service_tasks(kith, zone, contact_id, today + later)
    page = await service.tasks(due="today", now=utc(now))
    expected = sorted(made[: len(today)], key=lambda t: t.due_at or utc(now))
    assert [t.id for t in page.items] == [t.id for t in expected]
    everything = await service.tasks(due="all", now=utc(now))
    assert len(everything.items) == len(made)


async def test_overdue_means_strictly_before_now(kith: Kith, contact_id: str) -> None:
    now = "2025-05-01T12:00:00Z"
    service, made = await _service_tasks(
        kith,
        "Europe/London",
        contact_id,
        ["2025-05-01T11:59:59.999999Z", now, "2025-05-02T00:00:00Z"],
    )
    overdue = await service.tasks(due="overdue", now=utc(now))
    assert [t.id for t in overdue.items] == [made[0].id]
    today = await service.tasks(due="today", now=utc(now))
    assert [t.id for t in today.items] == [made[0].id, made[1].id]


async def test_task_pages_follow_due_dates(kith: Kith, contact_id: str) -> None:
    dues = [
        "2025-01-03T09:00:00Z",
        "2025-01-01T09:00:00Z",
        "2025-01-02T09:00:00Z",
        "2025-01-01T09:00:00Z",
        "2025-01-01T08:00:00Z",
    ]
    service, made = await _service_tasks(kith, "UTC", contact_id, dues)
    expected = [t.id for t in sorted(made, key=lambda t: (t.due_at, t.id))]
    now = utc("2025-01-10T00:00:00Z")
    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        page = await service.tasks(due="overdue", cursor=cursor, limit=2, now=now)
        seen += [t.id for t in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected


async def test_all_open_tasks_are_soonest_due_first_then_undated(
    kith: Kith, contact_id: str
) -> None:
    """Every open task, whatever order they were added in: soonest due first, then those
    without a due date in the order they were added, across pages."""
    service = InteractionService(kith)
    contact = uuid.UUID(contact_id)
    made: dict[str, InteractionOut] = {}
    for summary, due in [
        ("undated first", None),
        ("in a week", "2025-01-08T09:00:00Z"),
        ("tomorrow", "2025-01-02T09:00:00Z"),
        ("undated second", None),
        ("yesterday", "2024-12-31T09:00:00Z"),
        ("tomorrow too", "2025-01-02T09:00:00Z"),
    ]:
        data = InteractionCreate(kind="task", summary=summary, due_at=utc(due) if due else None)
        made[summary], _ = await service.log(contact, data)
    expected = ["yesterday", "tomorrow", "tomorrow too", "in a week"]
    expected += ["undated first", "undated second"]
    assert [t.summary for t in (await service.tasks(due="all")).items] == expected
    for limit in (1, 2, 4):
        seen: list[str] = []
        cursor = None
        while True:
            page = await service.tasks(due="all", cursor=cursor, limit=limit)
            seen += [t.summary for t in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected, limit


@pytest.mark.parametrize("key", [["", "not-an-id"], ["yesterday", str(uuid.uuid4())]])
async def test_a_forged_task_cursor_is_422(
    kith_client: httpx.AsyncClient, agent: dict[str, str], key: list[str]
) -> None:
    response = await kith_client.get(
        "/api/tasks", params={"cursor": encode_cursor(*key)}, headers=agent
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "cursor"
