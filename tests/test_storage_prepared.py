"""Prepared queries return what the same piccolo query returns, on both engines."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import pytest
from kith.ids import new_id
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, PhoneIn
from kith.services import is_unique_violation
from kith.services.contacts import ContactService
from kith.storage.prepared import Prepared, run_deferred, run_together
from kith.tables import Contact, ContactPoint

BY_ID = Prepared(lambda contact_id: Contact.select().where(Contact.id == contact_id))
POINTS = Prepared(
    lambda ids, kind: (
        ContactPoint.select(ContactPoint.contact, ContactPoint.value)
        .where(ContactPoint.contact.is_in(ids))
        .where(ContactPoint.kind == kind)
        .order_by(ContactPoint.value)
    )
)
JSON_OUT = Prepared(
    lambda contact_id: (
        Contact.select(Contact.tags).where(Contact.id == contact_id).output(load_json=True)
    )
)

NESTED = Prepared(
    lambda contact_id: (
        ContactPoint.select(ContactPoint.value, ContactPoint.contact.display_name)
        .where(ContactPoint.contact == contact_id)
        .output(nested=True)
    )
)


class Kind(enum.Enum):
    EMAIL = "email"


async def _contacts(kith: Kith, count: int) -> list[uuid.UUID]:
    service = ContactService(kith)
    ids = []
    for number in range(count):
        created = await service.create(
            ContactCreate(
                name=f"Person {number}",
                emails=[EmailIn(f"p{number}@example.com")],
                phones=[PhoneIn(f"+44 20 7946 00{number:02d}")],
                tags=["a", f"t{number}"],
            )
        )
        ids.append(created.id)
    return ids


async def test_rows_match_the_plain_query(kith: Kith) -> None:
    ids = await _contacts(kith, 3)
    for contact_id in ids:
        expected = await Contact.select().where(Contact.id == contact_id).first()
        assert await BY_ID.first(contact_id=contact_id) == expected
    assert await BY_ID.first(contact_id=new_id()) is None


async def test_list_values_of_any_length_and_enums(kith: Kith) -> None:
    ids = await _contacts(kith, 4)
    for subset in (ids[:1], ids[:3], ids, ids[1:3]):
        rows = await POINTS.run(ids=subset, kind=Kind.EMAIL)
        expected = (
            await ContactPoint.select(ContactPoint.contact, ContactPoint.value)
            .where(ContactPoint.contact.is_in(subset))
            .where(ContactPoint.kind == "email")
            .order_by(ContactPoint.value)
            .run()
        )
        assert rows == expected
        assert len(rows) == len(subset)


async def test_output_options_apply(kith: Kith) -> None:
    (contact_id,) = await _contacts(kith, 1)
    row = await JSON_OUT.first(contact_id=contact_id)
    assert row is not None
    assert row["tags"] == ["a", "t0"]


async def test_nested_output_is_nested_as_piccolo_nests_it(kith: Kith) -> None:
    (contact_id,) = await _contacts(kith, 1)
    expected = (
        await ContactPoint.select(ContactPoint.value, ContactPoint.contact.display_name)
        .where(ContactPoint.contact == contact_id)
        .output(nested=True)
        .run()
    )
    rows = await NESTED.run(contact_id=contact_id)
    assert rows == expected
    assert "display_name" in rows[0]["contact"]


async def test_runs_inside_a_unit_of_work_and_sees_its_writes(kith: Kith) -> None:
    async with kith.unit_of_work():
        created = await ContactService(kith).create(ContactCreate(name="Inside"))
        row = await BY_ID.first(contact_id=created.id)
        assert row is not None and row["display_name"] is not None


async def test_a_placeholder_piccolo_puts_into_the_sql_is_refused(kith: Kith) -> None:
    # An alias is written into the statement's text, so no value can be put in later; the
    # other placeholder, used twice, must not make up for the one lost.
    broken = Prepared(
        lambda at, alias: Contact.select(Contact.id.as_alias(alias)).where(
            (Contact.created_at == at) | (Contact.updated_at == at)
        )
    )
    with pytest.raises(TypeError, match="lost 1 of 2 placeholders"):
        await broken.run(at=dt.datetime.now(dt.UTC), alias="x")


async def test_a_json_column_takes_its_value_encoded(kith: Kith) -> None:
    insert = Prepared(
        lambda id, tags, at: Contact.insert(
            Contact(id=id, kind="person", display_name="-", tags=tags, created_at=at, updated_at=at)
        )
    )
    contact_id = new_id()
    await insert.run(id=contact_id, tags='["vip", "lead"]', at=dt.datetime.now(dt.UTC))
    assert await JSON_OUT.run(contact_id=contact_id) == [{"tags": ["vip", "lead"]}]


def test_row_chunks_cover_every_row_in_few_lengths() -> None:
    from kith.storage.prepared import row_chunks

    lengths: set[int] = set()
    for count in range(0, 1000):
        parts = list(row_chunks(count, 100))
        assert [i for part in parts for i in range(part.start, part.stop)] == list(range(count))
        lengths |= {part.stop - part.start for part in parts}
    assert lengths == {100, 64, 32, 16, 8, 4, 2, 1}


# -- deferred statements -------------------------------------------------------------------

INSERT_CONTACT = Prepared(
    lambda id, name, at: Contact.insert(
        Contact(
            id=id,
            kind="person",
            display_name=name,
            tags="[]",
            source="test",
            archived=False,
            created_at=at,
            updated_at=at,
        )
    )
)
INSERT_POINT = Prepared(
    lambda id, contact, value: ContactPoint.insert(
        ContactPoint(id=id, contact=contact, kind="email", value=value, lookup=value)
    )
)


async def _names() -> list[str]:
    rows = await Contact.select(Contact.display_name).order_by(Contact.display_name).run()
    return [row["display_name"] for row in rows]


async def test_deferred_statements_commit_with_their_transaction(kith: Kith) -> None:
    """Deferred in order, run together before the commit: a point may reference a contact
    deferred before it, values of every statement land where they belong."""
    at = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
    ada, bob = new_id(), new_id()
    async with kith.unit_of_work():
        await INSERT_CONTACT.defer(id=ada, name="Ada", at=at)
        await INSERT_CONTACT.defer(id=bob, name="Bob", at=at)
        await INSERT_POINT.defer(id=new_id(), contact=bob, value="bob@example.com")
    assert await _names() == ["Ada", "Bob"]
    rows = await ContactPoint.select(ContactPoint.contact, ContactPoint.value).run()
    assert rows == [{"contact": bob, "value": "bob@example.com"}]


async def test_deferred_statements_roll_back_with_their_transaction(kith: Kith) -> None:
    at = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
    with pytest.raises(RuntimeError):
        async with kith.unit_of_work():
            await INSERT_CONTACT.defer(id=new_id(), name="Ada", at=at)
            raise RuntimeError("changed my mind")
    assert await _names() == []


async def test_a_failing_deferred_statement_fails_the_commit_and_keeps_nothing(
    kith: Kith,
) -> None:
    at = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
    same = new_id()
    with pytest.raises(Exception) as failure:
        async with kith.unit_of_work():
            await INSERT_CONTACT.run(id=new_id(), name="Ada", at=at)
            await INSERT_CONTACT.defer(id=same, name="Bob", at=at)
            await INSERT_CONTACT.defer(id=same, name="Bob again", at=at)
    assert is_unique_violation(failure.value)
    assert await _names() == []


async def test_a_transaction_reads_what_it_deferred_once_it_has_run_it(kith: Kith) -> None:
    at = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
    async with kith.unit_of_work():
        await INSERT_CONTACT.defer(id=new_id(), name="Ada", at=at)
        await run_deferred(kith.database.engine)
        assert await _names() == ["Ada"]
        await run_deferred(kith.database.engine)  # nothing left: runs nothing
    assert await _names() == ["Ada"]


async def test_a_statement_deferred_outside_a_transaction_runs_at_once(kith: Kith) -> None:
    at = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
    await INSERT_CONTACT.defer(id=new_id(), name="Ada", at=at)
    assert await _names() == ["Ada"]


async def test_statements_whose_placeholders_are_unclear_are_not_combined(kith: Kith) -> None:
    if kith.database.kind != "postgresql":
        pytest.skip("only PostgreSQL combines statements")
    odd = Prepared(lambda n: Contact.raw("SELECT '$9' AS text, {} AS n", n))
    with pytest.raises(ValueError, match="placeholders"):
        await run_together(
            kith.database.engine, [odd.bind(None, n=1), BY_ID.bind(None, contact_id=new_id())]
        )
