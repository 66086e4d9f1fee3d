"""Contacts arriving from integrations: found by an email or phone they already hold, or made
once, however many requests about the same new person arrive together."""

from __future__ import annotations

import asyncio

import pytest
from kith import (
    ContactCreate,
    ContactIntake,
    ContactService,
    EmailIn,
    Kith,
    PhoneIn,
)
from kith.tables import Contact


def _intake(kith: Kith) -> ContactIntake:
    return ContactIntake(ContactService(kith, channel="test"))


async def test_twenty_requests_for_one_new_number_make_one_contact(kith: Kith) -> None:
    intake = _intake(kith)
    # The same number as a caller's id and as typed on a web form: one person.
    spellings = ["+44 20 7946 0018", "+442079460018", "+44 (0)20 7946 0018", "00442079460018"]
    results = await asyncio.gather(
        *(
            intake.find_or_create(
                ContactCreate(name="Unknown caller", phones=[PhoneIn(number=spellings[i % 4])])
            )
            for i in range(20)
        )
    )
    assert sum(result.created for result in results) == 1
    assert len({result.contact.id for result in results}) == 1
    assert {result.matched_by for result in results if not result.created} == {"phone"}
    assert await Contact.count() == 1


async def test_an_email_finds_the_contact_before_a_shared_phone(kith: Kith) -> None:
    contacts = ContactService(kith, channel="test")
    office = await contacts.create(
        ContactCreate(name="Front desk", phones=[PhoneIn(number="+44 20 7946 0000")])
    )
    ada = await contacts.create(
        ContactCreate(name="Ada Lovelace", emails=[EmailIn(address="ada@engines.example")])
    )
    found = await _intake(kith).find_or_create(
        ContactCreate(
            name="A. Lovelace",
            emails=[EmailIn(address="ADA@engines.example")],
            phones=[PhoneIn(number="+44 20 7946 0000")],
        )
    )
    assert not found.created and found.matched_by == "email"
    assert found.contact.id == ada.id != office.id
    # Nothing about the existing contact is changed by being found.
    assert found.contact.name == "Ada Lovelace" and found.contact.phones == []


async def test_among_holders_of_a_number_the_one_it_is_primary_for_then_the_oldest(
    kith: Kith,
) -> None:
    contacts = ContactService(kith, channel="test")
    number = "+44 20 7946 0001"
    first = await contacts.create(
        ContactCreate(
            name="Bob",
            phones=[PhoneIn(number="+44 20 7946 0999"), PhoneIn(number=number)],
        )
    )
    second = await contacts.create(ContactCreate(name="Carol", phones=[PhoneIn(number=number)]))
    third = await contacts.create(ContactCreate(name="Dan", phones=[PhoneIn(number=number)]))
    found = await _intake(kith).find_or_create(ContactCreate(phones=[PhoneIn(number=number)]))
    # Carol and Dan have it as their primary number, Bob as a second one; Carol came first.
    assert found.contact.id == second.id
    assert {first.id, third.id}.isdisjoint({found.contact.id})


async def test_bad_values_are_refused_before_anything_is_looked_up(kith: Kith) -> None:
    from kith import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        await _intake(kith).find_or_create(
            ContactCreate(name="X", phones=[PhoneIn(number="not a number")])
        )
    assert refused.value.extra.get("field") == "phones[0]"
    assert await Contact.count() == 0
