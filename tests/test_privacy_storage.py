"""Field encryption through the real services and API, on SQLite and PostgreSQL: what is stored,
lookups by blind index, copies between rows, data keys in rolled-back transactions, shredding."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from _privacy_storage import protector, raw
from kith.privacy.encryption import shredding
from kith.privacy.encryption.envelope import PREFIX
from kith.privacy.encryption.errors import (
    FieldDecryptionError,
    KeyOfAnotherSubject,
    SubjectErased,
)
from kith.privacy.encryption.keys import DataKeyStore
from kith.privacy.encryption.protector import ERASED_MARKER
from kith.privacy.encryption.tables import DataKey, Tombstone
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, InteractionCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService

HEX64 = re.compile(r"^[0-9a-f]{64}$")


async def _contact(kith: Kith, name: str, email: str, phone: str, note: str = "") -> uuid.UUID:
    created = await ContactService(kith).create(
        ContactCreate(
            name=name,
            given_name=name.split()[0],
            family_name=name.split()[-1],
            emails=[EmailIn(email)],
            phones=[PhoneIn(phone)],
        )
    )
    if note:
        await InteractionService(kith).log(
            created.id, InteractionCreate(kind="note", summary=note, body=note + " (body)")
        )
    return created.id


async def test_stored_values_are_envelopes_and_lookups_are_blind(kith: Kith) -> None:
    contact_id = await _contact(
        kith, "Grace Hopper", "Grace@Navy.example", "+1 202 555 0143", "cobol"
    )
    row = (await raw(kith, "SELECT * FROM kith_contact WHERE id = {}", contact_id))[0]
    for column in ("display_name", "given_name", "family_name"):
        assert row[column].startswith(PREFIX), column
    for point in await raw(kith, "SELECT * FROM kith_contact_point WHERE contact = {}", contact_id):
        assert point["value"].startswith(PREFIX)
        assert HEX64.match(point["lookup"])
    for note in await raw(kith, "SELECT * FROM kith_interaction WHERE contact = {}", contact_id):
        assert note["summary"].startswith(PREFIX) and note["body"].startswith(PREFIX)
    keys = await DataKey.select().where(DataKey.subject == contact_id).run()
    assert len(keys) == 1 and "Grace" not in keys[0]["wrapped"]

    read = await ContactService(kith).get(contact_id)
    assert (read.name, read.given_name, read.family_name) == ("Grace Hopper", "Grace", "Hopper")
    assert [e.address for e in read.emails] == ["grace@navy.example"]
    assert [p.number for p in read.phones] == ["+12025550143"]


async def test_search_by_email_and_phone_through_the_api(kith_client, kith_auth) -> None:
    headers = await kith_auth("agent")
    created = await kith_client.post(
        "/api/contacts",
        json={
            "name": "Hedy Lamarr",
            "emails": [{"address": "Hedy@Example.org"}],
            "phones": [{"number": "+44 20 7946 0991"}],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    await kith_client.post(
        "/api/contacts",
        json={"name": "Someone Else", "emails": [{"address": "x@example.org"}]},
        headers=headers,
    )
    for q in ("hedy@example.org", "HEDY@EXAMPLE.ORG", "+442079460991", "0044 20 7946 0991"):
        found = await kith_client.get("/api/contacts", params={"q": q}, headers=headers)
        assert found.status_code == 200
        assert [c["id"] for c in found.json()["items"]] == [created.json()["id"]], q
    by_name = await kith_client.get("/api/contacts", params={"q": "Lam"}, headers=headers)
    assert [c["name"] for c in by_name.json()["items"]] == ["Hedy Lamarr"]


async def test_duplicate_primary_email_is_refused(kith_client, kith_auth) -> None:
    headers = await kith_auth("agent")
    body = {"name": "Ada", "emails": [{"address": "ada@example.com"}]}
    assert (await kith_client.post("/api/contacts", json=body, headers=headers)).status_code == 201
    again = await kith_client.post(
        "/api/contacts", json={**body, "emails": [{"address": "ADA@example.com"}]}, headers=headers
    )
    assert again.status_code == 409


async def test_ciphertext_copied_to_another_row_or_column_fails(kith: Kith) -> None:
    first = await _contact(kith, "Alan Turing", "alan@example.com", "+44 20 7946 0001")
    second = await _contact(kith, "Joan Clarke", "joan@example.com", "+44 20 7946 0002")
    stolen = (await raw(kith, "SELECT display_name FROM kith_contact WHERE id = {}", first))[0]
    await raw(
        kith,
        "UPDATE kith_contact SET display_name = {} WHERE id = {}",
        stolen["display_name"],
        second,
    )
    with pytest.raises(FieldDecryptionError, match="copied from another row or column"):
        await ContactService(kith).get(second)
    # Into another column of the same row.
    await raw(
        kith,
        "UPDATE kith_contact SET given_name = display_name, display_name = {} WHERE id = {}",
        stolen["display_name"],
        first,
    )
    with pytest.raises(FieldDecryptionError):
        await ContactService(kith).get(first)


async def test_a_value_does_not_read_as_another_subjects(kith: Kith) -> None:
    first = await _contact(kith, "Alan Turing", "alan@example.com", "+44 20 7946 0001", "enigma")
    second = await _contact(kith, "Joan Clarke", "joan@example.com", "+44 20 7946 0002")
    # The row keeps its id (so its envelope still authenticates) but now names another
    # subject: it must not read as the second person's note.
    await raw(kith, "UPDATE kith_interaction SET contact = {} WHERE contact = {}", second, first)
    with pytest.raises(KeyOfAnotherSubject, match="another subject's data key"):
        await InteractionService(kith).timeline(second)
    stored = (await raw(kith, "SELECT display_name FROM kith_contact WHERE id = {}", first))[0]
    with pytest.raises(KeyOfAnotherSubject):
        await protector(kith).reveal(second, "kith_contact", first, dict(stored))
    assert await protector(kith).reveal(first, "kith_contact", first, dict(stored)) == {
        "display_name": "Alan Turing"
    }


async def test_key_created_in_a_rolled_back_transaction_is_not_reused(kith: Kith) -> None:
    store = protector(kith).keys
    subject = uuid.uuid4()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with kith.unit_of_work():
            created = await store.for_subject(subject)
            assert (await store.for_subject(subject)).key_id == created.key_id
            raise Boom
    assert not await DataKey.exists().where(DataKey.subject == subject)
    again = await store.for_subject(subject)
    assert again.key_id != created.key_id
    assert await DataKey.exists().where(DataKey.id == again.key_id)


async def test_one_key_per_subject_even_when_created_concurrently(kith: Kith) -> None:
    import asyncio

    subject = uuid.uuid4()
    stores = [DataKeyStore(protector(kith).keys.provider) for _ in range(4)]
    keys = await asyncio.gather(*(store.for_subject(subject) for store in stores))
    assert len({key.key_id for key in keys}) == 1
    assert len(await DataKey.select().where(DataKey.subject == subject).run()) == 1


async def test_none_is_stored_as_null_and_empty_string_round_trips(kith: Kith) -> None:
    created = await ContactService(kith).create(ContactCreate(name="Mononym"))
    row = (await raw(kith, "SELECT * FROM kith_contact WHERE id = {}", created.id))[0]
    assert row["given_name"] is None and row["family_name"] is None
    logged, _ = await InteractionService(kith).log(
        created.id, InteractionCreate(kind="note", summary="", body="")
    )
    stored = (await raw(kith, "SELECT * FROM kith_interaction WHERE id = {}", logged.id))[0]
    assert stored["summary"].startswith(PREFIX)
    assert (logged.summary, logged.body) == ("", "")


async def test_shredding_erases_one_subject_and_leaves_the_others(kith: Kith) -> None:
    victim = await _contact(kith, "Erin Erased", "erin@example.com", "+44 20 7946 0101", "gone")
    keeper = await _contact(kith, "Kim Kept", "kim@example.com", "+44 20 7946 0202", "stays")
    contacts = ContactService(kith)

    result = await shredding.shred(kith, victim, reason="test")
    assert not result.already and result.lookups_cleared == 2

    erased = await contacts.get(victim)
    assert erased.name == ERASED_MARKER and erased.given_name == ERASED_MARKER
    assert [e.address for e in erased.emails] == [ERASED_MARKER]
    timeline = await InteractionService(kith).timeline(victim)
    assert {i.summary for i in timeline.items} == {ERASED_MARKER}
    assert await contacts.find_ids_by("email", "erin@example.com") == []
    assert await contacts.find_ids_by("phone", "+442079460101") == []
    assert not await DataKey.exists().where(DataKey.subject == victim)
    tombstone = await Tombstone.select().where(Tombstone.subject == victim).first()
    assert tombstone is not None and tombstone["reason"] == "test"

    kept = await contacts.get(keeper)
    assert kept.name == "Kim Kept" and [e.address for e in kept.emails] == ["kim@example.com"]
    assert await contacts.find_ids_by("email", "kim@example.com") == [keeper]

    # New personal data for the erased subject is refused; shredding again is a no-op.
    with pytest.raises(SubjectErased):
        await InteractionService(kith).log(victim, InteractionCreate(kind="note", summary="x"))
    assert (await shredding.shred(kith, victim)).already


async def _key_pages(kith: Kith) -> tuple[list[bytes], list[bytes]]:
    """(the row data of every tuple, every raw page) of the PostgreSQL key table."""
    await raw(kith, "CREATE EXTENSION IF NOT EXISTS pageinspect")
    [size] = await raw(
        kith,
        "SELECT pg_relation_size('kith_privacy_data_key') / "
        "current_setting('block_size')::int AS pages",
    )
    tuples: list[bytes] = []
    pages: list[bytes] = []
    for page in range(int(size["pages"])):
        items = await raw(
            kith,
            "SELECT t_data FROM heap_page_items(get_raw_page('kith_privacy_data_key', {}))",
            page,
        )
        tuples += [bytes(item["t_data"]) for item in items if item["t_data"] is not None]
        [content] = await raw(
            kith, "SELECT get_raw_page('kith_privacy_data_key', {}) AS page", page
        )
        pages.append(bytes(content["page"]))
    return tuples, pages


async def test_a_shredded_key_is_not_left_in_the_database_files(
    kith: Kith, kith_engine: str, kith_settings
) -> None:
    keeper = await _contact(kith, "Kai Kept", "kai@example.com", "+44 20 7946 0606")
    # The newest row: on PostgreSQL the last in its page, where compacting moves nothing over it.
    victim = await _contact(kith, "Wren Wrapped", "wren@example.com", "+44 20 7946 0505")
    row = await DataKey.select().where(DataKey.subject == victim).first()
    assert row is not None
    wrapped = row["wrapped"].encode("ascii")
    sqlite_files = [
        kith_settings.sqlite_path.with_name(kith_settings.sqlite_path.name + suffix)
        for suffix in ("", "-wal", "-shm")
    ]
    if kith_engine == "sqlite":
        # As on a server that has run a while: the key row is in the main file and the log.
        await kith.database.engine.run_ddl("PRAGMA wal_checkpoint(PASSIVE)")
        assert wrapped in sqlite_files[0].read_bytes()
    else:
        assert wrapped in b"".join((await _key_pages(kith))[0])

    await shredding.shred(kith, victim, reason="test")

    if kith_engine == "sqlite":
        for path in sqlite_files:
            if path.exists():
                assert wrapped not in path.read_bytes(), f"the destroyed key is in {path.name}"
    else:
        # VACUUM ran after the commit: the row is gone from the table. While a transaction
        # older than the shred runs anywhere on the server (other databases' too), PostgreSQL
        # must keep it; the worker's hourly scrub removes it once none is left.
        for _ in range(100):
            tuples, pages = await _key_pages(kith)
            if not any(wrapped in item for item in tuples):
                break
            await asyncio.sleep(0.2)
            assert await shredding.rescrub_after_recent_shreds(kith)
        assert not any(wrapped in item for item in tuples)
        # Its bytes stay in the page's free space until the worker's hourly job rewrites the
        # table; then they are in no page at all.
        for _ in range(100):
            assert await shredding.rescrub_after_recent_shreds(kith)
            tuples, pages = await _key_pages(kith)
            if not any(wrapped in page for page in pages):
                break
            await asyncio.sleep(0.2)
        assert not any(wrapped in page for page in pages)
    # The other subject's key is untouched.
    assert (await ContactService(kith).get(keeper)).name == "Kai Kept"


async def test_shredded_subject_reads_erased_in_a_fresh_process(kith: Kith, kith_settings) -> None:
    victim = await _contact(kith, "Pat Gone", "pat@example.com", "+44 20 7946 0303")
    await shredding.shred(kith, victim)
    protector(kith).keys.cache.clear()
    assert (await ContactService(kith).get(victim)).name == ERASED_MARKER


async def test_erased_key_in_other_process_cache_expires(kith: Kith) -> None:
    victim = await _contact(kith, "Lee Cached", "lee@example.com", "+44 20 7946 0404")
    other = DataKeyStore(protector(kith).keys.provider)
    other.cache.ttl = 0.0  # another process whose cached key has expired
    row = await DataKey.select(DataKey.id).where(DataKey.subject == victim).first()
    assert row is not None
    await other.by_id(row["id"])
    await shredding.shred(kith, victim)
    from kith.privacy.encryption.keys import ERASED

    assert await other.by_id(row["id"]) is ERASED
