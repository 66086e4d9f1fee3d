"""Exporting contacts as CSV: the list's filters, custom fields as columns, a spreadsheet
variant, every exported contact in the audit log, and rows streamed as they are read."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import stat
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _privacy_workflow import cli_env, run_services
from kith import ContactCreate, ContactService, EmailIn, Kith, PhoneIn
from kith.http import create_app
from kith.privacy.rights.audit import AuditEntryOut, AuditLog
from kith.privacy.rights.restriction import RestrictionService
from kith.schemas import FieldCreate
from kith.services.contacts import ContactFilter
from kith.services.exports import EXPORT_ACTION, ExportService
from kith.services.fields import FieldService
from kith.testing import KithCli, TokenFactory

Json = dict[str, Any]
URL = "/api/exports/contacts.csv"


async def _fields(kith: Kith) -> None:
    fields = FieldService(kith)
    await fields.add(FieldCreate(name="industry", type="choice", choices=["retail", "b2b"]))
    await fields.add(FieldCreate(name="interests", type="multi_choice", choices=["a", "b", "c"]))
    await fields.add(FieldCreate(name="employees", type="number"))
    await fields.add(FieldCreate(name="birthday", type="date", personal=True))
    # A field named like a column of every export gets a column of its own.
    await fields.add(FieldCreate(name="email", type="email"))


async def _people(kith: Kith) -> dict[str, uuid.UUID]:
    """An organization and three people, the last of them archived."""
    await _fields(kith)
    contacts = ContactService(kith)
    engines = await contacts.create(
        ContactCreate(kind="organization", name="Engines Ltd", fields={"industry": "b2b"})
    )
    ada = await contacts.create(
        ContactCreate(
            name="Ada Lovelace",
            given_name="Ada",
            family_name="Lovelace",
            organization_id=engines.id,
            emails=[EmailIn("ada@home.example"), EmailIn("ada@work.example", primary=True)],
            phones=[PhoneIn("020 7946 0018")],
            tags=["vip", "london"],
            fields={
                "industry": "retail",
                "interests": ["c", "a"],
                "employees": 12,
                "birthday": "1815-12-10",
                "email": "billing@engines.example",
            },
        )
    )
    grace = await contacts.create(
        ContactCreate(
            name="Grace Hopper",
            emails=[EmailIn("grace@navy.example")],
            fields={"industry": "b2b", "employees": 500},
        )
    )
    old = await contacts.create(ContactCreate(name="Old Friend", fields={"employees": 3}))
    await contacts.archive(old.id)
    return {"engines": engines.id, "ada": ada.id, "grace": grace.id, "old": old.id}


def _rows(body: bytes, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8")), delimiter=delimiter))


@pytest.fixture
async def agent(kith_auth: TokenFactory) -> Json:
    return await kith_auth("agent")


async def _export(client: httpx.AsyncClient, headers: Json, **params: Any) -> httpx.Response:
    response = await client.get(URL, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def test_every_contact_with_its_points_organization_and_custom_fields(
    kith: Kith, kith_client: httpx.AsyncClient, agent: Json
) -> None:
    ids = await _people(kith)
    response = await _export(kith_client, agent)
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    header = next(csv.reader(io.StringIO(response.content.decode())))
    assert header[:4] == ["id", "kind", "name", "given_name"]
    # One column per custom field, in name order.
    assert header[-5:] == ["birthday", "field.email", "employees", "industry", "interests"]
    rows = {row["name"]: row for row in _rows(response.content)}
    # Archived contacts are left out, as from the list.
    assert sorted(rows) == ["Ada Lovelace", "Engines Ltd", "Grace Hopper"]
    ada = rows["Ada Lovelace"]
    assert ada["id"] == str(ids["ada"])
    assert (ada["given_name"], ada["family_name"]) == ("Ada", "Lovelace")
    assert (ada["organization_id"], ada["organization"]) == (str(ids["engines"]), "Engines Ltd")
    # The primary email first, the others beside it.
    assert (ada["email"], ada["other_emails"]) == ("ada@work.example", "ada@home.example")
    assert (ada["phone"], ada["other_phones"]) == ("+442079460018", "")
    assert ada["tags"] == "vip, london"
    assert ada["archived"] == "false"
    assert ada["industry"] == "retail"
    assert ada["interests"] == "a, c"
    assert ada["employees"] == "12"
    # A personal value is decrypted for the export.
    assert ada["birthday"] == "1815-12-10"
    assert ada["field.email"] == "billing@engines.example"
    grace = rows["Grace Hopper"]
    assert (grace["organization"], grace["interests"], grace["birthday"]) == ("", "", "")
    assert rows["Engines Ltd"]["kind"] == "organization"


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"q": "ada@work.example"}, ["Ada Lovelace"]),
        ({"q": "hop"}, ["Grace Hopper"]),
        ({"field.industry": "b2b"}, ["Engines Ltd", "Grace Hopper"]),
        ({"field.employees.min": "10", "field.employees.max": "100"}, ["Ada Lovelace"]),
        ({"field.interests": "a"}, ["Ada Lovelace"]),
        ({"include_archived": "true", "field.employees.max": "20"}, ["Ada Lovelace", "Old Friend"]),
        ({"q": "nobody@example.com"}, []),
    ],
)
async def test_the_filters_of_the_contacts_list(
    kith: Kith, kith_client: httpx.AsyncClient, agent: Json, params: Json, names: list[str]
) -> None:
    await _people(kith)
    exported = [row["name"] for row in _rows((await _export(kith_client, agent, **params)).content)]
    listed = await kith_client.get("/api/contacts", params=params, headers=agent)
    assert exported == names
    assert exported == [item["name"] for item in listed.json()["items"]]


async def test_the_people_of_an_organization(
    kith: Kith, kith_client: httpx.AsyncClient, agent: Json
) -> None:
    ids = await _people(kith)
    response = await _export(kith_client, agent, organization_id=str(ids["engines"]))
    assert [row["name"] for row in _rows(response.content)] == ["Ada Lovelace"]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"field.industy": "retail"}, 422, "field.industy"),
        ({"field.employees.min": "many"}, 422, "field.employees.min"),
        ({"field.birthday": "1815-12-10"}, 422, "field.birthday"),
        ({"organization_id": str(uuid.UUID(int=7))}, 422, "organization_id"),
    ],
)
async def test_a_bad_filter_is_a_problem_and_exports_nothing(
    kith: Kith,
    kith_client: httpx.AsyncClient,
    agent: Json,
    params: Json,
    status: int,
    field: str,
) -> None:
    ids = await _people(kith)
    response = await kith_client.get(URL, params=params, headers=agent)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    assert EXPORT_ACTION not in {e.action for e in await AuditLog(kith).entries(ids["ada"])}


async def test_an_export_needs_a_role_that_may_list_contacts(
    kith: Kith, kith_client: httpx.AsyncClient
) -> None:
    assert (await kith_client.get(URL)).status_code == 401


async def test_excel_variant_has_a_bom_semicolons_and_no_formulas(
    kith: Kith, kith_client: httpx.AsyncClient, agent: Json
) -> None:
    await _people(kith)
    contacts = ContactService(kith)
    await contacts.create(
        ContactCreate(
            name='=HYPERLINK("http://evil.example","Click")',
            phones=[PhoneIn("+44 20 7946 0019")],
            tags=["@risk", "-5"],
        )
    )
    await contacts.create(ContactCreate(name="Иван Петров; и сыновья"))
    response = await _export(kith_client, agent, excel="true")
    assert response.content.startswith("\ufeff".encode())
    text = response.content.decode("utf-8-sig")
    header = text.splitlines()[0]
    assert header.startswith("id;kind;name;")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(text), delimiter=";")}
    by_name = {r["name"]: r for r in rows.values()}
    assert "Иван Петров; и сыновья" in by_name
    evil = by_name['\'=HYPERLINK("http://evil.example","Click")']
    # A phone number is a number, not a formula: left as it is.
    assert evil["phone"] == "+442079460019"
    assert evil["tags"] == "'@risk, -5"
    # Without the option, values are written as they are, with commas.
    plain = (await _export(kith_client, agent)).content
    assert not plain.startswith("\ufeff".encode())
    assert '"=HYPERLINK(""http://evil.example"",""Click"")"' in plain.decode()


async def test_each_exported_contact_is_in_the_audit_log(
    kith: Kith, kith_client: httpx.AsyncClient, agent: Json
) -> None:
    ids = await _people(kith)
    await _export(kith_client, agent, **{"field.industry": "retail"})
    log = AuditLog(kith)
    [entry] = [e for e in await log.entries(ids["ada"]) if e.action == EXPORT_ACTION]
    assert entry.channel == "api" and entry.actor.startswith("user:")
    assert isinstance(entry.details, dict) and "export" in entry.details
    # Its organization's name is in the export too: recorded under the same export.
    [organization] = [e for e in await log.entries(ids["engines"]) if e.action == EXPORT_ACTION]
    assert organization.details == entry.details
    # Contacts the filters left out were not exported.
    assert EXPORT_ACTION not in {e.action for e in await log.entries(ids["grace"])}


async def _asgi_get(
    app: Any, path: str, headers: Json, on_body: Callable[[], Awaitable[Any]]
) -> list[dict[str, Any]]:
    """Run one GET through the ASGI app, returning what it sends in order, each body message
    as it was sent (an HTTP client would join them) with what ``on_body`` said right then."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1234),
        "server": ("kith.test", 80),
    }

    requested = False
    ended = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if requested:
            # The client stays connected until the response ends.
            await ended.wait()
            return {"type": "http.disconnect"}
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "seen": await on_body()}
            if not message.get("more_body"):
                ended.set()
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def _audited(kith: Kith, contact_ids: list[uuid.UUID]) -> int:
    """How many of these contacts' exports are on record."""
    log = AuditLog(kith)
    count = 0
    for contact_id in contact_ids:
        count += sum(e.action == EXPORT_ACTION for e in await log.entries(contact_id))
    return count


