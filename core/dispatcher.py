"""The dispatcher: fan-out, claiming, calling subscribers, retries with backoff, dead letters.

Delivery is at least once. A worker claims a subscriber's due deliveries with a lease
(``locked_until``); if it dies, the lease runs out and another worker (or the same one after a
restart) takes them again, which counts as another attempt. A failed attempt is retried after
an exponential backoff with jitter; after the subscriber's ``max_attempts`` the delivery is
dead, with its last error kept, until ``kith events replay`` makes it pending again.

Isolation: every subscriber has its own claim loop, so a slow or failing subscriber only
delays itself. Ordering: see :meth:`kith.outbox.Outbox.claim` (per contact, per subscriber).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import structlog
from kith.events import Event, utcnow
from kith.outbox import Claimed, Outbox
from kith.settings import Settings
from kith.subjects import Subscriber

if TYPE_CHECKING:
    from kith.bus import EventBus
    from kith.runtime import Kith

log = structlog.get_logger("kith.events")

Clock = Callable[[], dt.datetime]


Positive = Annotated[float, msgspec.Meta(gt=0)]


class EventsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Tuning of the event bus: the ``[events]`` table of ``kith.toml``, a section core
    declares like a plugin's (``KITH_EVENTS_<KEY>`` variables override single values)."""

    poll_interval_s: Positive = 1.0
    """How often an idle dispatcher looks for work committed by other processes."""
    batch_size: Annotated[int, msgspec.Meta(gt=0)] = 50
    """Deliveries one subscriber claims (and runs concurrently) at a time."""
    handler_timeout_s: Positive = 60.0
    """An attempt that takes longer fails with a timeout."""
    lease_s: Positive = 300.0
    """How long a claim lasts; must exceed the handler timeout so a live worker keeps it."""
    backoff_base_s: Positive = 5.0
    """Delay before the first retry; it doubles with each attempt (with jitter)."""
    backoff_cap_s: Positive = 3600.0
    """Longest delay between two attempts."""
    schedule_interval_s: Positive = 15.0
    """How often the scheduler looks for tasks that became due."""
    retention_days: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    """Delivered events older than this are deleted by the worker (0 keeps them)."""

    def __post_init__(self) -> None:
        if self.lease_s <= self.handler_timeout_s:
            raise ValueError(
                f"lease_s: must be longer than handler_timeout_s ({self.handler_timeout_s:g}), "
                "or a slow handler's delivery is run twice"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> EventsConfig:
        """``[events]`` of ``kith.toml``; a bad value is a :class:`SettingsError`."""
        return settings.parsed(SECTION, cls)


SECTION = "events"


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, capped,
    with "equal jitter" (half fixed, half random) so retries of many events spread out but never
    come sooner than half the nominal delay."""
    nominal = min(cap_s, base_s * 2 ** min(attempt - 1, 62))
    return nominal / 2 + rng.uniform(0, nominal / 2)


def describe_error(exc: BaseException) -> str:
    """The error as stored with the delivery: type and message, without a traceback."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _is_async(handler: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def worker_name() -> str:
    """Identifies this dispatcher in ``locked_by``: host, process and a random suffix."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


class Dispatcher:
    """Moves events from the outbox to the subscribers of one process; each handler gets
    ``kith``, the Kith this dispatcher's bus belongs to, with the event."""

    def __init__(self, bus: EventBus, outbox: Outbox, kith: Kith) -> None:
        self.bus = bus
        self.outbox = outbox
        self.kith = kith
        self.worker = worker_name()
        self.rng = random.Random()

    @property
    def config(self) -> EventsConfig:
        return self.bus.config

    def now(self) -> dt.datetime:
        moment = self.bus.clock()
        if moment.tzinfo is None:
            raise ValueError("the event bus clock must return timezone-aware times")
        return moment

    async def fan_out(self) -> int:
        """Fan out every event waiting; returns how many."""
        await self.bus.record_subscribers()
        total = 0
        while taken := await self.outbox.fan_out(self.now(), self.config.batch_size):
            total += taken
        return total

    async def deliver_batch(self, subscriber: Subscriber) -> int:
        """Claim and run one batch of ``subscriber``'s due deliveries; returns how many."""
        now = self.now()
        claimed = await self.outbox.claim(
            subscriber.name,
            self.worker,
            now,
            now + dt.timedelta(seconds=self.config.lease_s),
            self.config.batch_size,
        )
        if not claimed:
            return 0
        try:
            outcomes = await asyncio.gather(*(self._attempt(subscriber, item) for item in claimed))
        except asyncio.CancelledError:
            # Shutting down past the grace period: hand the claims back so they are retried
            # at once by the next worker instead of after the lease, without using an attempt.
            await self.outbox.release([item.delivery_id for item in claimed], self.worker)
            raise
        done = [
            item.delivery_id for item, error in zip(claimed, outcomes, strict=True) if not error
        ]
        finished_at = self.now()
        await self.outbox.mark_delivered(done, self.worker, finished_at)
        for item, error in zip(claimed, outcomes, strict=True):
            if error is not None:
                await self._record_failure(subscriber, item, error, finished_at)
        return len(claimed)

    async def _attempt(self, subscriber: Subscriber, item: Claimed) -> str | None:
        """Run the handler once; the error text, or None on success."""
        if item.attempt > subscriber.max_attempts:
            # Claimed again after its last attempt's lease ran out: that worker died mid-way.
            return "the worker running the last attempt stopped before it finished"
        handler = subscriber.handler
        timeout = self.config.handler_timeout_s
        try:
            if _is_async(handler):
                await asyncio.wait_for(handler(self.kith, item.event), timeout)  # type: ignore[arg-type]
            else:
                # Sync handlers may block (HTTP clients, files); keep them off the event loop.
                result = await asyncio.wait_for(
                    asyncio.to_thread(handler, self.kith, item.event), timeout
                )
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, timeout)
        except TimeoutError:
            return f"TimeoutError: the handler took longer than {timeout:g}s"
        except Exception as exc:
            return describe_error(exc)
        return None

    async def _record_failure(
        self, subscriber: Subscriber, item: Claimed, error: str, now: dt.datetime
    ) -> None:
        fields_ = {
            "event_id": str(item.event.id),
            "event_name": item.event.name,
            "subscriber": subscriber.name,
            "attempt": item.attempt,
            "error": error,
        }
        if item.attempt >= subscriber.max_attempts:
            await self.outbox.mark_failed(item.delivery_id, self.worker, now, error, None)
            log.error("event.dead_lettered", **fields_)
            return
        delay = backoff_delay(
            item.attempt, self.config.backoff_base_s, self.config.backoff_cap_s, self.rng
        )
        retry_at = now + dt.timedelta(seconds=delay)
        await self.outbox.mark_failed(item.delivery_id, self.worker, now, error, retry_at)
        log.warning("event.delivery_failed", retry_in_s=round(delay, 1), **fields_)

    async def drain(self, max_rounds: int = 10_000) -> int:
        """Fan out and deliver everything due now, subscriber by subscriber in registration
        order, until nothing is left (retries due later stay); returns the attempts made."""
        attempts = 0
        for _ in range(max_rounds):
            progress = await self.fan_out()
            for subscriber in list(self.bus.subscribers):
                while done := await self.deliver_batch(subscriber):
                    attempts += done
                    progress += done
            if not progress:
                return attempts
        raise RuntimeError(f"events kept coming after {max_rounds} rounds (a publishing loop?)")


