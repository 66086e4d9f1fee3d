"""Custom fields of contacts: admins declare them (API and CLI), contacts hold validated,
normalised values of them, and bad declarations or values are refused clearly."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from asyncio.subprocess import PIPE, STDOUT
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from _privacy_subjects import stored_bytes
from click.testing import CliRunner, Result
from kith.cli import main
from kith.errors import InvalidInput
from kith.ids import new_id
from kith.privacy.encryption import reindex, rotation
from kith.privacy.rights.erasure import ErasureService
from kith.runtime import Kith
from kith.schemas import ContactCreate, FieldCreate
from kith.services.contacts import ContactService
from kith.services.fields import FieldService
from kith.tables import CustomFieldValue
from kith.testing import TokenFactory

Json = dict[str, Any]


class Api:
    """An admin and an agent over the HTTP client, so tests read like what they do."""

    def __init__(self, client: httpx.AsyncClient, admin: Json, agent: Json) -> None:
        self.client = client
        self.admin = admin
        self.agent = agent

    async def declare(self, **body: Any) -> httpx.Response:
        return await self.client.post("/api/fields", json=body, headers=self.admin)

    async def declared(self, **body: Any) -> Json:
        response = await self.declare(**body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def fields(self, **params: Any) -> list[Json]:
        response = await self.client.get("/api/fields", params=params, headers=self.agent)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def change_field(self, name: str, body: Json) -> httpx.Response:
        return await self.client.patch(f"/api/fields/{name}", json=body, headers=self.admin)

    async def create(self, **body: Any) -> httpx.Response:
        return await self.client.post("/api/contacts", json=body, headers=self.agent)

    async def contact(self, contact_id: str) -> Json:
        response = await self.client.get(f"/api/contacts/{contact_id}", headers=self.agent)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def patch(self, contact_id: str, body: Json) -> httpx.Response:
        return await self.client.patch(f"/api/contacts/{contact_id}", json=body, headers=self.agent)


@pytest.fixture
async def api(kith_client: httpx.AsyncClient, kith_auth: TokenFactory) -> Api:
    return Api(kith_client, await kith_auth("admin"), await kith_auth("agent"))


KITH = str(Path(sys.executable).with_name("kith"))


def refused(response: httpx.Response, status: int, field: str) -> str:
    """The problem's detail, after checking its status and the field it names."""
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem.get("field") == field, problem
    return str(problem["detail"])


# -- declaring ---------------------------------------------------------------------------------


EVERY_TYPE: list[Json] = [
    {"name": "industry", "type": "choice", "choices": ["retail", "services"]},
    {"name": "interests", "type": "multi_choice", "choices": ["a", "b", "c"]},
    {"name": "notes_long", "type": "long_text"},
    {"name": "nickname", "type": "text", "label": "Nickname"},
    {"name": "employees", "type": "number"},
    {"name": "budget", "type": "decimal", "currency": "EUR"},
    {"name": "birthday", "type": "date", "personal": True},
    {"name": "last_visit", "type": "datetime"},
    {"name": "vip", "type": "boolean", "default": False},
    {"name": "billing_email", "type": "email"},
    {"name": "fax", "type": "phone"},
    {"name": "website", "type": "url"},
]


async def test_admin_declares_a_field_of_every_type_and_agents_list_them(api: Api) -> None:
    for body in EVERY_TYPE:
        declared = await api.declared(**body)
        assert (declared["name"], declared["type"]) == (body["name"], body["type"])
    listed = {f["name"]: f for f in await api.fields()}
    assert sorted(listed) == sorted(b["name"] for b in EVERY_TYPE)
    assert listed["industry"]["choices"] == ["retail", "services"]
    assert listed["budget"]["currency"] == "EUR"
    assert listed["vip"]["default"] is False
    assert listed["nickname"]["label"] == "Nickname"
    # A personal field is listed with what the record of processing needs to say of it.
    assert listed["birthday"]["personal"] is True
    assert (listed["birthday"]["category"], listed["birthday"]["purpose"]) == (
        "custom",
        "customer_relationship",
    )


