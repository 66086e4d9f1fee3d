"""A service call runs in one transaction; the events it publishes are written in that same
transaction and handed to the dispatcher only after it commits."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Protocol

from kith.actor import SYSTEM, Actor
from kith.events import Event
from kith.logs import get_logger
from kith.storage import Database

_log = get_logger("kith.unit_of_work")


class EventSink(Protocol):
    async def write(self, events: Sequence[Event]) -> None:
        """Store events inside the current transaction (the outbox)."""
        ...

    def committed(self, events: Sequence[Event]) -> None:
        """Called once the transaction that wrote ``events`` has committed."""
        ...


class DiscardingSink:
    """An event sink that keeps nothing, for code paths with no event bus configured."""

    async def write(self, events: Sequence[Event]) -> None:
        return None

    def committed(self, events: Sequence[Event]) -> None:
        return None


_current: contextvars.ContextVar[UnitOfWork | None] = contextvars.ContextVar(
    "kith_unit_of_work", default=None
)


class UnitOfWork:
    """``async with UnitOfWork(db, sink, actor) as uow:`` — nested units join the outer one."""

    def __init__(self, database: Database, sink: EventSink, actor: Actor = SYSTEM) -> None:
        self.database = database
        self.sink = sink
        self.actor = actor
        self.events: list[Event] = []
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self._gathered: dict[str, tuple[list[Any], Callable[[list[Any]], Awaitable[None]]]] = {}
        self._outer: UnitOfWork | None = None
        self._transaction: Any = None
        self._token: contextvars.Token[UnitOfWork | None] | None = None

    async def __aenter__(self) -> UnitOfWork:
        outer = _current.get()
        if outer is not None:
            self._outer = outer
            return outer
        self._transaction = self.database.engine.transaction()
        await self._transaction.__aenter__()
        self._token = _current.set(self)
        return self

    @staticmethod
    def current() -> UnitOfWork | None:
        """The unit of work this task runs in (the outermost one), if any."""
        return _current.get()

    @staticmethod
    def open() -> bool:
        """Whether this task runs inside a unit of work (so on one connection, in its
        transaction)."""
        return _current.get() is not None

    def publish(self, name: str, contact_id: uuid.UUID | None = None, /, **payload: Any) -> Event:
        """Record an event; it reaches the outbox only if this unit of work commits."""
        # Fail at the publishing line, not at commit, when the sink knows the declared names.
        check = getattr(self.sink, "check_name", None)
        if check is not None:
            check(name)
        event = Event(name=name, actor=self.actor.ref, contact_id=contact_id, payload=payload)
        self.events.append(event)
        return event

    def gather(self, key: str, item: Any, flush: Callable[[list[Any]], Awaitable[None]]) -> None:
        """Add ``item`` to the ``key`` collection; ``flush`` (the first one given for the key)
        runs once with all of them, in the transaction, just before it commits: work derived
        from each change of a batch done once for the batch."""
        items, _ = self._gathered.setdefault(key, ([], flush))
        items.append(item)

    async def flush(self, key: str) -> None:
        """Run the ``key`` collection's flush now (for code about to read what it wrote)."""
        gathered = self._gathered.pop(key, None)
        if gathered is not None:
            items, flush = gathered
            await flush(items)

    async def _flush_gathered(self) -> None:
        while self._gathered:
            key = next(iter(self._gathered))
            items, flush = self._gathered.pop(key)
            await flush(items)

    def after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` once this unit of work has committed (never after a rollback), for
        work that cannot run inside a transaction. A failure is logged, not raised: what was
        committed stands."""
        self._after_commit.append(callback)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._outer is not None:
            return
        assert self._token is not None
        try:
            if exc is None:
                # Still the current unit: what a flush does joins this transaction.
                await self._flush_gathered()
        except BaseException as flush_error:
            _current.reset(self._token)
            await self._transaction.__aexit__(
                type(flush_error), flush_error, flush_error.__traceback__
            )
            raise
        _current.reset(self._token)
        try:
            if exc is None and self.events:
                await self.sink.write(self.events)
        except BaseException as write_error:
            await self._transaction.__aexit__(
                type(write_error), write_error, write_error.__traceback__
            )
            raise
        await self._transaction.__aexit__(exc_type, exc, tb)
        if exc is None:
            self.sink.committed(self.events)
            for callback in self._after_commit:
                try:
                    await callback()
                except Exception as error:
                    _log.error(
                        "after-commit step failed",
                        step=getattr(callback, "__qualname__", repr(callback)),
                        error=f"{type(error).__name__}: {error}",
                    )
