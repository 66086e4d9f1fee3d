"""The transactional outbox: every SQL statement of the event bus, for SQLite and PostgreSQL.

Tables (see :mod:`kith.tables`): ``kith_event`` holds each published event, written in the
transaction of the change; ``kith_event_delivery`` holds one row per event and subscriber with
its state, attempts and lease; ``kith_event_subscriber`` records every subscriber a dispatching
process has declared, so fan-out creates deliveries for subscribers whose process is down.

Fan-out happens in the dispatcher, not at publish time: publishing costs one insert, and the
set of subscribers is the one recorded in the database, not whatever the publishing process
happened to load (a CLI command, a crashed server or a worker may each know different ones).

Per-contact order is kept by the database itself: of one subscriber's deliveries for one
contact, at most one is ``pending`` (the head: being tried or waiting for its retry; a unique
partial index enforces it); the later ones are ``queued`` behind it. When the head is delivered
or dead-lettered, the next queued one is promoted in the same transaction. So claiming is a
plain scan of pending rows, however long one contact's queue grows, and a crash can never leave
a queue without its head. Deliveries of events without a contact are pending at once.

Every time comparison takes "now" from the caller, so one injectable clock drives leases,
backoff and due tasks (tests move time forward instead of sleeping).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec
from kith.events import Event
from kith.ids import new_id
from kith.storage import Database
from kith.storage.prepared import Prepared
from kith.subjects import Subscriber
from kith.tables import OutboxEvent
from piccolo.query import Insert
from piccolo.querystring import QueryString

DeliveryState = Literal["pending", "queued", "delivered", "dead"]
EventState = Literal["pending", "delivered", "dead"]
DELIVERY_STATES: tuple[DeliveryState, ...] = ("pending", "queued", "delivered", "dead")

# Rows per multi-row INSERT: well under SQLite's limit of bound parameters.
_INSERT_CHUNK = 400
_ERROR_LIMIT = 2000


# Every write that publishes runs this: built once per number of events (usually one).
# piccolo's ``Insert``: without ``RETURNING id``, whose rows nobody reads.
_INSERT_EVENTS = Prepared(
    lambda id, name, occurred_at, actor, contact_id, payload: Insert(
        OutboxEvent,
        *(
            OutboxEvent(
                id=id[i],
                name=name[i],
                occurred_at=occurred_at[i],
                actor=actor[i],
                contact_id=contact_id[i],
                payload=payload[i],
            )
            for i in range(len(id))
        ),
    )
)


class Claimed(msgspec.Struct, frozen=True):
    """A delivery this worker holds a lease on, with the event to hand to the subscriber."""

    delivery_id: uuid.UUID
    attempt: int
    event: Event


class DeliveryInfo(msgspec.Struct, kw_only=True):
    """One subscriber's view of one event, for ``kith events show``."""

    subscriber: str
    state: DeliveryState
    attempts: int
    next_attempt_at: dt.datetime | None
    locked_until: dt.datetime | None
    locked_by: str | None
    last_error: str | None
    delivered_at: dt.datetime | None
    updated_at: dt.datetime | None


class EventSummary(msgspec.Struct, kw_only=True):
    """An event with the count of its deliveries in each state (``pending`` counts the queued
    ones too).

    ``state`` is ``dead`` when any delivery is dead, ``pending`` while it waits for fan-out or
    any delivery is pending or queued, ``delivered`` otherwise (also when no subscriber wanted
    it)."""

    event: Event
    state: EventState
    fanned_out_at: dt.datetime | None
    pending: int = 0
    delivered: int = 0
    dead: int = 0


class EventDetail(msgspec.Struct, kw_only=True):
    summary: EventSummary
    deliveries: list[DeliveryInfo]


class SubscriptionInfo(msgspec.Struct, kw_only=True):
    """A recorded subscriber and how many deliveries it has in each state."""

    name: str
    events: list[str]
    max_attempts: int
    registered_at: dt.datetime
    last_seen_at: dt.datetime
    pending: int = 0
    queued: int = 0
    delivered: int = 0
    dead: int = 0


