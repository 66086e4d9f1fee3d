"""The durable event bus on SQLite and PostgreSQL: outbox, fan-out, ordering, retries, dead
letters, replay, crash recovery, concurrent workers and due tasks.

Time is a fake clock the tests move on, so backoff never makes a test sleep.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from kith.bootstrap import open_kith
from kith.bus import UnknownEventType
from kith.dispatcher import backoff_delay
from kith.errors import NotFound
from kith.events import Event, EventType
from kith.runtime import Kith
from kith.schemas import ContactCreate, ContactPatch, InteractionCreate, InteractionPatch
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.settings import Settings
from kith.subjects import Subscriber

START = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)


class FakeClock:
    """The bus's clock, moved on by hand."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Recorder:
    """A subscriber's handler that records what it received and can be told to fail."""

    received: list[Event] = field(default_factory=list)
    calls: int = 0
    fail_with: Callable[[Event], Exception | None] | None = None

    async def __call__(self, kith: Kith, event: Event) -> None:
        self.calls += 1
        if self.fail_with is not None:
            error = self.fail_with(event)
            if error is not None:
                raise error
        self.received.append(event)

    def names(self) -> list[str]:
        return [event.name for event in self.received]

    def subscriber(self, name: str, *events: str, max_attempts: int = 8) -> Subscriber:
        return Subscriber(
            name=name, events=events or ("*",), handler=self, max_attempts=max_attempts
        )


@pytest.fixture
def clock(kith: Kith) -> FakeClock:
    fake = FakeClock()
    kith.bus.clock = fake
    return fake


@pytest.fixture
def quiet_kith(kith: Kith) -> Kith:
    """The test's Kith without the plugins' subscribers, so only the test's own ones count."""
    kith.subscribers = []
    return kith


async def new_contact(kith: Kith, name: str = "Ada Lovelace") -> uuid.UUID:
    return (await ContactService(kith).create(ContactCreate(name=name))).id


async def rename(kith: Kith, contact_id: uuid.UUID, name: str) -> None:
    await ContactService(kith).update(contact_id, ContactPatch(name=name))


# -- publishing ------------------------------------------------------------------------------


async def test_publishing_writes_the_outbox_and_a_drain_delivers(quiet_kith: Kith, clock):
    kith = quiet_kith
    recorder = Recorder()
    kith.bus.subscribe(recorder.subscriber("test.all"))
    contact_id = await new_contact(kith)

    pending = await kith.bus.list_events(state="pending")
    assert [(s.event.name, s.event.contact_id) for s in pending] == [
        ("contact.created", contact_id)
    ]
    assert recorder.received == []

    assert await kith.bus.drain() == 1
    [event] = recorder.received
    assert event.name == "contact.created"
    assert event.id == pending[0].event.id
    assert event.contact_id == contact_id
    assert event.payload["contact_id"] == str(contact_id)
    assert event.actor == "system"
    assert await kith.bus.list_events(state="pending") == []
    [delivered] = await kith.bus.list_events(state="delivered")
    assert (delivered.state, delivered.delivered, delivered.pending) == ("delivered", 1, 0)
    # Delivered once: another drain finds nothing.
    assert await kith.bus.drain() == 0
    assert len(recorder.received) == 1


async def test_rolled_back_transaction_is_never_delivered(quiet_kith: Kith, clock):
    kith = quiet_kith
    recorder = Recorder()
    kith.bus.subscribe(recorder.subscriber("test.all"))

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with kith.unit_of_work():
            # The service's unit of work joins this one, so its event shares our fate.
            await new_contact(kith, "Rolled Back")
            raise Abort

    assert await kith.bus.list_events() == []
    assert await kith.bus.drain() == 0
    assert recorder.received == []
    assert (await ContactService(kith).list()).items == []


async def test_undeclared_event_names_are_refused_at_publish(quiet_kith: Kith, clock):
    kith = quiet_kith
    with pytest.raises(UnknownEventType, match="kith_register_event_types"):
        async with kith.unit_of_work() as uow:
            uow.publish("made.up", None)
    assert await kith.bus.list_events() == []

    kith.bus.declare(EventType("made.up", "A test event.", ("n",)))
    recorder = Recorder()
    kith.bus.subscribe(recorder.subscriber("test.made", "made.*"))
    async with kith.unit_of_work() as uow:
        uow.publish("made.up", None, n=1)
    await kith.bus.drain()
    assert [(e.name, e.payload) for e in recorder.received] == [("made.up", {"n": 1})]


