"""The data quality report: unreachable contacts, unusable emails and phones, stale contacts and
required custom fields left empty, with counts and example ids, over the API and the CLI."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from _privacy_workflow import cli_env, run_services
from kith import (
    ContactCreate,
    ContactService,
    EmailIn,
    InteractionCreate,
    InteractionService,
    InvalidInput,
    Kith,
    PhoneIn,
)
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.restriction import RestrictionService
from kith.schemas import FieldCreate, FieldPatch
from kith.services.duplicates import DuplicateService
from kith.services.fields import FieldService
from kith.services.merges import MergeService
from kith.services.quality import (
    CHECK_ACTION,
    QualityReport,
    QualityService,
    email_problem,
    phone_problem,
)
from kith.tables import Contact
from kith.testing import KithCli, TokenFactory

LONG_AGO = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("ada@lovelace.co.uk", None),
        ("ada@gmail.com", None),
        ("ada@example.com", "email_reserved_domain"),
        ("ada@mail.example", "email_reserved_domain"),
        ("ada@gmial.com", "email_domain_typo"),
        ("ada@gmail.con", "email_domain_typo"),
        ("ada@hotmial.com", "email_domain_typo"),
        # Short names are not guessed at: real domains are that close to each other.
        ("ada@gmx.de", None),
        ("not an address", "email_invalid"),
    ],
)
def test_email_checks(address: str, problem: str | None) -> None:
    assert email_problem(address) == problem


@pytest.mark.parametrize(
    ("number", "problem"),
    [("+442079460018", None), ("+4412345678", "phone_invalid"), ("+15555550100", "phone_invalid")],
)
def test_phone_checks(number: str, problem: str | None) -> None:
    assert phone_problem(number) == problem


async def _installation(kith: Kith) -> dict[str, uuid.UUID]:
    fields = FieldService(kith)
    await fields.add(FieldCreate(name="billing_email", type="email", personal=True))
    contacts = ContactService(kith)

    async def add(name: str, **data: Any) -> uuid.UUID:
        return (await contacts.create(ContactCreate(name=name, **data))).id

    ids = {
        "fine": await add("Fine", emails=[EmailIn("fine@lovelace.co.uk")]),
        "nobody": await add("Nobody"),
        "org": await add("Lonely Org", kind="organization"),
        "reserved": await add("Reserved", emails=[EmailIn("ada@example.com")]),
        "typo": await add(
            "Typo",
            emails=[EmailIn("bob@gmial.com"), EmailIn("bob@gmail.con")],
            phones=[PhoneIn("+4412345678")],
        ),
        "phone": await add("Phone", phones=[PhoneIn("+15555550100")]),
        "billing": await add(
            "Billing",
            phones=[PhoneIn("+442079460018")],
            fields={"billing_email": "accounts@example.org"},
        ),
        "archived": await add("Archived"),
        "old": await add("Old", phones=[PhoneIn("+442079460019")]),
        "old_but_called": await add("Old but called", phones=[PhoneIn("+442079460020")]),
    }
    await contacts.archive(ids["archived"])
    # Two contacts nobody changed for years, one of them with a recent call.
    await (
        Contact.update({Contact.updated_at: LONG_AGO})
        .where(Contact.id.is_in([ids["old"], ids["old_but_called"]]))
        .run()
    )
    await InteractionService(kith).log(
        ids["old_but_called"], InteractionCreate(kind="call", summary="Caught up")
    )
    await (
        Contact.update({Contact.updated_at: LONG_AGO})
        .where(Contact.id == ids["old_but_called"])
        .run()
    )
    # Required fields declared once contacts exist: those contacts have no value.
    await fields.add(FieldCreate(name="industry", type="text"))
    await fields.add(FieldCreate(name="segment", type="text"))
    await fields.change("industry", FieldPatch(required=True))
    await fields.change("segment", FieldPatch(required=True))
    return ids


def _sections(report: QualityReport) -> dict[str, Any]:
    return {section.name: section for section in report.sections}


def _findings(section: Any) -> dict[str, tuple[int, set[uuid.UUID]]]:
    return {f.name: (f.count, set(f.examples)) for f in section.findings}


async def test_each_section_counts_its_contacts_and_names_a_few(kith: Kith) -> None:
    ids = await _installation(kith)
    report = await QualityService(kith).report()
    # Archived contacts are left out.
    assert report.contacts == len(ids) - 1
    assert report.stale_months == 12
    sections = _sections(report)
    assert [s.name for s in report.sections] == [
        "unreachable",
        "invalid_values",
        "stale",
        "required_fields_empty",
        "duplicates",
    ]

    unreachable = sections["unreachable"]
    assert (unreachable.count, set(unreachable.examples)) == (2, {ids["nobody"], ids["org"]})
    assert _findings(unreachable) == {
        "organization": (1, {ids["org"]}),
        "person": (1, {ids["nobody"]}),
    }

    invalid = sections["invalid_values"]
    assert invalid.count == 4
    assert set(invalid.examples) == {ids["reserved"], ids["typo"], ids["phone"], ids["billing"]}
    assert _findings(invalid) == {
        "email_reserved_domain": (1, {ids["reserved"]}),
        # Two typos of one contact count that contact once.
        "email_domain_typo": (1, {ids["typo"]}),
        "phone_invalid": (2, {ids["typo"], ids["phone"]}),
        "field.billing_email: email_reserved_domain": (1, {ids["billing"]}),
    }

    stale = sections["stale"]
    assert (stale.count, stale.examples) == (1, [ids["old"]])
    assert _findings(stale) == {"untouched_12_months": (1, {ids["old"]})}

    required = sections["required_fields_empty"]
    # Every live contact lacks both fields: each counted once in the section.
    assert required.count == len(ids) - 1
    assert {name: count for name, (count, _) in _findings(required).items()} == {
        "industry": len(ids) - 1,
        "segment": len(ids) - 1,
    }
    assert all(len(section.examples) <= 5 for section in report.sections)


async def test_a_report_of_a_clean_installation_is_all_zero(kith: Kith) -> None:
    await ContactService(kith).create(
        ContactCreate(name="Fine", emails=[EmailIn("fine@lovelace.co.uk")])
    )
    report = await QualityService(kith).report(stale_months=1)
    assert report.contacts == 1
    assert [(s.count, s.examples, s.findings) for s in report.sections] == [(0, [], [])] * 5


async def test_the_months_that_make_a_contact_stale_are_configurable(
    kith: Kith, kith_settings: Any
) -> None:
    contacts = ContactService(kith)
    ada = await contacts.create(ContactCreate(name="Ada"))
    three_months_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=95)
    await Contact.update({Contact.updated_at: three_months_ago}).where(Contact.id == ada.id).run()
    assert _sections(await QualityService(kith).report())["stale"].count == 0
    stale = _sections(await QualityService(kith).report(stale_months=3))["stale"]
    assert (stale.count, stale.findings[0].name) == (1, "untouched_3_months")


async def test_reading_values_to_check_them_is_audited_and_shows_none(kith: Kith) -> None:
    ids = await _installation(kith)
    report = await QualityService(kith, "api").report()
    encoded = msgspec.json.encode(report)
    for value in (b"gmial", b"example.com", b"example.org", b"4412345678", b"555"):
        assert value not in encoded
    log = AuditLog(kith)
    checked = {
        name
        for name, contact_id in ids.items()
        if any(e.action == CHECK_ACTION for e in await log.entries(contact_id))
    }
    # Those with an email, a phone or a personal value were read; the others were not.
    assert checked == {"fine", "reserved", "typo", "phone", "billing", "old", "old_but_called"}


@pytest.fixture
async def agent(kith_auth: TokenFactory) -> dict[str, str]:
    return await kith_auth("agent")


async def test_get_api_quality(
    kith: Kith, kith_client: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    ids = await _installation(kith)
    response = await kith_client.get("/api/quality", params={"stale_months": 6}, headers=agent)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stale_months"] == 6
    sections = {s["name"]: s for s in body["sections"]}
    assert sections["unreachable"]["count"] == 2
    assert str(ids["nobody"]) in sections["unreachable"]["examples"]
    for bad in ("0", "601", "soon"):
        refused = await kith_client.get("/api/quality", params={"stale_months": bad}, headers=agent)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    compliance = await kith_client.get("/api/quality", headers=await _token(kith_client, kith))
    assert compliance.status_code == 403


async def _token(client: httpx.AsyncClient, kith: Kith) -> dict[str, str]:
    from kith.services.users import UserService

    users = UserService(kith)
    await users.add("officer@staff.example", "compliance")
    issued = await users.create_token("officer@staff.example")
    return {"Authorization": f"Bearer {issued.secret}"}


def test_kith_quality_prints_a_table_and_json(
    kith_database_url: str, kith_cli: KithCli, tmp_path: Path
) -> None:
    _, env = cli_env(kith_database_url, tmp_path / "kith-home")
    ids = run_services(env, _installation)
    table = kith_cli("quality", env=env)
    assert table.exit_code == 0, table.output
    assert "Data quality of 9 contacts" in table.stdout
    assert "email_domain_typo" in table.stdout and str(ids["typo"]) in table.stdout
    as_json = kith_cli("quality", "--stale-months", "1", "--json", env=env)
    assert as_json.exit_code == 0, as_json.output
    report = msgspec.json.decode(as_json.stdout, type=QualityReport)
    assert report.stale_months == 1
    refused = kith_cli("quality", "--stale-months", "0", env=env)
    assert refused.exit_code == 2 and "--stale-months" in refused.stderr


async def test_a_restricted_contacts_values_are_not_read(kith: Kith) -> None:
    ids = await _installation(kith)
    await RestrictionService(kith).restrict(ids["typo"], "accuracy_contested")
    report = await QualityService(kith).report()
    invalid = _sections(report)["invalid_values"]
    assert ids["typo"] not in invalid.examples and invalid.count == 3
    actions = {e.action for e in await AuditLog(kith).entries(ids["typo"])}
    assert CHECK_ACTION not in actions
    # Counted without reading anything: still in the sections that need no value.
    assert _sections(report)["required_fields_empty"].count == len(ids) - 1


async def test_the_service_refuses_a_period_out_of_range(kith: Kith) -> None:
    with pytest.raises(InvalidInput) as refused:
        await QualityService(kith).report(stale_months=0)
    assert refused.value.extra["field"] == "stale_months"


async def test_contacts_in_a_pending_duplicate_pair_are_counted_until_merged_or_dismissed(
    kith: Kith,
) -> None:
    contacts = ContactService(kith)
    ivan = (await contacts.create(ContactCreate(name="Иван Иванов"))).id
    latin = (await contacts.create(ContactCreate(name="Ivan Ivanov"))).id
    ada = (await contacts.create(ContactCreate(name="Ada Lovelace"))).id
    twin = (await contacts.create(ContactCreate(name="Ada Lovelace"))).id
    await contacts.create(ContactCreate(name="Grace Hopper"))
    duplicates = DuplicateService(kith)
    await duplicates.scan()

    section = _sections(await QualityService(kith).report())["duplicates"]
    assert (section.count, set(section.examples)) == (4, {ivan, latin, ada, twin})
    assert _findings(section) == {"pending_duplicate_pair": (4, {ivan, latin, ada, twin})}

    [pair] = (await duplicates.list(contact_id=ada)).items
    await duplicates.dismiss(pair.id)
    await MergeService(kith).merge(ivan, [latin])
    section = _sections(await QualityService(kith).report())["duplicates"]
    assert (section.count, section.examples, section.findings) == (0, [], [])
    # The merge took the pair with the merged-away contact; the dismissed pair stays dismissed.
    assert [p.id for p in (await duplicates.list(status="dismissed")).items] == [pair.id]
    assert (await duplicates.list()).items == []