async def test_a_fresh_install_has_no_custom_fields(api: Api) -> None:
    assert await api.fields() == []
    created = await api.create(name="Ada Lovelace")
    assert created.status_code == 201
    assert created.json()["fields"] == {}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "kind_of", "type": "choice"}, 422, "choices"),
        ({"name": "twice", "type": "choice", "choices": ["a", "a"]}, 422, "choices"),
        ({"name": "size", "type": "text", "choices": ["s"]}, 422, "choices"),
        ({"name": "budget", "type": "decimal"}, 422, "currency"),
        ({"name": "code", "type": "text", "currency": "EUR"}, 422, "currency"),
        ({"name": "staff", "type": "number", "default": "many"}, 422, "default"),
        ({"name": "tier", "type": "choice", "choices": ["a"], "default": "b"}, 422, "default"),
        ({"name": "dob", "type": "date", "personal": True, "purpose": "fun"}, 422, "purpose"),
        ({"name": "colour", "type": "text", "category": "taste"}, 422, "category"),
        ({"name": "essay", "type": "long_text", "searchable": True}, 422, "searchable"),
    ],
)
async def test_bad_declarations_are_refused_naming_what_is_wrong(
    api: Api, body: Json, status: int, field: str
) -> None:
    refused(await api.declare(**body), status, field)
    assert await api.fields() == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Industry", "type": "text"},
        {"name": "has space", "type": "text"},
        {"name": "industry", "type": "colour"},
        {"name": "industry"},
        {"name": "budget", "type": "decimal", "currency": "euro"},
    ],
)
async def test_malformed_declarations_are_4xx_problems(api: Api, body: Json) -> None:
    response = await api.declare(**body)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await api.fields() == []


async def test_a_name_is_declared_once_even_after_archiving(api: Api) -> None:
    await api.declared(name="industry", type="text")
    refused(await api.declare(name="industry", type="number"), 409, "name")
    assert (await api.client.delete("/api/fields/industry", headers=api.admin)).status_code == 200
    refused(await api.declare(name="industry", type="number"), 409, "name")


async def test_only_admins_declare_change_and_archive(api: Api) -> None:
    response = await api.client.post(
        "/api/fields", json={"name": "industry", "type": "text"}, headers=api.agent
    )
    assert response.status_code == 403
    await api.declared(name="industry", type="text")
    changed = await api.client.patch("/api/fields/industry", json={"label": "x"}, headers=api.agent)
    assert changed.status_code == 403
    assert (await api.client.delete("/api/fields/industry", headers=api.agent)).status_code == 403