# -- subscribers and order -------------------------------------------------------------------


async def test_each_subscriber_gets_the_events_its_patterns_match(quiet_kith: Kith, clock):
    kith = quiet_kith
    everything, contacts, logged = Recorder(), Recorder(), Recorder()
    kith.bus.subscribe(everything.subscriber("test.everything", "*"))
    kith.bus.subscribe(contacts.subscriber("test.contacts", "contact.*"))
    kith.bus.subscribe(logged.subscriber("test.logged", "interaction.logged"))

    contact_id = await new_contact(kith)
    await InteractionService(kith).log(contact_id, InteractionCreate(kind="note", summary="hi"))
    await rename(kith, contact_id, "Ada King")
    await kith.bus.drain()

    assert everything.names() == ["contact.created", "interaction.logged", "contact.updated"]
    assert contacts.names() == ["contact.created", "contact.updated"]
    assert logged.names() == ["interaction.logged"]
    # One event, one id, whoever receives it.
    assert everything.received[0].id == contacts.received[0].id


async def test_a_handler_gets_the_kith_that_dispatches(quiet_kith: Kith, clock):
    kith = quiet_kith
    seen: dict[str, tuple[Kith, uuid.UUID | None, bool]] = {}
    loop_thread = threading.get_ident()

    async def async_handler(dispatching: Kith, event: Event) -> None:
        seen["async"] = (dispatching, event.contact_id, threading.get_ident() == loop_thread)

    def sync_handler(dispatching: Kith, event: Event) -> None:
        seen["sync"] = (dispatching, event.contact_id, threading.get_ident() == loop_thread)

    kith.bus.subscribe(Subscriber(name="test.async", events=("*",), handler=async_handler))
    kith.bus.subscribe(Subscriber(name="test.sync", events=("*",), handler=sync_handler))
    contact_id = await new_contact(kith)
    assert await kith.bus.drain() == 2
    assert seen["async"] == (kith, contact_id, True)
    # A sync handler may block, so it runs in a worker thread, with the same Kith.
    assert seen["sync"] == (kith, contact_id, False)


async def test_subscribers_run_in_registration_order_when_draining(quiet_kith: Kith, clock):
    kith = quiet_kith
    calls: list[str] = []

    def handler(tag: str) -> Callable[[Kith, Event], None]:
        def handle(kith: Kith, event: Event) -> None:
            calls.append(tag)

        return handle

    for tag in ("first", "second", "third"):
        kith.bus.subscribe(Subscriber(name=f"test.{tag}", events=("*",), handler=handler(tag)))
    await new_contact(kith)
    await kith.bus.drain()
    assert calls == ["first", "second", "third"]


async def test_events_of_a_contact_arrive_in_order_even_across_retries(quiet_kith: Kith, clock):
    kith = quiet_kith
    first = await new_contact(kith, "First")
    second = await new_contact(kith, "Second")
    failed_once: set[uuid.UUID] = set()

    def fail_first_rename_of_first(event: Event) -> Exception | None:
        # The first rename of contact "first" fails once; later events of that contact must
        # wait for it, while contact "second" is not held up.
        if event.contact_id == first and event.name == "contact.updated" and not failed_once:
            failed_once.add(event.id)
            return RuntimeError("receiver unavailable")
        return None

    recorder = Recorder(fail_with=fail_first_rename_of_first)
    kith.bus.subscribe(recorder.subscriber("test.ordered", "contact.*"))
    for round_ in range(3):
        await rename(kith, first, f"First {round_}")
        await rename(kith, second, f"Second {round_}")
    await kith.bus.drain()

    def names_of(contact_id: uuid.UUID) -> list[str]:
        return [e.name.split(".")[1] for e in recorder.received if e.contact_id == contact_id]

    assert names_of(second) == ["created", "updated", "updated", "updated"]
    assert names_of(first) == ["created"]  # the failed rename holds back the two after it

    clock.advance(3600)
    await kith.bus.drain()
    assert names_of(first) == ["created", "updated", "updated", "updated"]
    # The same order as published, per contact.
    published = {s.event.id: s.event for s in await kith.bus.list_events(limit=100)}
    for contact_id in (first, second):
        got = [e.id for e in recorder.received if e.contact_id == contact_id]
        expected = sorted(i for i, e in published.items() if e.contact_id == contact_id)
        assert got == expected


