"""Duplicate detection: candidate pairs from keyed blocking keys (pairs of name words, email and
phone blind indexes), scored with rapidfuzz across scripts; listed, dismissed for good, erased
with the person; never a decryption of every contact. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import httpx
import pytest
from _privacy_subjects import stored_bytes
from kith import name_index, subject_data
from kith.bootstrap import open_kith
from kith.events import utcnow
from kith.plugin_manager import load_plugin_manager
from kith.privacy.encryption.shredding import shred
from kith.privacy.rights.erasure import ErasureService
from kith.runtime import Kith
from kith.schemas import ContactCreate, ContactPatch, EmailIn, FieldCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.duplicates import DuplicateService, forget
from kith.services.fields import FieldService
from kith.settings import Settings
from kith.tables import Contact, DuplicateBlock, DuplicatePair, DuplicateScan
from kith.testing import settings_for


async def _add(kith: Kith, name: str, **fields: Any) -> uuid.UUID:
    return (await ContactService(kith).create(ContactCreate(name=name, **fields))).id


def _pair(*contacts: uuid.UUID) -> frozenset[uuid.UUID]:
    return frozenset(contacts)


async def _listed(kith: Kith, **options: Any) -> dict[frozenset[uuid.UUID], Any]:
    page = await DuplicateService(kith).list(**options)
    return {_pair(p.contact_a.id, p.contact_b.id): p for p in page.items}


class RevealCounter:
    """The contacts whose names the real protector decrypts."""

    def __init__(self, kith: Kith, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: list[uuid.UUID] = []
        reveal = kith.protector.reveal

        async def counting(subject_id, table, row_id, values):  # type: ignore[no-untyped-def]
            if table == Contact._meta.tablename:
                self.rows.append(row_id)
            return await reveal(subject_id, table, row_id, values)

        monkeypatch.setattr(kith.protector, "reveal", counting)


# -- finding -----------------------------------------------------------------------------------


async def test_cyrillic_and_latin_spellings_of_one_name_meet(kith: Kith) -> None:
    ivan = await _add(kith, "Иван Иванов")
    latin = await _add(kith, "Ivanov Ivan")
    with_patronymic = await _add(kith, "Иванов Иван Иванович")
    await _add(kith, "Grace Hopper")
    result = await DuplicateService(kith).scan()
    assert result.mode == "full" and result.name_index
    pairs = await _listed(kith)
    assert set(pairs) == {
        _pair(ivan, latin),
        _pair(ivan, with_patronymic),
        _pair(latin, with_patronymic),
    }
    assert pairs[_pair(ivan, latin)].score == 100
    assert pairs[_pair(ivan, latin)].reasons == ["similar_name"]
    # A name with a word more is a little less than the same name.
    assert 85 <= pairs[_pair(ivan, with_patronymic)].score < 100
    assert result.found == 3 and result.new == 3
    # Scanning everyone again keeps the same pairs, none of them new, and leaves no key behind.
    again = await DuplicateService(kith).scan(full=True)
    assert again.found == 3 and again.new == 0
    assert await DuplicateBlock.count() == 0
    assert {key: pair.id for key, pair in (await _listed(kith)).items()} == {
        key: pair.id for key, pair in pairs.items()
    }


async def test_typos_in_either_word_meet(kith: Kith) -> None:
    jonathan = await _add(kith, "Jonathan Smith")
    jonathon = await _add(kith, "Jonathon Smith")
    jon = await _add(kith, "Jon Smith", given_name="Jon", family_name="Smith")
    john = await _add(kith, "John Smith")
    await DuplicateService(kith).scan()
    pairs = await _listed(kith)
    assert _pair(jonathan, jonathon) in pairs
    assert _pair(jon, john) in pairs
    assert pairs[_pair(jonathan, jonathon)].score >= 90
    # Best score first.
    scores = [p.score for p in (await DuplicateService(kith).list()).items]
    assert scores == sorted(scores, reverse=True)


async def test_a_shared_email_or_phone_is_an_exact_pair(kith: Kith) -> None:
    first = await _add(
        kith,
        "Alexandra Quill",
        emails=[EmailIn("alex@quill.example")],
        phones=[PhoneIn("+44 20 7946 0001")],
    )
    # Another primary email; the shared one as a second address.
    second = await _add(
        kith,
        "Sasha Q.",
        emails=[EmailIn("sasha@home.example"), EmailIn("ALEX@quill.example")],
    )
    third = await _add(kith, "Front Desk", phones=[PhoneIn("020 7946 0001")])
    await DuplicateService(kith).scan()
    pairs = await _listed(kith)
    assert set(pairs) == {_pair(first, second), _pair(first, third)}
    # Listed whatever the names' score: the email or phone is the same.
    assert pairs[_pair(first, second)].reasons == ["same_email"]
    assert pairs[_pair(first, third)].reasons == ["same_phone"]


async def test_different_people_make_no_pair(kith: Kith) -> None:
    await _add(kith, "Anna Petrova")
    await _add(kith, "Olga Petrova")
    await _add(kith, "Ivan Ivanov")
    await _add(kith, "Petr Ivanov")
    await _add(kith, "Ada Lovelace")
    # A person and an organization of one name are not one contact.
    await _add(kith, "Acme Widgets")
    await _add(kith, "Acme Widgets", kind="organization")
    result = await DuplicateService(kith).scan()
    assert result.found == 0
    assert await _listed(kith) == {}
    assert await DuplicatePair.count() == 0


async def test_organization_and_city_add_to_the_score(kith: Kith) -> None:
    await FieldService(kith).add(FieldCreate(name="city", type="text"))
    org = await _add(kith, "Globex", kind="organization")
    first = await _add(kith, "Maria Garcia", organization_id=org, fields={"city": "Москва"})
    second = await _add(kith, "Mario Garcia", organization_id=org, fields={"city": "Moskva"})
    elsewhere = await _add(kith, "Marie Garcia", fields={"city": "Paris"})
    await DuplicateService(kith).scan()
    pairs = await _listed(kith)
    boosted = pairs[_pair(first, second)]
    assert boosted.reasons == ["similar_name", "same_organization", "same_city"]
    assert boosted.score == 100
    assert _pair(first, elsewhere) in pairs
    assert pairs[_pair(first, elsewhere)].reasons == ["similar_name"]
    assert pairs[_pair(first, elsewhere)].score < boosted.score


async def test_only_candidate_pairs_are_decrypted(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(60):
        await _add(kith, f"Person{n} Other{n}")
    ada = await _add(kith, "Ada Lovelace")
    twin = await _add(kith, "Ada Lovelace")
    counter = RevealCounter(kith, monkeypatch)
    result = await DuplicateService(kith).scan()
    assert result.compared == 1
    # Each of the pair once to score it, once to list it; none of the 60 others.
    assert set(counter.rows) == {ada, twin}


async def test_a_very_common_name_does_not_compare_everyone_with_everyone(
    kith: Kith, kith_settings: Settings
) -> None:
    # Sixty people called Ivan, family names starting with Sm: their one shared key (Ivan with
    # Sm) is held by more contacts than max_block (20), so it is skipped, not 1 770 pairs.
    letters = "abcdefghijklmnopqrstuvwxyz"
    for n in range(60):
        await _add(kith, f"Ivan Sm{letters[n % 26]}{letters[n // 26]}ovsky")
    planted = [await _add(kith, "Ivan Kuznetsov"), await _add(kith, "Ivan Kuznetzov")]
    result = await DuplicateService(kith).scan()
    assert result.compared == 1
    assert result.skipped_keys >= 1
    assert set(await _listed(kith)) == {_pair(*planted)}
    # The limit is a setting.
    small = open_kith(
        settings_for(kith_settings.home, kith_settings.database_url, DUPLICATES_MAX_BLOCK="3"),
        plugin_manager=load_plugin_manager(),
    )
    await small.start()
    try:
        for _ in range(4):
            await _add(small, "Maria Garcia")
        counted = await DuplicateService(small).scan(full=True)
        assert counted.skipped_keys >= result.skipped_keys + 4
        assert counted.compared == 1  # the Kuznetsovs again, nobody else
    finally:
        await small.close()


# -- scanning again ----------------------------------------------------------------------------


async def test_an_incremental_scan_checks_new_and_changed_contacts_only(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = await _add(kith, "Ada Lovelace")
    twin = await _add(kith, "Ada Lovelace")
    service = DuplicateService(kith)
    assert (await service.scan()).mode == "full"
    # As if that scan had run an hour ago, on contacts last changed before.
    hour = dt.timedelta(hours=1)
    await Contact.update({Contact.updated_at: utcnow() - 2 * hour}, force=True)
    await DuplicateScan.update({DuplicateScan.started_at: utcnow() - hour}, force=True)
    grace = await _add(kith, "Grace Hopper")
    typo = await _add(kith, "Grace Hoper")
    counter = RevealCounter(kith, monkeypatch)
    again = await service.scan()
    assert again.mode == "incremental"
    assert again.contacts == 2 and again.new == 1 and again.found == 1
    assert set(counter.rows) == {grace, typo}
    assert set(await _listed(kith)) == {_pair(ada, twin), _pair(grace, typo)}
    # A renamed contact's pair goes at the next scan.
    await ContactService(kith).update(typo, ContactPatch(name="Alan Turing"))
    await service.scan()
    assert set(await _listed(kith)) == {_pair(ada, twin)}


async def test_a_dismissed_pair_stays_dismissed(kith: Kith) -> None:
    ada = await _add(kith, "Ada Lovelace")
    twin = await _add(kith, "Ada Lovelace")
    service = DuplicateService(kith)
    await service.scan()
    [pair] = (await service.list()).items
    dismissed = await service.dismiss(pair.id)
    assert dismissed.status == "dismissed" and dismissed.decided_at is not None
    assert dismissed.decided_by == "system"
    assert (await service.dismiss(pair.id)).decided_at == dismissed.decided_at
    for full in (True, False):
        # A change makes the incremental scan look at the pair again.
        await ContactService(kith).update(twin, ContactPatch(tags=["checked"]))
        result = await service.scan(full=full)
        assert result.found == 0
        assert await _listed(kith) == {}
    assert set(await _listed(kith, status="dismissed")) == {_pair(ada, twin)}
    assert await DuplicatePair.count() == 1


async def test_archived_contacts_leave_the_list_and_merged_ones_are_forgotten(
    kith: Kith,
) -> None:
    ada, twin, third = [await _add(kith, "Ada Lovelace") for _ in range(3)]
    grace, hoper = await _add(kith, "Grace Hopper"), await _add(kith, "Grace Hoper")
    service = DuplicateService(kith)
    await service.scan()
    assert len(await _listed(kith)) == 4
    await ContactService(kith).archive(third)
    assert set(await _listed(kith)) == {_pair(ada, twin), _pair(grace, hoper)}
    assert set(await _listed(kith, contact_id=grace)) == {_pair(grace, hoper)}
    # What a merge does with the contacts it merged away, in its own transaction.
    async with kith.unit_of_work():
        assert await forget([hoper]) == 1
    assert set(await _listed(kith)) == {_pair(ada, twin)}


# -- erasure and storage -----------------------------------------------------------------------


async def test_erasure_and_shredding_remove_a_persons_pairs(kith: Kith) -> None:
    ada = await _add(kith, "Ada Lovelace")
    await _add(kith, "Ada Lovelace")
    await _add(kith, "Grace Hopper")
    hoper = await _add(kith, "Grace Hoper")
    await DuplicateService(kith).scan()
    assert await DuplicatePair.count() == 2
    done = await ErasureService(kith).run(ada, job_id=ada)
    assert done.state == "done"
    [entry] = [e for e in done.entries if e.location == "duplicate pairs (kith_duplicate_pair)"]
    assert entry.count == 1 and entry.method == "deleted"
    await shred(kith, hoper)
    assert await DuplicatePair.count() == 0
    # Neither comes back.
    await DuplicateService(kith).scan(full=True)
    assert await DuplicatePair.count() == 0


async def test_an_access_request_exports_a_persons_pairs_without_the_other(kith: Kith) -> None:
    ada, twin = await _add(kith, "Ada Lovelace"), await _add(kith, "Ada Lovelace")
    await DuplicateService(kith).scan()
    section = await subject_data.kith_subject_export(kith, ada)
    assert section is not None
    [row] = section.tables["duplicate_pairs"]
    assert row["score"] == 100 and row["reasons"] == ["similar_name"]
    assert row["status"] == "pending"
    assert str(twin) not in repr(row) and twin not in row.values()
    assert "duplicate_pairs" in section.descriptions


async def test_the_pair_table_holds_no_personal_data(kith: Kith, kith_engine: str) -> None:
    name = "Quintavius Brackenbury"
    email = "quintavius@brackenbury.example"
    first = await _add(kith, name, emails=[EmailIn(email)])
    await _add(kith, name, emails=[EmailIn("other@brackenbury.example"), EmailIn(email)])
    await DuplicateService(kith).scan()
    rows = await DuplicatePair.select()
    assert len(rows) == 1
    text = repr(rows).lower()
    for needle in ("quintavius", "brackenbury"):
        assert needle not in text
    assert rows[0]["contact_a"] == min(first, rows[0]["contact_b"])
    stored = stored_bytes(kith, kith_engine)
    for needle in (name, email, "Quintavius", "Brackenbury"):
        assert needle.encode() not in stored


# -- the index -----------------------------------------------------------------------------------


async def test_pair_tokens_are_the_negative_ones_and_come_back_with_a_rebuild(kith: Kith) -> None:
    ada, twin = await _add(kith, "Ada Lovelace"), await _add(kith, "Ada Lovelace")
    index = name_index.name_index(kith)
    table = Contact._meta.tablename
    pairs = index.pair_tokens(table, ["Ada Lovelace"])
    assert len(pairs) == 4 and all(token < 0 for token in pairs)
    prefixes = index.tokens(table, {"display_name": "Ada Lovelace"}) - pairs
    assert len(prefixes) == 2 + 7 and all(token >= 0 for token in prefixes)
    await name_index.rebuild(kith)
    await DuplicateService(kith).scan()
    assert set(await _listed(kith)) == {_pair(ada, twin)}


async def test_without_the_name_index_only_emails_and_phones_are_compared(
    kith_settings: Settings,
) -> None:
    settings = settings_for(
        kith_settings.home, kith_settings.database_url, NAME_SEARCH_INDEX="false"
    )
    kith = open_kith(settings, plugin_manager=load_plugin_manager())
    await kith.start()
    try:
        await _add(kith, "Ada Lovelace")
        await _add(kith, "Ada Lovelace")
        first = await _add(kith, "Grace Hopper", phones=[PhoneIn("+44 20 7946 0002")])
        second = await _add(kith, "G. Hopper", phones=[PhoneIn("+44 20 7946 0002")])
        result = await DuplicateService(kith).scan()
        assert not result.name_index
        assert set(await _listed(kith)) == {_pair(first, second)}
    finally:
        await kith.close()


# -- API ---------------------------------------------------------------------------------------


async def test_api_scan_list_page_and_dismiss(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: Any
) -> None:
    agent = await kith_auth("agent")
    ada, twin = await _add(kith, "Ada Lovelace"), await _add(kith, "Ada Lovelace")
    grace, hoper = await _add(kith, "Grace Hopper"), await _add(kith, "Grace Hoper")
    scanned = await kith_client.post("/api/duplicates/scan", headers=agent)
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["found"] == 2 and scanned.json()["mode"] == "full"
    first = await kith_client.get("/api/duplicates", params={"limit": 1}, headers=agent)
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    top = page["items"][0]
    assert {top["contact_a"]["id"], top["contact_b"]["id"]} == {str(ada), str(twin)}
    assert top["contact_a"]["name"] == "Ada Lovelace" and top["score"] == 100
    second = await kith_client.get(
        "/api/duplicates", params={"limit": 1, "cursor": page["next_cursor"]}, headers=agent
    )
    [other] = second.json()["items"]
    assert {other["contact_a"]["id"], other["contact_b"]["id"]} == {str(grace), str(hoper)}
    assert second.json()["next_cursor"] is None
    mine = await kith_client.get("/api/duplicates", params={"contact": str(hoper)}, headers=agent)
    assert [p["id"] for p in mine.json()["items"]] == [other["id"]]
    read = await kith_client.get(f"/api/duplicates/{other['id']}", headers=agent)
    assert read.status_code == 200 and read.json()["id"] == other["id"]
    dismissed = await kith_client.post(f"/api/duplicates/{other['id']}/dismiss", headers=agent)
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["status"] == "dismissed"
    assert dismissed.json()["decided_by"].startswith("user:")
    listed = await kith_client.get("/api/duplicates", headers=agent)
    assert [p["id"] for p in listed.json()["items"]] == [top["id"]]
    gone = await kith_client.get("/api/duplicates", params={"status": "dismissed"}, headers=agent)
    assert [p["id"] for p in gone.json()["items"]] == [other["id"]]


async def test_api_refusals_are_problems(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: Any
) -> None:
    agent = await kith_auth("agent")
    compliance = await kith_auth("compliance")
    missing = await kith_client.post(f"/api/duplicates/{uuid.uuid4()}/dismiss", headers=agent)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    bad_cursor = await kith_client.get(
        "/api/duplicates", params={"cursor": "nonsense"}, headers=agent
    )
    assert bad_cursor.status_code == 422
    assert bad_cursor.headers["content-type"].startswith("application/problem+json")
    bad_status = await kith_client.get(
        "/api/duplicates", params={"status": "merged"}, headers=agent
    )
    assert bad_status.status_code == 422
    assert bad_status.headers["content-type"].startswith("application/problem+json")
    # Compliance officers may look, not scan or decide.
    assert (await kith_client.get("/api/duplicates", headers=compliance)).status_code == 200
    forbidden = await kith_client.post("/api/duplicates/scan", headers=compliance)
    assert forbidden.status_code == 403
    assert (await kith_client.get("/api/duplicates")).status_code == 401


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_scans_lists_and_dismisses(kith_settings: Settings, kith_cli: Any) -> None:
    async def prepare() -> list[uuid.UUID]:
        kith = open_kith(kith_settings, plugin_manager=load_plugin_manager())
        await kith.start()
        try:
            return [await _add(kith, "Ada Lovelace"), await _add(kith, "Ada Lovelace")]
        finally:
            await kith.close()

    ada, twin = asyncio.run(prepare())
    env = {
        "KITH_HOME": str(kith_settings.home),
        "KITH_DATABASE_URL": kith_settings.database_url,
        "KITH_LOG_FORMAT": "json",
    }
    empty = kith_cli("contacts", "duplicates", env=env)
    assert empty.exit_code == 0, empty.output
    assert "--scan" in empty.output
    scanned = kith_cli("contacts", "duplicates", "--scan", env=env)
    assert scanned.exit_code == 0, scanned.output
    assert "Scanned 2 contacts" in scanned.output
    assert "Ada Lovelace" in scanned.output and "similar_name" in scanned.output
    listed = kith_cli("contacts", "duplicates", "--json", env=env)
    [pair] = json.loads(listed.stdout)
    assert {pair["contact_a"]["id"], pair["contact_b"]["id"]} == {str(ada), str(twin)}
    dismissed = kith_cli("contacts", "duplicates", "dismiss", pair["id"], env=env)
    assert dismissed.exit_code == 0, dismissed.output
    assert "not a duplicate" in dismissed.output
    again = kith_cli("contacts", "duplicates", "--scan", "--full", env=env)
    assert again.exit_code == 0 and "No duplicates found." in again.output
    shown = kith_cli("contacts", "duplicates", "--dismissed", env=env)
    assert pair["id"] in shown.output
    bad = kith_cli("contacts", "duplicates", "dismiss", "not-an-id", env=env)
    assert bad.exit_code == 1
    assert "'not-an-id' is not a duplicate pair id" in bad.output
    unknown = kith_cli("contacts", "duplicates", "dismiss", str(uuid.uuid4()), env=env)
    assert unknown.exit_code == 1 and "does not exist" in unknown.output
    usage = kith_cli("contacts", "duplicates", "--full", env=env)
    assert usage.exit_code == 2