async def test_change_and_archive_a_field(api: Api) -> None:
    await api.declared(name="industry", type="choice", choices=["retail"])
    changed = await api.change_field(
        "industry",
        {"label": "Industry", "choices": ["retail", "services"], "default": "services"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["choices"] == ["retail", "services"]
    assert changed.json()["default"] == "services"
    refused(await api.change_field("industry", {"default": "farming"}), 422, "default")
    refused(await api.change_field("industry", {"choices": []}), 422, "choices")
    assert (await api.change_field("nothing", {"label": "x"})).status_code == 404

    archived = await api.client.delete("/api/fields/industry", headers=api.admin)
    assert archived.json()["archived"] is True
    assert await api.fields() == []
    assert [f["name"] for f in await api.fields(include_archived=True)] == ["industry"]


# -- the CLI -----------------------------------------------------------------------------------


def _cli(home: Path, url: str) -> Any:
    def run(*args: str) -> Result:
        env = {"KITH_HOME": str(home), "KITH_DATABASE_URL": url, "KITH_LOG_FORMAT": "json"}
        return CliRunner().invoke(main, list(args), env=env)

    return run


def test_kith_fields_add_list_change_archive(kith_database_url: str, tmp_path: Path) -> None:
    kith = _cli(tmp_path / "kith-home", kith_database_url)
    added = kith(
        "fields", "add", "industry", "--type", "choice", "--choice", "retail", "--choice", "b2b"
    )
    assert added.exit_code == 0, added.output
    assert "Added choice field industry" in added.stdout
    money = kith("fields", "add", "budget", "--type", "decimal", "--currency", "EUR", "--json")
    assert msgspec.json.decode(money.stdout)["currency"] == "EUR"

    listed = kith("fields", "list")
    assert "industry" in listed.stdout and "retail, b2b" in listed.stdout
    assert "decimal EUR" in listed.stdout

    changed = kith("fields", "change", "industry", "--required", "--default", "b2b")
    assert changed.exit_code == 0, changed.output
    assert "(required)" in changed.stdout

    archived = kith("fields", "archive", "budget")
    assert archived.exit_code == 0 and "archived" in archived.stdout
    assert "budget" not in kith("fields", "list").stdout
    assert "budget" in kith("fields", "list", "--all").stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("add", "tier", "--type", "choice"), "needs at least one choice"),
        (("add", "budget", "--type", "decimal"), "needs a currency"),
        (("add", "Bad Name", "--type", "text"), "invalid field"),
        (("add", "staff", "--type", "number", "--default", "many"), "default: 'many'"),
        (("change", "nothing", "--label", "x"), "no custom field named 'nothing'"),
        (("archive", "nothing"), "no custom field named 'nothing'"),
    ],
)
def test_kith_fields_refuses_bad_declarations_in_one_line(
    kith_database_url: str, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    result = _cli(tmp_path / "kith-home", kith_database_url)("fields", *args)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kith: "), result.stderr
    assert says in lines[0]
    assert "Traceback" not in result.output


# -- values --------------------------------------------------------------------------------


async def _declare_every_type(api: Api) -> None:
    for body in EVERY_TYPE:
        await api.declared(**body)


@pytest.mark.parametrize(
    ("name", "given", "stored"),
    [
        ("nickname", "  Ada  ", "Ada"),
        # A number is text enough for a text field; one choice is a list of one.
        ("nickname", 12.5, "12.5"),
        ("interests", "a", ["a"]),
        ("notes_long", "line one\nline two", "line one\nline two"),
        ("employees", 12, 12),
        ("employees", "12", 12),
        ("employees", 2.5, 2.5),
        ("budget", "1250.5", "1250.50"),
        ("budget", 99, "99.00"),
        ("birthday", "1815-12-10", "1815-12-10"),
        ("last_visit", "2026-12-05T10:30:00+03:00", "2026-12-05T07:30:00.000000+00:00"),
        ("last_visit", "2026-12-05T07:30:00Z", "2026-12-05T07:30:00.000000+00:00"),
        ("vip", True, True),
        ("vip", "yes", True),
        ("industry", "retail", "retail"),
        ("interests", ["c", "a", "c"], ["a", "c"]),
        ("billing_email", " Billing@Example.COM ", "billing@example.com"),
        ("fax", "020 7946 0018", "+442079460018"),
        ("website", "Example.com/about", "https://example.com/about"),
        ("website", "HTTP://EXAMPLE.org", "http://example.org"),
    ],
)
async def test_values_are_validated_normalised_and_returned(
    api: Api, name: str, given: Any, stored: Any
) -> None:
    await _declare_every_type(api)
    response = await api.create(name="Ada Lovelace", fields={name: given})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["fields"][name] == stored
    # The default of a field not given applies to a new contact.
    assert created["fields"]["vip"] is (stored if name == "vip" else False)
    assert (await api.contact(created["id"]))["fields"] == created["fields"]


async def test_a_contact_read_shows_its_values_beside_its_emails_and_phones(api: Api) -> None:
    """One query reads a contact, its emails and phones and its values: each part is there
    whether or not the others are, and an archived field's value is not shown."""
    await api.declared(name="nickname", type="text")
    await api.declared(name="birthday", type="date", personal=True)
    await api.declared(name="old", type="text")
    shapes: list[Json] = [
        {
            "emails": [{"address": "ada@example.com"}, {"address": "ada@work.example"}],
            "phones": [{"number": "+44 20 7946 0000"}],
            "fields": {"nickname": "Ada", "birthday": "1815-12-10", "old": "x"},
        },
        {"fields": {"nickname": "Bea"}},
        {"emails": [{"address": "cy@example.com"}]},
        {},
    ]
    ids = []
    for number, body in enumerate(shapes):
        response = await api.create(name=f"Person {number}", **body)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    assert (await api.client.delete("/api/fields/old", headers=api.admin)).status_code == 200
    read = [await api.contact(contact_id) for contact_id in ids]
    assert [c["name"] for c in read] == [f"Person {n}" for n in range(4)]
    assert [[e["address"] for e in c["emails"]] for c in read] == [
        ["ada@example.com", "ada@work.example"],
        [],
        ["cy@example.com"],
        [],
    ]
    assert [[p["number"] for p in c["phones"]] for c in read] == [["+442079460000"], [], [], []]
    assert [c["fields"] for c in read] == [
        {"birthday": "1815-12-10", "nickname": "Ada"},
        {"nickname": "Bea"},
        {},
        {},
    ]
    missing = await api.client.get(f"/api/contacts/{new_id()}", headers=api.agent)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("name", "given", "says"),
    [
        ("nickname", ["Ada"], "must be text"),
        ("nickname", "x" * 501, "longer than 500"),
        ("employees", "many", "not a number"),
        ("employees", True, "must be a number"),
        ("budget", "12.345", "more than two decimal places"),
        ("budget", "lots", "not an amount"),
        ("birthday", "10/12/1815", "not a date"),
        ("last_visit", "2026-12-05T10:30:00", "needs a time zone"),
        ("vip", "maybe", "not true or false"),
        ("industry", "farming", "not one of the choices"),
        ("interests", ["a", "z"], "not one of the choices"),
        ("interests", 3, "must be a list of choices"),
        ("billing_email", "not-an-email", "not a valid email"),
        ("fax", "12", "phone"),
        ("website", "ftp://example.com", "not a web address"),
        ("website", "not a site", "not a web address"),
    ],
)
async def test_bad_values_are_refused_naming_the_field(
    api: Api, name: str, given: Any, says: str
) -> None:
    await _declare_every_type(api)
    response = await api.create(name="Ada Lovelace", fields={name: given})
    detail = refused(response, 422, f"fields.{name}")
    assert detail.startswith(f"fields.{name}: ") and says in detail
    assert (await api.client.get("/api/contacts", headers=api.agent)).json()["items"] == []