def matches(patterns: Iterable[str], name: str) -> bool:
    """Whether an event name matches any of ``patterns`` (``contact.*``, ``*`` or a name)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def as_uuid(value: Any) -> uuid.UUID:
    # asyncpg returns its own UUID type and SQLite may return text; events carry plain UUIDs.
    if type(value) is uuid.UUID:
        return value
    return uuid.UUID(str(value))


def as_opt_uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else as_uuid(value)


def as_time(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _queues(rows: Iterable[dict[str, Any]]) -> list[tuple[str, Any]]:
    """The (subscriber, contact) queues of delivery rows, leaving out contact-less ones."""
    return [(row["subscriber"], row["contact_id"]) for row in rows if row["contact_id"] is not None]


def _placeholders(count: int) -> str:
    return ", ".join(["{}"] * count)


def id_floor(moment: dt.datetime) -> uuid.UUID:
    """The smallest UUIDv7 of ``moment``'s millisecond: event ids before it are older."""
    return uuid.UUID(int=int(moment.timestamp() * 1000) << 80)


class Outbox:
    """The outbox's SQL. Methods that write take part in the caller's transaction, if any."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.postgres = database.kind == "postgresql"
        self._decoder = msgspec.json.Decoder(dict[str, Any])
        self._encoder = msgspec.json.Encoder()

    async def _fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        rows = await self.database.engine.run_querystring(QueryString(sql, *args))
        if self.postgres:
            return [dict(row) for row in rows]
        return list(rows or [])

    # -- publishing ------------------------------------------------------------------------

    async def write(self, events: Sequence[Event]) -> None:
        """Insert events (inside the publishing transaction), one statement per chunk, with
        the transaction's other deferred statements just before it commits."""
        for start in range(0, len(events), _INSERT_CHUNK):
            chunk = events[start : start + _INSERT_CHUNK]
            await _INSERT_EVENTS.defer_on(
                self.database.engine,
                id=[event.id for event in chunk],
                name=[event.name for event in chunk],
                occurred_at=[event.occurred_at for event in chunk],
                actor=[event.actor for event in chunk],
                contact_id=[event.contact_id for event in chunk],
                payload=[self._encoder.encode(event.payload).decode() for event in chunk],
            )

    def _event(self, row: dict[str, Any]) -> Event:
        return Event(
            name=row["name"],
            id=as_uuid(row["id"]),
            occurred_at=as_time(row["occurred_at"]) or dt.datetime.now(dt.UTC),
            actor=row["actor"],
            contact_id=as_opt_uuid(row["contact_id"]),
            payload=self._decoder.decode(row["payload"]),
        )

    # -- subscribers -----------------------------------------------------------------------

    async def record_subscribers(self, subscribers: Sequence[Subscriber], now: dt.datetime) -> None:
        """Record (or refresh) subscribers so fan-out creates deliveries for them."""
        for subscriber in subscribers:
            await self._fetch(
                "INSERT INTO kith_event_subscriber "
                "(id, name, events, max_attempts, registered_at, last_seen_at) "
                "VALUES ({}, {}, {}, {}, {}, {}) ON CONFLICT (name) DO UPDATE SET "
                "events = excluded.events, max_attempts = excluded.max_attempts, "
                "last_seen_at = excluded.last_seen_at",
                new_id(),
                subscriber.name,
                self._encoder.encode(list(subscriber.events)).decode(),
                subscriber.max_attempts,
                now,
                now,
            )

    async def forget_subscriber(self, name: str) -> int:
        """Remove a recorded subscriber and its pending deliveries; returns how many went."""
        async with self.database.engine.transaction():
            rows = await self._fetch(
                "DELETE FROM kith_event_delivery WHERE subscriber = {} "
                "AND state IN ('pending', 'queued') RETURNING id",
                name,
            )
            await self._fetch("DELETE FROM kith_event_subscriber WHERE name = {}", name)
        return len(rows)

    async def _recorded_patterns(self) -> list[tuple[str, list[str]]]:
        rows = await self._fetch("SELECT name, events FROM kith_event_subscriber ORDER BY name")
        return [(row["name"], msgspec.json.decode(row["events"])) for row in rows]

    async def subscriptions(self) -> list[SubscriptionInfo]:
        rows = await self._fetch(
            "SELECT name, events, max_attempts, registered_at, last_seen_at "
            "FROM kith_event_subscriber ORDER BY name"
        )
        counts = await self._fetch(
            "SELECT subscriber, state, COUNT(*) AS n FROM kith_event_delivery "
            "GROUP BY subscriber, state"
        )
        by_name: dict[str, dict[str, int]] = {}
        for count in counts:
            by_name.setdefault(count["subscriber"], {})[count["state"]] = int(count["n"])
        return [
            SubscriptionInfo(
                name=row["name"],
                events=msgspec.json.decode(row["events"]),
                max_attempts=int(row["max_attempts"]),
                registered_at=as_time(row["registered_at"]),  # type: ignore[arg-type]
                last_seen_at=as_time(row["last_seen_at"]),  # type: ignore[arg-type]
                **by_name.get(row["name"], {}),
            )
            for row in rows
        ]

    # -- fan-out ---------------------------------------------------------------------------

    def _in(self, column: str, values: Sequence[Any], pg_type: str) -> tuple[str, list[Any]]:
        """``column`` is one of ``values``: one array parameter on PostgreSQL (the statement
        text stays the same, so asyncpg's prepared statement is reused), a list on SQLite."""
        if self.postgres:
            return column + " = ANY({}::" + pg_type + "[])", [list(values)]
        return column + " IN (" + _placeholders(len(values)) + ")", list(values)

    async def fan_out(self, now: dt.datetime, limit: int) -> int:
        """Create the deliveries of up to ``limit`` of the oldest events not fanned out yet, for
        every recorded subscriber whose patterns match; returns how many events it took.

        On PostgreSQL concurrent dispatchers take disjoint batches (SKIP LOCKED); on SQLite the
        write transaction serialises them."""
        lock = " FOR UPDATE SKIP LOCKED" if self.postgres else ""
        async with self.database.engine.transaction():
            events = await self._fetch(
                "SELECT id, name, contact_id FROM kith_event WHERE fanned_out_at IS NULL "
                f"ORDER BY id LIMIT {{}}{lock}",
                limit,
            )
            if not events:
                return 0
            patterns = await self._recorded_patterns()
            rows: list[list[Any]] = []
            earliest: dict[tuple[str, Any], Any] = {}
            for event in events:
                # Events of a contact queue up behind each other; the others need no order.
                contact_id = event["contact_id"]
                state = "pending" if contact_id is None else "queued"
                for subscriber, wanted in patterns:
                    if matches(wanted, event["name"]):
                        rows.append(
                            [new_id(), event["id"], subscriber, contact_id, state, now, now]
                        )
                        if contact_id is not None:
                            earliest.setdefault((subscriber, contact_id), event["id"])
            for start in range(0, len(rows), _INSERT_CHUNK):
                chunk = rows[start : start + _INSERT_CHUNK]
                values = ", ".join(["({}, {}, {}, {}, {}, 0, {}, {})"] * len(chunk))
                await self._fetch(
                    "INSERT INTO kith_event_delivery (id, event, subscriber, contact_id, state, "
                    f"attempts, next_attempt_at, updated_at) VALUES {values} "
                    "ON CONFLICT (event, subscriber) DO NOTHING",
                    *[value for row in chunk for value in row],
                )
            if earliest:
                await self._lock_queues(earliest)
                await self._step_back_heads(earliest)
                await self._promote(earliest, now, locked=True)
            condition, args = self._in("id", [event["id"] for event in events], "uuid")
            await self._fetch(
                "UPDATE kith_event SET fanned_out_at = {} WHERE " + condition, now, *args
            )
        return len(events)

    async def _heads(self, queues: Iterable[tuple[str, Any]]) -> dict[tuple[str, Any], Any]:
        """The pending head of each queue that has one, as rows."""
        queues = list(queues)
        subscribers = sorted({subscriber for subscriber, _ in queues})
        by_subscriber, args1 = self._in("subscriber", subscribers, "text")
        by_contact, args2 = self._in("contact_id", sorted({c for _, c in queues}, key=str), "uuid")
        rows = await self._fetch(
            "SELECT id, subscriber, contact_id, event, attempts, locked_until "
            f"FROM kith_event_delivery WHERE state = 'pending' AND {by_subscriber} "
            f"AND {by_contact}",
            *args1,
            *args2,
        )
        wanted = set(queues)
        heads = {}
        for row in rows:
            key = (row["subscriber"], row["contact_id"])
            if key in wanted:
                heads[key] = row
        return heads

    async def _step_back_heads(self, earliest: dict[tuple[str, Any], Any]) -> None:
        """An event committed after a later one of its contact was fanned out (ids are taken
        at publish time; PostgreSQL commits in any order) must still go first: a head that has
        not been tried yet steps back into the queue, so promotion picks the earliest."""
        heads = await self._heads(earliest)
        later = [
            head["id"]
            for key, head in heads.items()
            if head["attempts"] == 0
            and head["locked_until"] is None
            and as_uuid(head["event"]) > as_uuid(earliest[key])
        ]
        if later:
            condition, args = self._in("id", later, "uuid")
            await self._fetch(
                "UPDATE kith_event_delivery SET state = 'queued' WHERE state = 'pending' "
                "AND attempts = 0 AND locked_until IS NULL AND " + condition,
                *args,
            )

    # -- delivery --------------------------------------------------------------------------

    async def claim(
        self,
        subscriber: str,
        worker: str,
        now: dt.datetime,
        lease_until: dt.datetime,
        limit: int,
    ) -> list[Claimed]:
        """Lease up to ``limit`` pending deliveries of ``subscriber`` that are due, counting
        the attempt. One statement, so the claim is atomic; PostgreSQL workers skip the rows
        another worker is claiming (SKIP LOCKED), SQLite's write lock serialises claims.

        Queued deliveries are never claimed (their contact's head is pending), and neither is
        a head while an earlier event of its contact has not been fanned out yet (a publisher
        that committed late on PostgreSQL)."""
        lock = " FOR UPDATE SKIP LOCKED" if self.postgres else ""
        rows = await self._fetch(
            "UPDATE kith_event_delivery SET attempts = attempts + 1, locked_until = {}, "
            "locked_by = {}, updated_at = {} WHERE id IN ("
            " SELECT d.id FROM kith_event_delivery d"
            " WHERE d.subscriber = {} AND d.state = 'pending' AND d.next_attempt_at <= {}"
            " AND (d.locked_until IS NULL OR d.locked_until <= {})"
            " AND (d.contact_id IS NULL OR NOT EXISTS (SELECT 1 FROM kith_event e"
            "  WHERE e.contact_id = d.contact_id AND e.fanned_out_at IS NULL AND e.id < d.event))"
            f" ORDER BY d.event LIMIT {{}}{lock}) "
            "RETURNING id, event, attempts",
            lease_until,
            worker,
            now,
            subscriber,
            now,
            now,
            limit,
        )
        if not rows:
            return []
        condition, args = self._in("id", [row["event"] for row in rows], "uuid")
        events = {
            as_uuid(row["id"]): self._event(row)
            for row in await self._fetch(
                "SELECT id, name, occurred_at, actor, contact_id, payload FROM kith_event "
                "WHERE " + condition,
                *args,
            )
        }
        claimed = [
            Claimed(as_uuid(row["id"]), int(row["attempts"]), events[as_uuid(row["event"])])
            for row in rows
        ]
        # RETURNING has no defined order; handing them out in event order keeps logs readable.
        claimed.sort(key=lambda item: item.event.id)
        return claimed

    async def mark_delivered(
        self, delivery_ids: Sequence[uuid.UUID], worker: str, now: dt.datetime
    ) -> None:
        if not delivery_ids:
            return
        condition, args = self._in("id", delivery_ids, "uuid")
        async with self.database.engine.transaction():
            done = await self._fetch(
                "UPDATE kith_event_delivery SET state = 'delivered', delivered_at = {}, "
                "locked_until = NULL, locked_by = NULL, updated_at = {} "
                "WHERE locked_by = {} AND " + condition + " RETURNING subscriber, contact_id",
                now,
                now,
                worker,
                *args,
            )
            await self._promote(_queues(done), now)

    async def mark_failed(
        self,
        delivery_id: uuid.UUID,
        worker: str,
        now: dt.datetime,
        error: str,
        retry_at: dt.datetime | None,
    ) -> None:
        """Record a failed attempt: retry at ``retry_at`` (it stays its contact's head), or
        dead-letter it when None (the next queued delivery of its contact moves up)."""
        async with self.database.engine.transaction():
            updated = await self._fetch(
                "UPDATE kith_event_delivery SET state = {}, next_attempt_at = {}, "
                "last_error = {}, locked_until = NULL, locked_by = NULL, updated_at = {} "
                "WHERE id = {} AND locked_by = {} RETURNING subscriber, contact_id",
                "pending" if retry_at is not None else "dead",
                retry_at or now,
                error[:_ERROR_LIMIT],
                now,
                delivery_id,
                worker,
            )
            if retry_at is None:
                await self._promote(_queues(updated), now)

    async def _lock_queues(self, queues: Iterable[tuple[str, Any]]) -> None:
        """PostgreSQL: lock these queues (subscriber, contact) until the transaction ends.

        Every transaction that changes whether a queue has a head, or adds to it, holds the
        queue's lock from before it looks for a head until it commits. So of two such
        transactions the later one sees the earlier one's rows; without it, a fan-out adding
        to a queue and a delivery finishing its head could each see the other's rows missing
        and both leave the queue headless. SQLite's single writer serialises them anyway."""
        await self.database.lock(f"{s}\x00{c}" for s, c in queues)

    async def _promote(
        self, queues: Iterable[tuple[str, Any]], now: dt.datetime, *, locked: bool = False
    ) -> None:
        """Give each of these queues (subscriber, contact) that has no pending head its
        earliest queued delivery as head. Runs in the caller's transaction.

        Should two heads ever be made for one queue anyway, the unique index refuses the
        second, whose transaction fails and is retried, so order is never broken."""
        queues = sorted(set(queues), key=str)
        if not queues:
            return
        if not locked:
            await self._lock_queues(queues)
        if self.postgres:
            await self._fetch(
                # ARRAY(...) is computed once, then the rows are found by primary key.
                "UPDATE kith_event_delivery SET state = 'pending', next_attempt_at = {}, "
                "updated_at = {} WHERE id = ANY(ARRAY(SELECT (SELECT q.id FROM"
                " kith_event_delivery q WHERE q.subscriber = k.s AND q.contact_id = k.c"
                " AND q.state = 'queued' ORDER BY q.event LIMIT 1)"
                " FROM unnest({}::text[], {}::uuid[]) AS k(s, c)"
                " WHERE NOT EXISTS (SELECT 1 FROM kith_event_delivery p WHERE p.subscriber = k.s"
                " AND p.contact_id = k.c AND p.state = 'pending')))",
                now,
                now,
                [s for s, _ in queues],
                [c for _, c in queues],
            )
            return
        for start in range(0, len(queues), _INSERT_CHUNK):
            chunk = queues[start : start + _INSERT_CHUNK]
            firsts = ", ".join(
                [
                    "(SELECT q.id FROM kith_event_delivery q WHERE q.subscriber = {}"
                    " AND q.contact_id = {} AND q.state = 'queued' ORDER BY q.event LIMIT 1)"
                ]
                * len(chunk)
            )
            await self._fetch(
                "UPDATE kith_event_delivery SET state = 'pending', next_attempt_at = {}, "
                f"updated_at = {{}} WHERE id IN ({firsts}) AND NOT EXISTS (SELECT 1 FROM"
                " kith_event_delivery p WHERE p.subscriber = kith_event_delivery.subscriber"
                " AND p.contact_id = kith_event_delivery.contact_id AND p.state = 'pending')",
                now,
                now,
                *[value for queue in chunk for value in queue],
            )

    async def repair_queues(self, now: dt.datetime) -> int:
        """Give every queue that has queued deliveries but no head its head back; returns
        how many. A safety net run by the heartbeat: promotion in the transactions above
        should never leave a queue headless."""
        async with self.database.engine.transaction():
            rows = await self._fetch(
                "SELECT DISTINCT q.subscriber, q.contact_id FROM kith_event_delivery q "
                "WHERE q.state = 'queued' AND NOT EXISTS (SELECT 1 FROM kith_event_delivery p "
                "WHERE p.subscriber = q.subscriber AND p.contact_id = q.contact_id "
                "AND p.state = 'pending')"
            )
            if not rows:
                return 0
            queues = _queues(rows)
            await self._promote(queues, now)
        return len(queues)

    async def release(self, delivery_ids: Sequence[uuid.UUID], worker: str) -> None:
        """Give leased deliveries back untried (shutting down): the attempt does not count."""
        if not delivery_ids:
            return
        condition, args = self._in("id", delivery_ids, "uuid")
        await self._fetch(
            "UPDATE kith_event_delivery SET attempts = attempts - 1, locked_until = NULL, "
            "locked_by = NULL WHERE locked_by = {} AND state = 'pending' AND " + condition,
            worker,
            *args,
        )

    # -- inspection and replay -------------------------------------------------------------

    async def list_events(
        self, state: EventState | None = None, limit: int = 50, name: str | None = None
    ) -> list[EventSummary]:
        """Newest events first, optionally only those with a delivery in ``state``."""
        where: list[str] = []
        args: list[Any] = []
        if state == "pending":
            where.append(
                "id IN (SELECT id FROM kith_event WHERE fanned_out_at IS NULL "
                "UNION SELECT event FROM kith_event_delivery WHERE state = 'pending' "
                "UNION SELECT event FROM kith_event_delivery WHERE state = 'queued')"
            )
        elif state == "dead":
            where.append("id IN (SELECT event FROM kith_event_delivery WHERE state = 'dead')")
        elif state == "delivered":
            where.append(
                "fanned_out_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM kith_event_delivery d "
                "WHERE d.event = kith_event.id AND d.state <> 'delivered')"
            )
        if name is not None:
            where.append("name = {}")
            args.append(name)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = await self._fetch(
            "SELECT id, name, occurred_at, actor, contact_id, payload, fanned_out_at "
            f"FROM kith_event {clause}ORDER BY id DESC LIMIT {{}}",
            *args,
            limit,
        )
        return await self._summaries(rows)

    async def _summaries(self, rows: list[dict[str, Any]]) -> list[EventSummary]:
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        counts: dict[uuid.UUID, dict[str, int]] = {}
        condition, args = self._in("event", ids, "uuid")
        for count in await self._fetch(
            "SELECT event, state, COUNT(*) AS n FROM kith_event_delivery "
            "WHERE " + condition + " GROUP BY event, state",
            *args,
        ):
            counts.setdefault(as_uuid(count["event"]), {})[count["state"]] = int(count["n"])
        summaries = []
        for row in rows:
            event = self._event(row)
            by_state = counts.get(event.id, {})
            fanned_out_at = as_time(row["fanned_out_at"])
            state: EventState = "delivered"
            if by_state.get("dead"):
                state = "dead"
            elif fanned_out_at is None or by_state.get("pending") or by_state.get("queued"):
                state = "pending"
            summaries.append(
                EventSummary(
                    event=event,
                    state=state,
                    fanned_out_at=fanned_out_at,
                    pending=by_state.get("pending", 0) + by_state.get("queued", 0),
                    delivered=by_state.get("delivered", 0),
                    dead=by_state.get("dead", 0),
                )
            )
        return summaries

    async def get(self, event_id: uuid.UUID) -> EventDetail | None:
        rows = await self._fetch(
            "SELECT id, name, occurred_at, actor, contact_id, payload, fanned_out_at "
            "FROM kith_event WHERE id = {}",
            event_id,
        )
        if not rows:
            return None
        summary = (await self._summaries(rows))[0]
        deliveries = [
            DeliveryInfo(
                subscriber=row["subscriber"],
                state=row["state"],
                attempts=int(row["attempts"]),
                # Only a pending delivery has a next attempt.
                next_attempt_at=(
                    as_time(row["next_attempt_at"]) if row["state"] == "pending" else None
                ),
                locked_until=as_time(row["locked_until"]),
                locked_by=row["locked_by"],
                last_error=row["last_error"],
                delivered_at=as_time(row["delivered_at"]),
                updated_at=as_time(row["updated_at"]),
            )
            for row in await self._fetch(
                "SELECT subscriber, state, attempts, next_attempt_at, locked_until, locked_by, "
                "last_error, delivered_at, updated_at FROM kith_event_delivery "
                "WHERE event = {} ORDER BY subscriber",
                event_id,
            )
        ]
        return EventDetail(summary=summary, deliveries=deliveries)

    async def replay(
        self,
        now: dt.datetime,
        event_id: uuid.UUID | None = None,
        subscriber: str | None = None,
    ) -> int:
        """Give dead deliveries (of one event, or all) a fresh set of attempts; returns how
        many. One with a contact queues up again: it goes first unless its contact already has
        a delivery under way. The last error stays for the record until the next attempt."""
        where = ["state = 'dead'"]
        args: list[Any] = [now, now]
        if event_id is not None:
            where.append("event = {}")
            args.append(event_id)
        if subscriber is not None:
            where.append("subscriber = {}")
            args.append(subscriber)
        async with self.database.engine.transaction():
            rows = await self._fetch(
                "UPDATE kith_event_delivery SET state = CASE WHEN contact_id IS NULL "
                "THEN 'pending' ELSE 'queued' END, attempts = 0, next_attempt_at = {}, "
                "locked_until = NULL, locked_by = NULL, updated_at = {} "
                f"WHERE {' AND '.join(where)} RETURNING subscriber, contact_id",
                *args,
            )
            await self._promote(_queues(rows), now)
        return len(rows)

    async def counts(self) -> dict[str, int]:
        """Deliveries per state, plus events waiting for fan-out (``unfanned``)."""
        result: dict[str, int] = dict.fromkeys(DELIVERY_STATES, 0)
        for row in await self._fetch(
            "SELECT state, COUNT(*) AS n FROM kith_event_delivery GROUP BY state"
        ):
            result[row["state"]] = int(row["n"])
        unfanned = await self._fetch(
            "SELECT COUNT(*) AS n FROM kith_event WHERE fanned_out_at IS NULL"
        )
        result["unfanned"] = int(unfanned[0]["n"])
        return result

    # -- a data subject's events ------------------------------------------------------------

    async def _subject_settled(
        self, contact_id: uuid.UUID, kept_names: Sequence[str]
    ) -> tuple[str, list[Any]]:
        """The WHERE clause (and its arguments) of a subject's settled events that an erasure
        deletes: every event about them except those named in ``kept_names`` (evidence of a
        request) and those still being delivered, which are left to finish (ids only)."""
        subscribers = [
            row["name"] for row in await self._fetch("SELECT name FROM kith_event_subscriber")
        ]
        unsettled: list[Any] = []
        if subscribers:
            # Through the partial indexes on (subscriber, contact_id) of open deliveries, so
            # this stays cheap however many events the subject had.
            within, args = self._in("subscriber", subscribers, "text")
            for state in ("pending", "queued"):
                rows = await self._fetch(
                    f"SELECT event FROM kith_event_delivery WHERE state = '{state}' "
                    f"AND {within} AND contact_id = {{}}",
                    *args,
                    contact_id,
                )
                unsettled += [row["event"] for row in rows]
        where = "contact_id = {} AND fanned_out_at IS NOT NULL"
        values: list[Any] = [contact_id]
        if kept_names:
            where += f" AND name NOT IN ({_placeholders(len(kept_names))})"
            values += list(kept_names)
        if unsettled:
            where += f" AND id NOT IN ({_placeholders(len(unsettled))})"
            values += unsettled
        return where, values

    async def subject_counts(
        self, contact_id: uuid.UUID, kept_names: Sequence[str] = ()
    ) -> tuple[int, int]:
        """(events, deliveries) that :meth:`purge_subject` would delete now."""
        where, args = await self._subject_settled(contact_id, kept_names)
        return await self._counts_where(where, args)

    async def _counts_where(self, where: str, args: list[Any]) -> tuple[int, int]:
        events = await self._fetch(f"SELECT count(*) AS n FROM kith_event WHERE {where}", *args)
        deliveries = await self._fetch(
            "SELECT count(*) AS n FROM kith_event_delivery WHERE event IN "
            f"(SELECT id FROM kith_event WHERE {where})",
            *args,
        )
        return int(events[0]["n"]), int(deliveries[0]["n"])

    async def purge_subject(
        self, contact_id: uuid.UUID, kept_names: Sequence[str] = ()
    ) -> tuple[int, int]:
        """Delete a data subject's settled events and their deliveries (an erasure); returns
        (events, deliveries) deleted."""
        where, args = await self._subject_settled(contact_id, kept_names)
        counts = await self._counts_where(where, args)
        # Their deliveries go with them: the foreign key cascades.
        await self._fetch(f"DELETE FROM kith_event WHERE {where}", *args)
        return counts

    async def prune(self, before: dt.datetime, limit: int = 1000) -> int:
        """Delete events older than ``before`` whose every delivery succeeded (dead ones are
        kept until replayed); returns how many went."""
        rows = await self._fetch(
            "DELETE FROM kith_event WHERE id IN (SELECT e.id FROM kith_event e "
            "WHERE e.id < {} AND e.fanned_out_at IS NOT NULL AND NOT EXISTS ("
            "SELECT 1 FROM kith_event_delivery d WHERE d.event = e.id AND d.state <> 'delivered') "
            "LIMIT {}) RETURNING id",
            id_floor(before),
            limit,
        )
        return len(rows)