async def test_later_events_of_a_contact_queue_behind_its_head(quiet_kith: Kith, clock):
    kith = quiet_kith
    kith.bus.subscribe(Recorder().subscriber("test.queue", "contact.*"))
    contact_id = await new_contact(kith)
    await rename(kith, contact_id, "Two")
    await rename(kith, contact_id, "Three")
    await kith.bus.dispatcher.fan_out()
    states = []
    for summary in reversed(await kith.bus.list_events()):
        [delivery] = (await kith.bus.get_event(summary.event.id)).deliveries
        states.append(delivery.state)
    assert states == ["pending", "queued", "queued"]


async def test_a_queue_without_its_head_is_repaired(quiet_kith: Kith, clock):
    """The heartbeat's safety net: should a queue ever lose its head, it gets it back."""
    kith = quiet_kith
    recorder = Recorder()
    kith.bus.subscribe(recorder.subscriber("test.repair", "contact.*"))
    contact_id = await new_contact(kith)
    await rename(kith, contact_id, "Two")
    await kith.bus.dispatcher.fan_out()
    # Break it by hand: the head is marked delivered without promoting the next one.
    await kith.bus.outbox._fetch(
        "UPDATE kith_event_delivery SET state = 'delivered' WHERE state = 'pending'"
    )
    assert await kith.bus.drain() == 0
    assert await kith.bus.outbox.repair_queues(clock.now) == 1
    assert await kith.bus.outbox.repair_queues(clock.now) == 0
    await kith.bus.drain()
    assert recorder.names() == ["contact.updated"]


async def test_an_event_committed_late_still_goes_before_later_ones(quiet_kith: Kith, clock):
    """PostgreSQL may commit an event after a later one (ids are taken at publish time): if
    the later one has not been tried yet, the earlier one still goes first."""
    kith = quiet_kith
    recorder = Recorder()
    subscriber = kith.bus.subscribe(recorder.subscriber("test.late", "contact.*"))
    contact_id = await new_contact(kith)
    await kith.bus.drain()
    early = Event(name="contact.updated", contact_id=contact_id, payload={"n": 1})
    await rename(kith, contact_id, "Later")
    await kith.bus.dispatcher.fan_out()
    async with kith.unit_of_work():
        await kith.bus.write([early])  # the slow transaction commits now
    # Not claimable while an earlier event of the contact waits for fan-out.
    assert await kith.bus.dispatcher.deliver_batch(subscriber) == 0
    await kith.bus.drain()
    assert [e.name for e in recorder.received] == [
        "contact.created",
        "contact.updated",
        "contact.updated",
    ]
    assert recorder.received[1].id == early.id


# -- failures, backoff, dead letters, replay -------------------------------------------------


async def test_failing_subscriber_backs_off_then_is_dead_lettered_while_others_get_it(
    quiet_kith: Kith, clock
):
    kith = quiet_kith
    healthy = Recorder()
    broken = Recorder(fail_with=lambda event: ValueError("receiver said no"))
    kith.bus.subscribe(broken.subscriber("test.broken", max_attempts=4))
    kith.bus.subscribe(healthy.subscriber("test.healthy"))
    await new_contact(kith)
    [summary] = await kith.bus.list_events()
    event_id = summary.event.id
    base = kith.bus.config.backoff_base_s

    async def broken_delivery() -> Any:
        detail = await kith.bus.get_event(event_id)
        return next(d for d in detail.deliveries if d.subscriber == "test.broken")

    await kith.bus.drain()
    assert healthy.names() == ["contact.created"]  # not held up by the broken one
    delays = []
    for attempt in range(1, 4):
        delivery = await broken_delivery()
        assert (delivery.state, delivery.attempts) == ("pending", attempt)
        assert delivery.last_error == "ValueError: receiver said no"
        delay = (delivery.next_attempt_at - clock.now).total_seconds()
        nominal = base * 2 ** (attempt - 1)
        assert nominal / 2 <= delay <= nominal  # exponential, with jitter
        delays.append(delay)
        # Not yet due: nothing happens.
        assert await kith.bus.drain() == 0
        clock.advance(delay)
        assert await kith.bus.drain() == 1

    delivery = await broken_delivery()
    assert (delivery.state, delivery.attempts) == ("dead", 4)
    assert delivery.last_error == "ValueError: receiver said no"
    assert broken.calls == 4
    assert healthy.names() == ["contact.created"]  # delivered exactly once
    [dead] = await kith.bus.list_events(state="dead")
    assert (dead.event.id, dead.state, dead.dead, dead.delivered) == (event_id, "dead", 1, 1)

    clock.advance(10 * 3600)
    assert await kith.bus.drain() == 0  # dead stays dead

    broken.fail_with = None
    assert await kith.bus.replay(event_id) == 1
    await kith.bus.drain()
    assert broken.names() == ["contact.created"]
    assert (await broken_delivery()).state == "delivered"
    assert await kith.bus.list_events(state="dead") == []