async def test_unknown_and_archived_fields_are_refused_by_name(api: Api) -> None:
    await api.declared(name="industry", type="text")
    await api.declared(name="legacy", type="text")
    detail = refused(await api.create(name="Ada", fields={"industy": "x"}), 422, "fields.industy")
    assert "no custom field named 'industy'" in detail and "industry" in detail

    ada = (await api.create(name="Ada", fields={"legacy": "old"})).json()
    await api.client.delete("/api/fields/legacy", headers=api.admin)
    refused(await api.create(name="Bob", fields={"legacy": "x"}), 422, "fields.legacy")
    refused(await api.patch(ada["id"], {"fields": {"legacy": "x"}}), 422, "fields.legacy")
    # Archiving hides the field's values.
    assert (await api.contact(ada["id"]))["fields"] == {}


async def test_required_fields_and_defaults(api: Api) -> None:
    await api.declared(name="industry", type="choice", choices=["retail", "b2b"], required=True)
    await api.declared(name="tier", type="choice", choices=["gold", "basic"], default="basic")
    refused(await api.create(name="Ada"), 422, "fields.industry")
    refused(await api.create(name="Ada", fields={"industry": ""}), 422, "fields.industry")
    ada = (await api.create(name="Ada", fields={"industry": "retail"})).json()
    assert ada["fields"] == {"industry": "retail", "tier": "basic"}
    # A required value cannot be cleared; an optional one can.
    refused(await api.patch(ada["id"], {"fields": {"industry": None}}), 422, "fields.industry")
    cleared = await api.patch(ada["id"], {"fields": {"tier": None}})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["fields"] == {"industry": "retail"}


