"""Core answers for its own data about a data subject through the hooks every plugin answers:
export (``kith_subject_export``), erasure and its preview, keeping what a legal hold holds
(``kith_subject_holds``), and the subject's settled events in the outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from kith import (
    ContactCreate,
    ContactService,
    EmailIn,
    ErasureOutcome,
    EventType,
    InteractionCreate,
    InteractionService,
    Kith,
    RowPages,
    SubjectHold,
    hookimpl,
)
from kith.tables import Contact, Interaction, OutboxEvent

CORE = "kith"
HOLD = uuid.UUID("5c1a7e0a-0000-4000-8000-000000000001")


class KeepsCalls:
    """A plugin whose law keeps a person's calls through an erasure."""

    @hookimpl
    def kith_subject_holds(self, kith: Kith, contact_id: uuid.UUID) -> list[SubjectHold]:
        return [SubjectHold(kinds=("call",), since=None, seal_for=HOLD)]


class Evidence:
    """A plugin whose events document a request itself."""

    @hookimpl
    def kith_register_event_types(self, register: Any) -> None:
        register(EventType("proof.kept", "Evidence of a request.", evidence=True))


async def _person(kith: Kith, notes: int = 2, calls: int = 1) -> uuid.UUID:
    contact = await ContactService(kith).create(
        ContactCreate(given_name="Ada", family_name="Lovelace", emails=[EmailIn("ada@example.com")])
    )
    interactions = InteractionService(kith)
    for index in range(notes):
        await interactions.log(contact.id, InteractionCreate(kind="note", summary=f"note {index}"))
    for index in range(calls):
        await interactions.log(contact.id, InteractionCreate(kind="call", summary=f"call {index}"))
    return contact.id


async def _core(kith: Kith, hook: str, contact_id: uuid.UUID) -> Any:
    assert kith.plugins is not None
    return await kith.plugins.call_one(CORE, hook, kith=kith, contact_id=contact_id)


def _by_location(outcomes: list[ErasureOutcome]) -> dict[str, tuple[str, int]]:
    return {o.location: (o.method, o.count) for o in outcomes}


async def test_core_exports_the_contact_its_points_and_its_timeline_in_pages(kith: Kith) -> None:
    contact_id = await _person(kith, notes=3, calls=0)
    section = await _core(kith, "kith_subject_export", contact_id)
    assert section.source == CORE
    [contact] = section.tables["contact"]
    assert (contact["given_name"], contact["family_name"]) == ("Ada", "Lovelace")
    assert [p["value"] for p in section.tables["contact_points"]] == ["ada@example.com"]
    timeline = section.tables["interactions"]
    assert isinstance(timeline, RowPages) and timeline.count == section.rows("interactions") == 3
    rows = [row async for page in timeline.pages() for row in page]
    assert sorted(row["summary"] for row in rows) == ["note 0", "note 1", "note 2"]
    assert await _core(kith, "kith_subject_export", uuid.uuid4()) is None


@pytest.mark.kith_plugins(KeepsCalls())
async def test_erasure_keeps_what_a_legal_hold_holds_and_the_preview_says_so(kith: Kith) -> None:
    contact_id = await _person(kith, notes=2, calls=1)
    preview = await _core(kith, "kith_subject_erase_preview", contact_id)
    erased = await _core(kith, "kith_subject_erase", contact_id)
    assert _by_location(preview) == _by_location(erased)
    outcomes = _by_location(erased)
    assert outcomes["kith_interaction"] == ("deleted", 2)
    assert outcomes["kith_contact"] == ("anonymised", 1)
    assert outcomes["kith_contact_point"] == ("deleted", 1)

    # The call stays, sealed under the hold's key, on a nameless shell.
    [call] = await Interaction.select(Interaction.kind).where(Interaction.contact == contact_id)
    assert call["kind"] == "call"
    shell = await ContactService(kith).get(contact_id)
    assert shell.name == "[erased]" and shell.emails == [] and shell.archived
    assert await Contact.count().where(Contact.id == contact_id) == 1


async def test_erasure_without_a_hold_deletes_the_contact(kith: Kith) -> None:
    contact_id = await _person(kith, notes=1, calls=1)
    # The privacy plugin's legal holds keep orders only: this person has none.
    erased = _by_location(await _core(kith, "kith_subject_erase", contact_id))
    assert erased["kith_contact"] == ("deleted", 1) and erased["kith_interaction"][1] == 2
    assert await Contact.count().where(Contact.id == contact_id) == 0
    again = _by_location(await _core(kith, "kith_subject_erase", contact_id))
    assert again["kith_contact"] == ("deleted", 0)


@pytest.mark.kith_plugins(Evidence())
async def test_erasure_deletes_settled_events_but_keeps_evidence(kith: Kith) -> None:
    contact_id = await _person(kith, notes=1, calls=0)
    async with kith.unit_of_work() as unit:
        unit.publish("proof.kept", contact_id)
    await kith.bus.drain()
    before = await OutboxEvent.count().where(OutboxEvent.contact_id == contact_id)
    assert before >= 3  # created, logged, the evidence
    erased = _by_location(await _core(kith, "kith_subject_erase", contact_id))
    assert erased["kith_event"] == ("deleted", before - 1)
    left = await OutboxEvent.select(OutboxEvent.name).where(OutboxEvent.contact_id == contact_id)
    assert [row["name"] for row in left] == ["proof.kept"]


async def test_a_hold_since_a_date_keeps_only_what_came_after(kith: Kith) -> None:
    contact_id = await _person(kith, notes=0, calls=0)
    interactions = InteractionService(kith)
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    await interactions.log(contact_id, InteractionCreate(kind="order", occurred_at=old))
    await interactions.log(contact_id, InteractionCreate(kind="order"))
    count, latest = await interactions.count_and_latest(
        contact_id, kinds=("order",), since=dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    )
    assert count == 1 and latest is not None and latest > old
    # The privacy plugin holds orders for 10 years: the one of 2020 is within them too.
    erased = _by_location(await _core(kith, "kith_subject_erase", contact_id))
    assert erased["kith_interaction"] == ("deleted", 0)