async def test_rows_are_sent_while_later_ones_are_still_unread(
    kith: Kith, agent: Json, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory stays flat because an export holds one page of contacts at a time: the first
    rows leave before the later pages are read (each page is audited as it is read)."""
    contacts = ContactService(kith)
    everyone = [(await contacts.create(ContactCreate(name=f"P{n:02d}"))).id for n in range(23)]
    monkeypatch.setattr("kith.services.exports.PAGE_SIZE", 5)
    app = create_app(kith, manage_lifecycle=False)

    sent = await _asgi_get(app, URL, agent, lambda: _audited(kith, everyone))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert all(m.get("more_body") for m in bodies[:-1])
    assert len(_rows(b"".join(m["body"] for m in bodies))) == 23
    # The header went first; then each page as soon as it was read: 5 contacts on record
    # when the first rows left, all 23 only at the end.
    with_rows = [m["seen"] for m in bodies if m["body"].count(b"\n") and m["seen"]]
    assert with_rows == [5, 10, 15, 20, 23]


async def test_the_service_reads_and_audits_one_page_at_a_time(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    contacts = ContactService(kith)
    everyone = [(await contacts.create(ContactCreate(name=f"P{n}"))).id for n in range(12)]
    monkeypatch.setattr("kith.services.exports.PAGE_SIZE", 5)
    export = await ExportService(kith).contacts(ContactFilter())
    chunks = export.chunks()
    header = await anext(chunks)
    assert header.startswith(b"id,kind,name")
    assert await _audited(kith, everyone) == 0
    seen = []
    async for chunk in chunks:
        seen.append((len(_rows(header + chunk)), await _audited(kith, everyone)))
    # Each chunk is one page, sent once its contacts (and only they) are on record.
    assert seen == [(5, 5), (5, 10), (2, 12)]
    assert export.count == 12


# -- the command line ----------------------------------------------------------------------


def _installation(database_url: str, tmp_path: Path) -> tuple[dict[str, str], dict[str, uuid.UUID]]:
    _, env = cli_env(database_url, tmp_path / "kith-home")
    return env, run_services(env, _people)


def _exports_of(env: dict[str, str], contact_id: uuid.UUID) -> list[AuditEntryOut]:
    async def entries(kith: Kith) -> list[AuditEntryOut]:
        return [e for e in await AuditLog(kith).entries(contact_id) if e.action == EXPORT_ACTION]

    return run_services(env, entries)


def test_kith_export_contacts_writes_a_private_file(
    kith_database_url: str, kith_cli: KithCli, tmp_path: Path
) -> None:
    env, ids = _installation(kith_database_url, tmp_path)
    target = tmp_path / "out" / "contacts.csv"
    target.parent.mkdir()
    result = kith_cli(
        "export", "contacts", "--field", "employees.min=10", "-o", str(target), "--excel", env=env
    )
    assert result.exit_code == 0, result.output
    assert "Exported 2 contacts" in result.stderr
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert os.listdir(target.parent) == ["contacts.csv"]
    body = target.read_bytes()
    assert body.startswith("\ufeff".encode())
    rows = _rows(body.removeprefix("\ufeff".encode()), delimiter=";")
    assert [row["name"] for row in rows] == ["Ada Lovelace", "Grace Hopper"]
    [entry] = _exports_of(env, ids["ada"])
    assert entry.channel == "cli"
    assert isinstance(entry.details, dict) and "os_user" in entry.details


def test_kith_export_contacts_to_standard_output_with_the_list_filters(
    kith_database_url: str, kith_cli: KithCli, tmp_path: Path
) -> None:
    env, ids = _installation(kith_database_url, tmp_path)
    result = kith_cli("export", "contacts", "--organization", str(ids["engines"]), env=env)
    assert result.exit_code == 0, result.output
    assert [row["name"] for row in _rows(result.stdout_bytes)] == ["Ada Lovelace"]
    archived = kith_cli("export", "contacts", "--all", "--search", "old", env=env)
    assert [row["name"] for row in _rows(archived.stdout_bytes)] == ["Old Friend"]
    listed = kith_cli("contacts", "list", "--field", "industry=b2b", env=env)
    assert "Grace Hopper" in listed.stdout and "Ada" not in listed.stdout


def test_kith_export_contacts_refuses_a_bad_filter_in_one_line(
    kith_database_url: str, kith_cli: KithCli, tmp_path: Path
) -> None:
    env, ids = _installation(kith_database_url, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "contacts.csv"
    result = kith_cli("export", "contacts", "--field", "industy=x", "-o", str(target), env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("kith: there is no custom field named 'industy'")
    assert list(out.iterdir()) == []
    malformed = kith_cli("export", "contacts", "--field", "industry", env=env)
    assert "write it as NAME=VALUE" in malformed.stderr
    assert _exports_of(env, ids["ada"]) == []


async def test_restricted_contacts_are_left_out(
    kith: Kith, kith_client: httpx.AsyncClient, agent: Json
) -> None:
    ids = await _people(kith)
    restrictions = RestrictionService(kith)
    await restrictions.restrict(ids["grace"], "accuracy_contested")
    await restrictions.restrict(ids["engines"], "objection_pending")
    response = await _export(kith_client, agent)
    rows = {row["name"]: row for row in _rows(response.content)}
    # A restricted contact's data may only be stored: not exported, not on record as exported.
    assert sorted(rows) == ["Ada Lovelace"]
    assert rows["Ada Lovelace"]["organization_id"] == str(ids["engines"])
    assert rows["Ada Lovelace"]["organization"] == ""
    log = AuditLog(kith)
    for name in ("grace", "engines"):
        assert EXPORT_ACTION not in {e.action for e in await log.entries(ids[name])}
    export = await ExportService(kith).contacts(ContactFilter())
    async for _ in export.chunks():
        pass
    assert (export.count, export.skipped) == (1, 2)