async def _in_another_process(kith: Kith, *args: str) -> None:
    """``kith fields ...`` run as a process of its own on the same installation."""
    env = {
        **os.environ,
        "KITH_HOME": str(kith.settings.home),
        "KITH_DATABASE_URL": kith.settings.database_url,
        "KITH_LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        KITH, "fields", *args, env=env, stdout=PIPE, stderr=STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()


async def test_declarations_changed_by_another_process_apply_to_the_next_create(
    kith: Kith,
) -> None:
    """A process remembers the declarations; a change made by another process (the command
    line, a second server) is used by its next create all the same."""
    contacts = ContactService(kith)
    await contacts.create(ContactCreate(name="Before any field"))
    await _in_another_process(kith, "add", "industry", "--type", "text", "--required")
    await _in_another_process(
        kith, "add", "tier", "--type", "choice", "--choice", "gold", "--choice", "basic",
        "--default", "basic",
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="'industry' is required"):
        await contacts.create(ContactCreate(name="Ada"))
    ada = await contacts.create(ContactCreate(name="Ada", fields={"industry": "retail"}))
    assert ada.fields == {"industry": "retail", "tier": "basic"}

    await _in_another_process(kith, "change", "industry", "--optional")
    await _in_another_process(kith, "archive", "tier")
    assert (await contacts.create(ContactCreate(name="Bob"))).fields == {}
    with pytest.raises(InvalidInput, match="'tier' is archived"):
        await contacts.create(ContactCreate(name="Cy", fields={"tier": "gold"}))

    await _in_another_process(kith, "purge", "tier", "--yes")
    with pytest.raises(InvalidInput, match="no custom field named 'tier'"):
        await contacts.create(ContactCreate(name="Cy", fields={"tier": "gold"}))


async def test_patch_changes_only_the_fields_given(api: Api) -> None:
    await api.declared(name="industry", type="text")
    await api.declared(name="employees", type="number")
    ada = (await api.create(name="Ada", fields={"industry": "retail", "employees": 5})).json()
    changed = await api.patch(ada["id"], {"fields": {"employees": "7"}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["fields"] == {"employees": 7, "industry": "retail"}
    # A refused value changes nothing, not even the other fields of the same change.
    refused(
        await api.patch(
            ada["id"], {"name": "Ada L", "fields": {"industry": "x", "employees": "x"}}
        ),
        422,
        "fields.employees",
    )
    after = await api.contact(ada["id"])
    assert after["name"] == "Ada" and after["fields"] == {"employees": 7, "industry": "retail"}
    # Without "fields", a change leaves them alone; the list returns them too.
    await api.patch(ada["id"], {"tags": ["x"]})
    listed = (await api.client.get("/api/contacts", headers=api.agent)).json()["items"]
    assert listed[0]["fields"] == {"employees": 7, "industry": "retail"}


async def test_a_choice_in_use_is_not_removed(api: Api) -> None:
    await api.declared(name="industry", type="choice", choices=["retail", "b2b", "farming"])
    await api.create(name="Ada", fields={"industry": "retail"})
    detail = refused(await api.change_field("industry", {"choices": ["b2b"]}), 409, "choices")
    assert "1 contact(s) hold 'retail'" in detail
    unused = await api.change_field("industry", {"choices": ["retail", "b2b"]})
    assert unused.status_code == 200, unused.text


# -- personal fields -----------------------------------------------------------------------

BIRTHDAY = "1815-12-10"
NICKNAME = "Enchantress-of-Numbers"


async def _personal_contact(kith: Kith) -> uuid.UUID:
    fields = FieldService(kith)
    await fields.add(FieldCreate(name="birthday", type="date", personal=True))
    await fields.add(FieldCreate(name="nickname", type="text", personal=True, category="identity"))
    await fields.add(FieldCreate(name="industry", type="text"))
    contact = await ContactService(kith).create(
        ContactCreate(
            name="Ada Lovelace",
            fields={"birthday": BIRTHDAY, "nickname": NICKNAME, "industry": "mathematics"},
        )
    )
    return contact.id


async def test_personal_values_are_encrypted_at_rest(kith: Kith, kith_engine: str) -> None:
    contact_id = await _personal_contact(kith)
    assert (await ContactService(kith).get(contact_id)).fields == {
        "birthday": BIRTHDAY,
        "industry": "mathematics",
        "nickname": NICKNAME,
    }
    stored = stored_bytes(kith, kith_engine)
    assert NICKNAME.encode() not in stored and BIRTHDAY.encode() not in stored
    # A value that is not personal stays plain, so lists can filter on it.
    assert b"mathematics" in stored


async def test_personal_values_are_exported_and_erased_with_the_person(
    kith: Kith, kith_engine: str
) -> None:
    contact_id = await _personal_contact(kith)
    assert kith.plugins is not None
    section = await kith.plugins.call_one(
        "kith", "kith_subject_export", kith=kith, contact_id=contact_id
    )
    exported = {row["field"]: row["value"] for row in section.tables["custom_fields"]}
    assert exported == {"birthday": BIRTHDAY, "industry": "mathematics", "nickname": NICKNAME}

    done = await ErasureService(kith).run(contact_id, job_id=uuid.uuid4())
    erased = {(e.source, e.location): (e.method, e.count) for e in done.entries}
    assert erased[("kith", "kith_custom_field_value")] == ("deleted", 3)
    assert await CustomFieldValue.count().where(CustomFieldValue.contact == contact_id) == 0
    assert b"mathematics" not in stored_bytes(kith, kith_engine)


# -- filtering lists -----------------------------------------------------------------------


async def _names(api: Api, **params: Any) -> list[str]:
    response = await api.client.get("/api/contacts", params=params, headers=api.agent)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def test_lists_filter_on_values_and_ranges(api: Api) -> None:
    await _declare_every_type(api)
    for name, fields in [
        ("Ann", {"industry": "retail", "employees": 5, "budget": "99.50", "interests": ["a"]}),
        ("Bob", {"industry": "retail", "employees": 50, "last_visit": "2026-03-01T10:00:00Z"}),
        ("Cat", {"industry": "services", "employees": 500, "interests": ["a", "b"]}),
        ("Dan", {"billing_email": "Dan@Example.com", "vip": True}),
    ]:
        assert (await api.create(name=name, fields=fields)).status_code == 201
    assert await _names(api, **{"field.industry": "retail"}) == ["Ann", "Bob"]
    assert await _names(api, **{"field.employees.min": "10"}) == ["Bob", "Cat"]
    assert await _names(api, **{"field.employees.min": "10", "field.employees.max": "100"}) == [
        "Bob"
    ]
    assert await _names(api, **{"field.industry": "retail", "field.employees.max": "9"}) == ["Ann"]
    assert await _names(api, **{"field.budget.max": "100"}) == ["Ann"]
    assert await _names(api, **{"field.interests": "b"}) == ["Cat"]
    assert await _names(api, **{"field.interests": "a"}) == ["Ann", "Cat"]
    # Values are normalised before they are compared, as when they were stored.
    assert await _names(api, **{"field.billing_email": "DAN@example.COM"}) == ["Dan"]
    assert await _names(api, **{"field.vip": "yes"}) == ["Dan"]
    assert await _names(api, **{"field.vip": "false"}) == ["Ann", "Bob", "Cat"]
    after = {"field.last_visit.min": "2026-03-01T11:00:00+01:00"}
    assert await _names(api, **after) == ["Bob"]
    assert await _names(api, **{"field.last_visit.max": "2026-02-28T23:59:59Z"}) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"field.industy": "retail"}, "field.industy"),
        ({"field.employees.min": "many"}, "field.employees.min"),
        ({"field.industry.min": "a"}, "field.industry.min"),
        ({"field.employees.above": "3"}, "field.employees.above"),
        # Personal: encrypted, so only searchable ones, and by an exact value.
        ({"field.birthday": "1815-12-10"}, "field.birthday"),
        ({"field.industry": "farming"}, "field.industry"),
    ],
)
async def test_bad_filters_are_422_naming_the_parameter(
    api: Api, params: dict[str, str], field: str
) -> None:
    await _declare_every_type(api)
    response = await api.client.get("/api/contacts", params=params, headers=api.agent)
    refused(response, 422, field)