async def test_a_dead_letter_does_not_block_later_events_of_its_contact(quiet_kith: Kith, clock):
    kith = quiet_kith
    contact_id = await new_contact(kith)
    recorder = Recorder(
        fail_with=lambda e: RuntimeError("boom") if e.name == "contact.created" else None
    )
    kith.bus.subscribe(recorder.subscriber("test.picky", max_attempts=1))
    await kith.bus.drain()
    await rename(kith, contact_id, "Ada King")
    await kith.bus.drain()
    assert recorder.names() == ["contact.updated"]

    recorder.fail_with = None
    assert await kith.bus.replay() == 1  # every dead delivery
    await kith.bus.drain()
    assert recorder.names() == ["contact.updated", "contact.created"]


async def test_replay_of_unknown_or_not_dead_events(quiet_kith: Kith, clock):
    kith = quiet_kith
    with pytest.raises(NotFound):
        await kith.bus.replay(uuid.uuid4())
    with pytest.raises(NotFound):
        await kith.bus.get_event(uuid.uuid4())
    await new_contact(kith)
    [summary] = await kith.bus.list_events()
    assert await kith.bus.replay(summary.event.id) == 0


async def test_sync_handler_errors_and_timeouts_count_as_failures(quiet_kith: Kith, clock):
    kith = quiet_kith

    def sync_broken(kith: Kith, event: Event) -> None:
        raise KeyError("missing")

    async def too_slow(kith: Kith, event: Event) -> None:
        await asyncio.sleep(30)

    kith.bus.config = type(kith.bus.config)(handler_timeout_s=0.05, lease_s=60)
    kith.bus.subscribe(Subscriber(name="test.sync", events=("*",), handler=sync_broken))
    kith.bus.subscribe(Subscriber(name="test.slow", events=("*",), handler=too_slow))
    await new_contact(kith)
    await kith.bus.drain()
    [summary] = await kith.bus.list_events()
    errors = {
        d.subscriber: d.last_error for d in (await kith.bus.get_event(summary.event.id)).deliveries
    }
    assert errors == {
        "test.sync": "KeyError: 'missing'",
        "test.slow": "TimeoutError: the handler took longer than 0.05s",
    }


# -- crashes and leases ----------------------------------------------------------------------


async def test_a_worker_that_dies_mid_delivery_loses_its_claim_when_the_lease_ends(
    quiet_kith: Kith, clock
):
    kith = quiet_kith
    recorder = Recorder()
    kith.bus.subscribe(recorder.subscriber("test.lease"))
    await new_contact(kith)
    await kith.bus.dispatcher.fan_out()
    # A worker claims the delivery and then vanishes without a word.
    lease = kith.bus.config.lease_s
    claimed = await kith.bus.outbox.claim(
        "test.lease", "ghost", clock.now, clock.now + dt.timedelta(seconds=lease), 10
    )
    assert len(claimed) == 1
    assert await kith.bus.drain() == 0  # still leased
    clock.advance(lease)
    assert await kith.bus.drain() == 1
    assert recorder.names() == ["contact.created"]
    [summary] = await kith.bus.list_events()
    [delivery] = (await kith.bus.get_event(summary.event.id)).deliveries
    assert (delivery.state, delivery.attempts) == ("delivered", 2)


