"""A service call is one transaction: all of it lands, or none of it."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Sequence

import pytest
from kith.events import Event, utcnow
from kith.ids import new_id
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, InteractionCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.storage.prepared import run_deferred
from kith.tables import Contact, ContactPoint, Interaction


class Boom(Exception):
    pass


class RecordingSink:
    """An event sink that remembers what was written and what was committed."""

    def __init__(self) -> None:
        self.written: list[list[str]] = []
        self.committed_batches: list[list[str]] = []

    async def write(self, events: Sequence[Event]) -> None:
        self.written.append([event.name for event in events])

    def committed(self, events: Sequence[Event]) -> None:
        self.committed_batches.append([event.name for event in events])


def a_contact() -> Contact:
    now = utcnow()
    return Contact(
        id=new_id(),
        kind="person",
        display_name="Ada",
        tags=[],
        source="test",
        archived=False,
        created_at=now,
        updated_at=now,
    )


async def test_exception_after_first_insert_rolls_everything_back(kith: Kith) -> None:
    with pytest.raises(Boom):
        async with kith.unit_of_work():
            await Contact.insert(a_contact()).run()
            # The unit sees its own write...
            assert await Contact.count() == 1
            await Contact.insert(a_contact()).run()
            raise Boom
    # ...and nobody sees it after the rollback.
    assert await Contact.count() == 0


async def test_service_failure_after_the_contact_row_leaves_nothing(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ContactService(kith)

    async def fail(*args: object, **kwargs: object) -> None:
        # What the create deferred to its commit reaches the database now, as it would
        # before a later statement that reads it.
        await run_deferred(Contact._meta.db)
        assert await Contact.count() == 1, "the contact row should be written by now"
        raise Boom

    monkeypatch.setattr(service, "_write_points", fail)
    with pytest.raises(Boom):
        await service.create(ContactCreate(name="Ada", emails=[EmailIn("ada@example.com")]))
    assert await Contact.count() == 0
    assert await ContactPoint.count() == 0


async def test_nested_units_join_the_outer_one(kith: Kith) -> None:
    contacts = ContactService(kith)
    with pytest.raises(Boom):
        async with kith.unit_of_work():
            ada = await contacts.create(
                ContactCreate(name="Ada", phones=[PhoneIn("020 7946 0018")])
            )
            await InteractionService(kith).log(ada.id, InteractionCreate(kind="note"))
            # The inner units have finished, but they only joined: nothing is committed yet.
            raise Boom
    assert await Contact.count() == 0
    assert await ContactPoint.count() == 0
    assert await Interaction.count() == 0


async def test_events_reach_the_sink_once_with_the_outer_commit(kith: Kith) -> None:
    sink = RecordingSink()
    kith.sink = sink
    contacts = ContactService(kith)
    async with kith.unit_of_work() as outer:
        ada = await contacts.create(ContactCreate(name="Ada"))
        await InteractionService(kith).log(ada.id, InteractionCreate(kind="note"))
        assert sink.written == []
        outer.publish("test.done", ada.id)
    assert sink.written == [["contact.created", "interaction.logged", "test.done"]]
    assert sink.committed_batches == sink.written


async def test_events_of_a_rolled_back_unit_are_never_committed(kith: Kith) -> None:
    sink = RecordingSink()
    kith.sink = sink
    with pytest.raises(Boom):
        async with kith.unit_of_work():
            await ContactService(kith).create(ContactCreate(name="Ada"))
            raise Boom
    assert sink.written == []
    assert sink.committed_batches == []


async def test_a_failing_event_write_rolls_back_the_data(kith: Kith) -> None:
    class BrokenSink(RecordingSink):
        async def write(self, events: Sequence[Event]) -> None:
            raise Boom

    kith.sink = BrokenSink()
    with pytest.raises(Boom):
        await ContactService(kith).create(ContactCreate(name="Ada"))
    assert await Contact.count() == 0


async def test_uncommitted_writes_are_invisible_elsewhere(kith: Kith) -> None:
    async def count_elsewhere() -> int:
        return int(await Contact.count())

    async with kith.unit_of_work():
        await Contact.insert(a_contact()).run()
        # A request running at the same time (its own context, not this unit's).
        outside = asyncio.create_task(count_elsewhere(), context=contextvars.Context())
        assert await outside == 0
    assert await Contact.count() == 1


async def test_unit_after_a_failed_one_works(kith: Kith) -> None:
    with pytest.raises(Boom):
        async with kith.unit_of_work():
            await Contact.insert(a_contact()).run()
            raise Boom
    created = await ContactService(kith).create(ContactCreate(name="Bob"))
    assert isinstance(created.id, uuid.UUID)
    assert await Contact.count() == 1


async def test_after_commit_steps_run_once_the_outer_unit_has_committed(kith: Kith) -> None:
    seen: list[tuple[str, int]] = []

    async def step(name: str) -> None:
        # Outside any transaction, with the committed rows visible.
        assert kith.database.engine.current_transaction.get() is None
        seen.append((name, await Contact.count()))

    async with kith.unit_of_work() as outer:
        await Contact.insert(a_contact()).run()
        async with kith.unit_of_work() as inner:
            inner.after_commit(lambda: step("inner"))
        assert seen == []  # a nested unit joins the outer one: nothing has committed yet
        outer.after_commit(lambda: step("outer"))
    assert seen == [("inner", 1), ("outer", 1)]

    async def never() -> None:
        seen.append(("rolled back", 0))

    with pytest.raises(Boom):
        async with kith.unit_of_work() as unit:
            unit.after_commit(never)
            raise Boom
    assert ("rolled back", 0) not in seen

    async def fails() -> None:
        raise Boom

    # A failing step is logged; what was committed stands and the caller carries on.
    async with kith.unit_of_work() as unit:
        await Contact.insert(a_contact()).run()
        unit.after_commit(fails)
    assert await Contact.count() == 2


async def test_gathered_work_runs_once_in_the_transaction_and_not_after_a_rollback(
    kith: Kith,
) -> None:
    flushed: list[list[Contact]] = []

    async def insert_all(rows: list[Contact]) -> None:
        flushed.append(rows)
        await Contact.insert(*rows).run()

    async with kith.unit_of_work() as uow:
        for _ in range(3):
            # Nested units (a service call in a batch) gather into the outer one.
            async with kith.unit_of_work() as inner:
                inner.gather("contacts", a_contact(), insert_all)
        assert await Contact.count() == 0
    assert [len(rows) for rows in flushed] == [3]
    assert await Contact.count() == 3

    with pytest.raises(Boom):
        async with kith.unit_of_work() as uow:
            uow.gather("contacts", a_contact(), insert_all)
            raise Boom
    assert len(flushed) == 1 and await Contact.count() == 3

    # A flush that fails takes the whole unit with it.
    async def refuse(rows: list[Contact]) -> None:
        raise Boom

    with pytest.raises(Boom):
        async with kith.unit_of_work() as uow:
            await Contact.insert(a_contact()).run()
            uow.gather("refused", None, refuse)
    assert await Contact.count() == 3