# -- changing a type -----------------------------------------------------------------------


async def test_a_type_change_converts_every_value(api: Api) -> None:
    await api.declared(name="employees", type="text")
    await api.declared(name="segment", type="choice", choices=["retail", "b2b"])
    ids = []
    for name, fields in [
        ("Ann", {"employees": " 12 ", "segment": "retail"}),
        ("Bob", {"employees": "7", "segment": "b2b"}),
    ]:
        ids.append((await api.create(name=name, fields=fields)).json()["id"])
    changed = await api.change_field("employees", {"type": "number"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["type"] == "number"
    assert [(await api.contact(i))["fields"]["employees"] for i in ids] == [12, 7]
    # Converted numbers filter as numbers.
    assert await _names(api, **{"field.employees.min": "10"}) == ["Ann"]

    to_many = await api.change_field(
        "segment", {"type": "multi_choice", "choices": ["retail", "b2b", "public"]}
    )
    assert to_many.status_code == 200, to_many.text
    assert [(await api.contact(i))["fields"]["segment"] for i in ids] == [["retail"], ["b2b"]]
    back = await api.change_field("segment", {"type": "text"})
    assert back.status_code == 200, back.text
    assert back.json()["choices"] == []
    assert (await api.contact(ids[0]))["fields"]["segment"] == "retail"


async def test_a_lossy_type_change_is_refused_with_count_and_examples(api: Api) -> None:
    await api.declared(name="employees", type="text")
    await api.declared(name="secret_size", type="text", personal=True)
    for name, value in [("Ann", "12"), ("Bob", "a dozen"), ("Cat", "many"), ("Dan", "3")]:
        created = await api.create(name=name, fields={"employees": value, "secret_size": value})
        assert created.status_code == 201, created.text
    response = await api.change_field("employees", {"type": "number", "label": "Staff"})
    detail = refused(response, 409, "type")
    assert response.json()["count"] == 2
    assert "2 of 4 values" in detail and "'a dozen'" in detail and "'many'" in detail
    # Nothing changed: not the type, not the label, not a value.
    [declared] = [f for f in await api.fields() if f["name"] == "employees"]
    assert (declared["type"], declared["label"]) == ("text", "")
    listed = (await api.client.get("/api/contacts", headers=api.agent)).json()["items"]
    assert [c["fields"]["employees"] for c in listed] == ["12", "a dozen", "many", "3"]
    # A personal value is not shown back in the refusal; its contact is named instead.
    secret = await api.change_field("secret_size", {"type": "number"})
    detail = refused(secret, 409, "type")
    assert "dozen" not in detail and "many" not in detail and "contact " in detail


def test_kith_contacts_add_takes_custom_field_values(
    kith_database_url: str, tmp_path: Path
) -> None:
    kith = _cli(tmp_path / "kith-home", kith_database_url)
    assert kith("fields", "add", "employees", "--type", "number").exit_code == 0
    added = kith("contacts", "add", "Engines Ltd", "--field", "employees= 12", "--json")
    assert added.exit_code == 0, added.output
    assert msgspec.json.decode(added.stdout)["fields"] == {"employees": 12}
    refused = kith("contacts", "add", "Other Ltd", "--field", "employees=many")
    assert refused.exit_code != 0
    assert refused.stderr.strip() == "kith: fields.employees: 'many' is not a number"
    malformed = kith("contacts", "add", "Other Ltd", "--field", "employees")
    assert "write it as NAME=VALUE" in malformed.stderr


async def test_personal_fields_are_listed_in_the_record_of_processing(
    api: Api, kith_auth: TokenFactory
) -> None:
    await api.declared(name="birthday", type="date", personal=True, label="Birthday")
    await api.declared(name="shoe_size", type="number", personal=True, category="preferences")
    await api.declared(name="industry", type="text")
    officer = await kith_auth("compliance")
    response = await api.client.get("/api/privacy/ropa", headers=officer)
    assert response.status_code == 200, response.text
    record = response.json()
    custom = {f["column"]: f for f in record["fields"] if f["table"] == "kith_custom_field_value"}
    assert set(custom) >= {"birthday", "shoe_size"} and "industry" not in custom
    assert (custom["birthday"]["category"], custom["birthday"]["purposes"]) == (
        "custom",
        ["customer_relationship"],
    )
    assert "Birthday" in custom["birthday"]["description"]
    categories = {c["name"]: c for c in record["categories"]}
    assert categories["preferences"]["fields"] == ["kith_custom_field_value.shoe_size"]


async def test_searchable_personal_fields_are_found_through_a_blind_index(
    api: Api, kith: Kith, kith_engine: str
) -> None:
    await api.declared(name="passport", type="text", personal=True, searchable=True)
    await api.declared(name="loyalty_card", type="text", personal=True)
    for name, passport, card in [("Ann", "X-1234-Q", "C-77"), ("Bob", "Y-5678-R", "C-88")]:
        fields = {"passport": passport, "loyalty_card": card}
        assert (await api.create(name=name, fields=fields)).status_code == 201
    assert await _names(api, **{"field.passport": " X-1234-Q "}) == ["Ann"]
    assert await _names(api, **{"field.passport": "x-1234-q"}) == []
    refused(
        await api.client.get(
            "/api/contacts", params={"field.loyalty_card": "C-77"}, headers=api.agent
        ),
        422,
        "field.loyalty_card",
    )
    stored = stored_bytes(kith, kith_engine)
    assert b"X-1234-Q" not in stored and b"C-77" not in stored

    # Made searchable later, the values it holds already are indexed too.
    changed = await api.change_field("loyalty_card", {"searchable": True})
    assert changed.status_code == 200, changed.text
    assert await _names(api, **{"field.loyalty_card": "C-88"}) == ["Bob"]
    await api.change_field("passport", {"searchable": False})
    indexed = await CustomFieldValue.select(CustomFieldValue.kind).where(
        CustomFieldValue.lookup.is_not_null()
    )
    assert sorted(row["kind"] for row in indexed) == ["field.loyalty_card"] * 2


async def test_blind_indexes_of_custom_fields_follow_a_re_index(kith: Kith) -> None:
    fields = FieldService(kith)
    await fields.add(FieldCreate(name="passport", type="text", personal=True, searchable=True))
    await fields.add(FieldCreate(name="loyalty_card", type="text", personal=True))
    contacts = ContactService(kith)
    ada = await contacts.create(
        ContactCreate(name="Ada", fields={"passport": "X-1234-Q", "loyalty_card": "C-77"})
    )
    before = await contacts.list(fields={"passport": "X-1234-Q"})
    assert [c.id for c in before.items] == [ada.id]

    await rotation.rotate(kith)
    await reindex.reindex(kith, batch_size=2)
    after = await contacts.list(fields={"passport": "X-1234-Q"})
    assert [c.id for c in after.items] == [ada.id]
    # The value of a field not declared searchable was given no index by the re-index.
    rows = await CustomFieldValue.select(CustomFieldValue.kind, CustomFieldValue.lookup)
    assert sorted((r["kind"] or "", r["lookup"] is None) for r in rows) == [
        ("", True),
        ("field.passport", False),
    ]