class Runner:
    """The dispatcher (and optionally other periodic jobs) running in the background of a
    process until :meth:`stop`: a fan-out loop plus one claim loop per subscriber."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        periodic: Sequence[tuple[str, float, Callable[[], Awaitable[object]]]] = (),
    ) -> None:
        self.dispatcher = dispatcher
        self.periodic = list(periodic)
        self._stopping = asyncio.Event()
        self._fan_out_wake = asyncio.Event()
        self._wakes: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.loop = asyncio.get_running_loop()

    @property
    def config(self) -> EventsConfig:
        return self.dispatcher.config

    def start(self) -> None:
        self._spawn("fan-out", self._fan_out_loop())
        for subscriber in list(self.dispatcher.bus.subscribers):
            self.add_subscriber(subscriber)
        for name, interval, job in self.periodic:
            self._spawn(f"job:{name}", self._periodic_loop(name, interval, job))

    def _spawn(self, key: str, coroutine: Awaitable[None]) -> None:
        self._tasks[key] = asyncio.ensure_future(coroutine)

    def add_subscriber(self, subscriber: Subscriber) -> None:
        if subscriber.name in self._wakes or self._stopping.is_set():
            return
        self._wakes[subscriber.name] = asyncio.Event()
        self._spawn(f"subscriber:{subscriber.name}", self._subscriber_loop(subscriber))
        self._fan_out_wake.set()

    def remove_subscriber(self, name: str) -> None:
        self._wakes.pop(name, None)
        task = self._tasks.pop(f"subscriber:{name}", None)
        if task is not None:
            task.cancel()

    def wake(self) -> None:
        """Something was committed: fan it out now rather than at the next poll."""
        if asyncio.get_running_loop() is self.loop:
            self._fan_out_wake.set()
        else:
            self.loop.call_soon_threadsafe(self._fan_out_wake.set)

    async def _sleep(self, wake: asyncio.Event, seconds: float) -> None:
        """Wait until woken, stopping, or ``seconds`` pass."""
        stop = asyncio.ensure_future(self._stopping.wait())
        woken = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({stop, woken}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            woken.cancel()
        wake.clear()

    async def _fan_out_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                taken = await self.dispatcher.fan_out()
                failures = 0
            except Exception as exc:
                failures += 1
                log.error("event.fan_out_failed", error=describe_error(exc))
                await self._sleep(
                    asyncio.Event(), min(60.0, self.config.poll_interval_s * 2**failures)
                )
                continue
            if taken:
                for wake in self._wakes.values():
                    wake.set()
            else:
                await self._sleep(self._fan_out_wake, self.config.poll_interval_s)

    async def _subscriber_loop(self, subscriber: Subscriber) -> None:
        wake = self._wakes[subscriber.name]
        failures = 0
        while not self._stopping.is_set():
            try:
                done = await self.dispatcher.deliver_batch(subscriber)
                failures = 0
            except Exception as exc:
                # The database, not the handler, failed (handler errors are caught inside).
                failures += 1
                log.error(
                    "event.dispatch_failed", subscriber=subscriber.name, error=describe_error(exc)
                )
                await self._sleep(
                    asyncio.Event(), min(60.0, self.config.poll_interval_s * 2**failures)
                )
                continue
            if not done:
                await self._sleep(wake, self.config.poll_interval_s)

    async def _periodic_loop(
        self, name: str, interval: float, job: Callable[[], Awaitable[object]]
    ) -> None:
        while not self._stopping.is_set():
            try:
                await job()
            except Exception as exc:
                log.error("worker.job_failed", job=name, error=describe_error(exc))
            await self._sleep(asyncio.Event(), interval)

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop claiming; let running attempts finish for up to ``grace_s`` seconds, then
        cancel them (their leases run out and another worker retries them)."""
        self._stopping.set()
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, still_running = await asyncio.wait(tasks, timeout=grace_s)
        for task in still_running:
            task.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)
        self._tasks.clear()


def default_clock() -> dt.datetime:
    return utcnow()


__all__ = [
    "Clock",
    "Dispatcher",
    "Event",
    "EventsConfig",
    "Runner",
    "backoff_delay",
    "default_clock",
]
