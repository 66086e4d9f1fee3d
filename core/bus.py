"""The event bus of one Kith: ``kith.bus``.

It is the unit of work's event sink (events go to the outbox inside the publishing transaction;
a commit wakes the dispatcher), it holds the declared event types and this process's
subscribers, and it runs the dispatcher and the scheduler in the background when asked
(``kith serve`` and ``kith worker`` do). Tests call :meth:`EventBus.drain` instead.

    async def notify(kith: Kith, event: Event) -> None:
        # Handlers get the Kith that dispatches along with the event.
        contact = await ContactService(kith).get(event.contact_id)
        ...

    kith.bus.subscribe(Subscriber(name="crm.notify", events=("contact.*",), handler=notify))
    await kith.bus.drain()          # deliver everything due now (tests, scripts)
    await kith.bus.start()          # or keep dispatching in the background until stop()
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

import structlog
from kith.dispatcher import Clock, Dispatcher, EventsConfig, Runner, default_clock
from kith.errors import NotFound
from kith.events import CORE_EVENT_TYPES, Event, EventType
from kith.outbox import EventDetail, EventState, EventSummary, Outbox, SubscriptionInfo
from kith.scheduler import REMINDER_ACTIVITY, Scheduler
from kith.settings import Settings
from kith.storage import Database
from kith.subject_checks import refused_among
from kith.subjects import Subscriber
from kith.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from kith.runtime import Kith

log = structlog.get_logger("kith.events")

HEARTBEAT_S = 60.0
PRUNE_INTERVAL_S = 3600.0


class UnknownEventType(LookupError):
    """An event was published under a name no one declared (a programming error)."""


class Job(NamedTuple):
    """A periodic job added with :meth:`EventBus.add_job`."""

    interval_s: float
    run: Callable[[], Awaitable[object]]
    scheduled: bool


class EventBus:
    """Outbox sink, subscriptions and dispatcher of one Kith installation; ``kith`` is the Kith
    it belongs to, which its subscribers' handlers receive with each event."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        kith: Kith,
        event_types: Iterable[EventType] = CORE_EVENT_TYPES,
        subscribers: Iterable[Subscriber] = (),
        unit_of_work: Callable[[], UnitOfWork] | None = None,
        clock: Clock = default_clock,
    ) -> None:
        self.database = database
        self._runner: Runner | None = None
        self.config = EventsConfig.from_settings(settings)
        self.clock: Clock = clock
        """Where the bus reads the time; tests replace it to skip backoff waits."""
        self._event_types: dict[str, EventType] = {}
        self.event_types = {t.name: t for t in event_types}
        self._subscribers: list[Subscriber] = []
        self._recorded: set[str] = set()
        # Periodic jobs of plugins (name -> interval, job), run alongside the dispatcher.
        self._jobs: dict[str, Job] = {}
        self.subscribers = list(subscribers)
        self.outbox = Outbox(database)
        self.dispatcher = Dispatcher(self, self.outbox, kith)
        self.scheduler = Scheduler(
            database,
            unit_of_work or (lambda: UnitOfWork(database, self)),
            refused=lambda contacts: refused_among(kith, contacts, REMINDER_ACTIVITY),
        )

    # -- event types and subscribers -------------------------------------------------------

    @property
    def event_types(self) -> dict[str, EventType]:
        """Declared event types by name; core's are always there."""
        return self._event_types

    @event_types.setter
    def event_types(self, value: Mapping[str, EventType]) -> None:
        self._event_types = {t.name: t for t in CORE_EVENT_TYPES}
        self._event_types.update(value)

    def declare(self, *event_types: EventType) -> None:
        """Declare event types at run time (plugins use ``kith_register_event_types``)."""
        for event_type in event_types:
            self._event_types[event_type.name] = event_type

    def check_name(self, name: str) -> None:
        """Raise :class:`UnknownEventType` unless ``name`` is declared."""
        if name not in self._event_types:
            raise UnknownEventType(
                f"event {name!r} is not declared; declare it with the "
                "kith_register_event_types hook (or kith.bus.declare(EventType(...)))"
            )

    @property
    def subscribers(self) -> list[Subscriber]:
        """This process's subscribers in registration order: the plugins', then in-process
        ones. Use :meth:`subscribe` to add one, so a running dispatcher picks it up."""
        return self._subscribers

    @subscribers.setter
    def subscribers(self, value: Iterable[Subscriber]) -> None:
        replacement = list(value)
        _check_unique(replacement)
        if self._runner is not None:
            for old in self._subscribers:
                self._runner.remove_subscriber(old.name)
        self._subscribers = replacement
        self._recorded.clear()
        if self._runner is not None:
            for subscriber in replacement:
                self._runner.add_subscriber(subscriber)

    def subscribe(self, subscriber: Subscriber) -> Subscriber:
        """Add an in-process subscriber. It receives every event fanned out from now on
        (events published earlier but not yet fanned out included), also those another
        process fans out, because subscribers are recorded in the database."""
        _check_unique([*self._subscribers, subscriber])
        self._subscribers.append(subscriber)
        if self._runner is not None:
            self._runner.add_subscriber(subscriber)
        return subscriber

    def unsubscribe(self, name: str) -> None:
        """Stop handling ``name`` in this process; its deliveries wait for another process
        that runs it (see :meth:`forget` to drop them)."""
        self._subscribers = [s for s in self._subscribers if s.name != name]
        self._recorded.discard(name)
        if self._runner is not None:
            self._runner.remove_subscriber(name)

    async def forget(self, name: str) -> int:
        """Unsubscribe ``name`` and remove it from the database with its pending deliveries,
        so fan-out stops creating them (an uninstalled plugin); returns how many went."""
        self.unsubscribe(name)
        return await self.outbox.forget_subscriber(name)

    async def record_subscribers(self, *, refresh: bool = False) -> None:
        """Record this process's subscribers in the database (fan-out reads them there)."""
        todo = [s for s in self._subscribers if refresh or s.name not in self._recorded]
        if todo:
            await self.outbox.record_subscribers(todo, self.dispatcher.now())
            self._recorded.update(s.name for s in todo)

    # -- the unit of work's sink -----------------------------------------------------------

    async def write(self, events: Sequence[Event]) -> None:
        """Write events to the outbox, inside the publishing transaction."""
        for event in events:
            self.check_name(event.name)
        await self.outbox.write(events)

    def committed(self, events: Sequence[Event]) -> None:
        if self._runner is not None:
            self._runner.wake()

    # -- dispatching -----------------------------------------------------------------------

    async def drain(self) -> int:
        """Deliver everything that is due now, in this task; returns the attempts made.
        Retries scheduled for later stay pending (move :attr:`clock` on to reach them)."""
        return await self.dispatcher.drain()

    async def publish_due_tasks(self) -> int:
        """Publish ``task.due`` for tasks due now; returns how many."""
        return await self.scheduler.publish_due(self.dispatcher.now())

    async def prune(self) -> int:
        """Delete delivered events older than the retention period; returns how many."""
        if not self.config.retention_days:
            return 0
        before = self.dispatcher.now() - dt.timedelta(days=self.config.retention_days)
        total = 0
        while removed := await self.outbox.prune(before):
            total += removed
        return total

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self, *, scheduler: bool = True) -> None:
        """Dispatch in the background of this process (and run the scheduler and the
        retention of delivered events) until :meth:`stop`."""
        if self._runner is not None:
            return
        await self.record_subscribers(refresh=True)
        periodic: list[tuple[str, float, Callable[[], Awaitable[object]]]] = [
            ("heartbeat", HEARTBEAT_S, self._heartbeat)
        ]
        if scheduler:
            periodic += [
                ("scheduler", self.config.schedule_interval_s, self.publish_due_tasks),
                ("retention", PRUNE_INTERVAL_S, self.prune),
            ]
        periodic += [
            (name, interval, job)
            for name, (interval, job, scheduled) in self._jobs.items()
            if scheduler or not scheduled
        ]
        self._runner = Runner(self.dispatcher, periodic)
        self._runner.start()
        log.info(
            "events.dispatching",
            worker=self.dispatcher.worker,
            subscribers=[s.name for s in self._subscribers],
            scheduler=scheduler,
        )

    def add_job(
        self,
        name: str,
        interval_s: float,
        job: Callable[[], Awaitable[object]],
        *,
        scheduled: bool = False,
    ) -> None:
        """Run ``job`` every ``interval_s`` seconds while the bus dispatches in the background
        (``kith serve``, ``kith worker``), for a plugin's own periodic work (the webhooks
        plugin's retries). Plugins add jobs from ``kith_startup``, which runs before the bus
        starts. A job that raises is logged and runs again at its next turn. A ``scheduled``
        job is time-driven work like publishing due tasks: it runs only where the scheduler
        does (not in ``kith worker --no-scheduler``)."""
        if self._runner is not None:
            raise RuntimeError(f"job {name!r} added after the bus started; add it in kith_startup")
        self._jobs[name] = Job(interval_s, job, scheduled)

    @property
    def jobs(self) -> Mapping[str, Job]:
        """The periodic jobs added so far, by name (what ``kith worker`` will run)."""
        return MappingProxyType(self._jobs)

    async def _heartbeat(self) -> None:
        await self.record_subscribers(refresh=True)
        repaired = await self.outbox.repair_queues(self.dispatcher.now())
        if repaired:
            log.warning("events.queues_repaired", count=repaired)

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop dispatching; attempts under way get ``grace_s`` seconds to finish."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.stop(grace_s)
            log.info("events.stopped", worker=self.dispatcher.worker)

    # -- inspection ------------------------------------------------------------------------

    async def list_events(
        self, state: EventState | None = None, limit: int = 50, name: str | None = None
    ) -> list[EventSummary]:
        """Newest first; ``state`` keeps events with a delivery in that state."""
        return await self.outbox.list_events(state, limit, name)

    async def get_event(self, event_id: uuid.UUID) -> EventDetail:
        detail = await self.outbox.get(event_id)
        if detail is None:
            raise NotFound(f"event {event_id} does not exist")
        return detail

    async def replay(
        self, event_id: uuid.UUID | None = None, *, subscriber: str | None = None
    ) -> int:
        """Make dead deliveries pending again (of one event, or every one); returns how many.
        A replayed delivery goes before the later events of its contact that are still queued."""
        if event_id is not None:
            await self.get_event(event_id)
        replayed = await self.outbox.replay(self.dispatcher.now(), event_id, subscriber)
        if replayed and self._runner is not None:
            self._runner.wake()
        return replayed

    async def subscriptions(self) -> list[SubscriptionInfo]:
        """Every recorded subscriber with its deliveries per state."""
        return await self.outbox.subscriptions()

    async def counts(self) -> dict[str, int]:
        return await self.outbox.counts()


def _check_unique(subscribers: Sequence[Subscriber]) -> None:
    seen: set[str] = set()
    for subscriber in subscribers:
        if subscriber.name in seen:
            raise ValueError(
                f"subscriber {subscriber.name!r} is registered twice; the name identifies its "
                "deliveries, so each subscriber needs its own"
            )
        seen.add(subscriber.name)