CRASHING_PUBLISHER = textwrap.dedent(
    """
    import asyncio, os, signal
    from kith.bootstrap import open_kith
    from kith.schemas import ContactCreate
    from kith.services.contacts import ContactService

    async def main():
        kith = open_kith()
        assert not kith.settings.dispatch_in_process
        await kith.start()
        created = await ContactService(kith).create(ContactCreate(name="Crash Test"))
        print(created.id, flush=True)
        # Committed, not dispatched: die the hard way, with no cleanup at all.
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


async def test_event_committed_by_a_killed_process_is_delivered_after_restart(
    quiet_kith: Kith, kith_settings: Settings
):
    kith = quiet_kith
    recorder = Recorder()
    kith.bus.subscribe(recorder.subscriber("test.survivor", "contact.created"))
    env = {
        **os.environ,
        "KITH_HOME": str(kith_settings.home),
        "KITH_DATABASE_URL": kith_settings.database_url,
        "KITH_DISPATCH_IN_PROCESS": "false",
        "KITH_LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_PUBLISHER,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == -signal.SIGKILL, err.decode()
    contact_id = uuid.UUID(out.decode().split()[-1])

    # The restarted dispatcher (here: this process's, running in the background) finds it.
    await kith.bus.start()
    try:
        async with asyncio.timeout(30):
            while not recorder.received:
                await asyncio.sleep(0.05)
    finally:
        await kith.bus.stop()
    [event] = recorder.received
    assert (event.name, event.contact_id) == ("contact.created", contact_id)
    await kith.bus.drain()
    assert len(recorder.received) == 1


@pytest.mark.parametrize("scheduler", [True, False])
async def test_scheduled_jobs_run_only_where_the_scheduler_runs(
    kith_settings: Settings, scheduler: bool
) -> None:
    """``kith worker --no-scheduler`` delivers events but leaves time-driven work (reminders,
    rules, tiers) to the processes that schedule."""
    ran: set[str] = set()

    def job(name: str) -> Callable[[], Any]:
        async def run() -> None:
            ran.add(name)

        return run

    kith = open_kith(kith_settings)
    kith.bus.add_job("test.plain", 0.01, job("plain"))
    kith.bus.add_job("test.scheduled", 0.01, job("scheduled"), scheduled=True)
    await kith.start()
    try:
        await kith.bus.start(scheduler=scheduler)
        async with asyncio.timeout(10):
            while "plain" not in ran:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    finally:
        await kith.close()
    assert ran == ({"plain", "scheduled"} if scheduler else {"plain"})


# -- several workers -------------------------------------------------------------------------


async def test_two_workers_never_deliver_a_row_twice(kith_settings: Settings):
    """Two Kith instances, each with its own connections (a pool on PostgreSQL, where claims
    use SKIP LOCKED; a writer connection on SQLite, where the file lock serialises claims),
    race for the same deliveries."""
    events_per_contact, contacts = 6, 40
    handled: dict[tuple[uuid.UUID, str], int] = {}
    in_flight: set[tuple[uuid.UUID, str]] = set()
    overlaps: list[tuple[uuid.UUID, str]] = []
    order: dict[uuid.UUID, list[uuid.UUID]] = {}
    workers: list[Kith] = []

    def make_handler(subscriber: str, worker_number: int) -> Callable[[Kith, Event], Any]:
        async def handle(kith: Kith, event: Event) -> None:
            key = (event.id, subscriber)
            if key in in_flight:
                overlaps.append(key)
            in_flight.add(key)
            await asyncio.sleep(0.001)  # widen the window for a second claim
            handled[key] = handled.get(key, 0) + 1
            if subscriber == "test.a":
                assert event.contact_id is not None
                order.setdefault(event.contact_id, []).append(event.id)
            in_flight.discard(key)

        return handle

    for number in range(2):
        worker = open_kith(kith_settings)
        worker.subscribers = [
            Subscriber(name=name, events=("contact.*",), handler=make_handler(name, number))
            for name in ("test.a", "test.b")
        ]
        worker.bus.config = type(worker.bus.config)(poll_interval_s=0.02, batch_size=10)
        await worker.start()
        workers.append(worker)
    # Piccolo's tables follow the Kith started last; publish through it.
    publisher = workers[-1]
    try:
        for worker in workers:
            await worker.bus.start(scheduler=False)
        ids = [await new_contact(publisher, f"Contact {n}") for n in range(contacts)]
        for round_ in range(events_per_contact - 1):
            await asyncio.gather(*(rename(publisher, c, f"Name {round_}") for c in ids))
        expected = contacts * events_per_contact * 2
        async with asyncio.timeout(120):
            while sum(handled.values()) < expected:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # any duplicate would show up now
    finally:
        for worker in workers:
            await worker.close()
    assert len(handled) == expected
    assert set(handled.values()) == {1}
    assert overlaps == []
    # Per-contact order held across the workers. Which worker claims a row is the
    # scheduler's choice, not a guarantee, so that both took part is not asserted.
    assert all(len(events) == events_per_contact for events in order.values())
    for events in order.values():
        assert events == sorted(events)


# -- due tasks -------------------------------------------------------------------------------


async def test_task_due_is_published_once_per_due_time(quiet_kith: Kith, clock):
    kith = quiet_kith
    recorder = Recorder()
    kith.bus.subscribe(recorder.subscriber("test.due", "task.due"))
    contact_id = await new_contact(kith)
    interactions = InteractionService(kith)
    due = START + dt.timedelta(hours=1)
    task, _ = await interactions.log(
        contact_id, InteractionCreate(kind="task", summary="call back", due_at=due)
    )
    await interactions.log(contact_id, InteractionCreate(kind="note", summary="not a task"))

    assert await kith.bus.publish_due_tasks() == 0  # not due yet
    clock.advance(3600)
    assert await kith.bus.publish_due_tasks() == 1
    assert await kith.bus.publish_due_tasks() == 0
    clock.advance(600)
    assert await kith.bus.publish_due_tasks() == 0
    await kith.bus.drain()
    [event] = recorder.received
    assert event.contact_id == contact_id
    assert event.payload["interaction_id"] == str(task.id)
    assert dt.datetime.fromisoformat(event.payload["due_at"]) == due

    # Moving the due time arms it again; finishing the task disarms it.
    later = clock.now + dt.timedelta(minutes=30)
    await interactions.update(task.id, InteractionPatch(due_at=later))
    assert await kith.bus.publish_due_tasks() == 0
    clock.advance(1800)
    assert await kith.bus.publish_due_tasks() == 1
    await interactions.update(task.id, InteractionPatch(due_at=later + dt.timedelta(hours=1)))
    await interactions.update(task.id, InteractionPatch(done_at=clock.now))
    clock.advance(7200)
    assert await kith.bus.publish_due_tasks() == 0
    await kith.bus.drain()
    assert recorder.names() == ["task.due", "task.due"]


async def test_two_schedulers_publish_a_due_task_once(quiet_kith: Kith, kith_settings, clock):
    kith = quiet_kith
    contact_id = await new_contact(kith)
    interactions = InteractionService(kith)
    for n in range(30):
        await interactions.log(
            contact_id, InteractionCreate(kind="task", summary=f"task {n}", due_at=START)
        )
    other = open_kith(kith_settings)
    other.bus.clock = clock
    await other.start()
    try:
        counts = await asyncio.gather(kith.bus.publish_due_tasks(), other.bus.publish_due_tasks())
    finally:
        await other.close()
        kith.database._bind()  # piccolo's tables followed the other Kith; point them back
    assert sum(counts) == 30
    due_events = await kith.bus.list_events(name="task.due", limit=100)
    assert len({e.event.payload["interaction_id"] for e in due_events}) == 30
    assert len(due_events) == 30


# -- retention -------------------------------------------------------------------------------


async def test_retention_deletes_old_delivered_events_and_keeps_dead_ones(quiet_kith: Kith, clock):
    kith = quiet_kith
    recorder = Recorder(fail_with=lambda e: RuntimeError("no") if e.payload.get("fields") else None)
    kith.bus.subscribe(recorder.subscriber("test.keep", "contact.*", max_attempts=1))
    contact_id = await new_contact(kith, "Old")
    await rename(kith, contact_id, "Old, renamed")  # this one dies
    await kith.bus.drain()
    retention = dt.timedelta(days=kith.bus.config.retention_days)

    clock.now = dt.datetime.now(dt.UTC) + retention - dt.timedelta(days=1)
    assert await kith.bus.prune() == 0  # not old enough yet
    clock.now += dt.timedelta(days=2)
    assert await kith.bus.prune() == 1
    [left] = await kith.bus.list_events()
    assert (left.event.name, left.state) == ("contact.updated", "dead")
    assert await kith.bus.prune() == 0


# -- settings and helpers --------------------------------------------------------------------


def test_backoff_grows_exponentially_within_jitter_and_is_capped():
    import random

    rng = random.Random(7)
    for attempt in range(1, 12):
        nominal = min(100.0, 2.0 * 2 ** (attempt - 1))
        delay = backoff_delay(attempt, 2.0, 100.0, rng)
        assert nominal / 2 <= delay <= nominal
