"""Interactions: the timeline of everything that happened with a contact, and tasks."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import uuid
import zoneinfo
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Literal

from kith.actor import SYSTEM, Actor
from kith.errors import Conflict, InvalidInput, NotFound
from kith.events import utcnow
from kith.ids import new_id
from kith.pagination import check_limit, decode_cursor, encode_cursor
from kith.runtime import Kith
from kith.schemas import InteractionCreate, InteractionOut, InteractionPatch, Page, unset_to_dict
from kith.services import is_foreign_key_violation, is_unique_violation
from kith.services.contacts import ContactService, default_channel
from kith.storage.prepared import Prepared
from kith.subject_checks import check_processing, record_access
from kith.tables import Contact, Interaction, User
from piccolo.query.functions.aggregate import Count, Max

TABLE = Interaction._meta.tablename
PROTECTED = ("summary", "body")
TASK_ONLY = ("due_at", "done_at", "assignee_id")
EARLIEST = dt.datetime(1000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
DueFilter = Literal["today", "overdue", "all"]


AMOUNT_LIMIT = decimal.Decimal(10) ** 16  # the column holds 18 digits, 2 after the point


def _check_amount(amount: decimal.Decimal | None) -> None:
    """Amounts are money: finite, at most two decimal places, within the column's range."""
    if amount is None:
        return
    if not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
        raise InvalidInput(f"{amount} is not an amount this field can hold", field="amount")
    if amount != amount.quantize(decimal.Decimal("0.01"), rounding=decimal.ROUND_DOWN):
        raise InvalidInput(f"{amount} has more than two decimal places", field="amount")


_COLUMNS = tuple(column._meta.name for column in Interaction._meta.columns)
# The write path of logging an interaction: built once, not per call.
_INSERT = Prepared(lambda **values: Interaction.insert(Interaction(**values)), max_shapes=4)
CENTS = decimal.Decimal("0.01")


def _cents(amount: decimal.Decimal | None) -> decimal.Decimal | None:
    """An amount as the column holds it, two decimal places (SQLite gives back 12.5 for 12.50,
    PostgreSQL 12.50), so both engines answer alike."""
    return None if amount is None else decimal.Decimal(amount).quantize(CENTS)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # As both engines give stored times back.
    return None if value is None else value.astimezone(dt.UTC)


class _NoContactRow(Exception):
    """The insert met the contact's foreign key: the contact is not there, or a user it names
    is not (told apart after the transaction is over)."""


class _RacedOnExternalId(Exception):
    def __init__(self, retryable: bool) -> None:
        super().__init__("another request stored the same external id first")
        self.retryable = retryable


@contextlib.asynccontextmanager
async def _insert_failures(data: InteractionCreate, *, retryable: bool) -> AsyncIterator[None]:
    """What a failed insert of an interaction means: a missing contact (or user it names), or,
    for an external id, another request that stored it first. ``retryable``: the transaction
    was this call's own, so the caller may try again."""
    try:
        yield
    except (_NoContactRow, _RacedOnExternalId):
        raise
    except Exception as exc:
        if is_foreign_key_violation(exc):
            raise _NoContactRow from exc
        if data.external_id is None or not is_unique_violation(exc):
            raise
        # Another request stored the same source + external_id after the check above.
        # Only a unit of work of our own can be retried; a joined one is spoilt.
        raise _RacedOnExternalId(retryable=retryable) from exc


class InteractionService:
    """Interactions and tasks, for one channel; reads and changes are reported as
    :class:`kith.services.contacts.ContactService` reports them."""

    def __init__(
        self, kith: Kith, channel: str | None = None, context: Mapping[str, Any] | None = None
    ) -> None:
        self.kith = kith
        self.channel = channel
        self.context = dict(context or {})
        self.zone = zoneinfo.ZoneInfo(kith.settings.timezone)

    async def _report(
        self, contact_id: uuid.UUID, action: str, actor: Actor, **details: Any
    ) -> None:
        await record_access(
            self.kith,
            contact_id,
            action,
            actor,
            self.channel or default_channel(actor),
            **self.context,
            **details,
        )

    def _aware(self, value: dt.datetime | None, field: str) -> dt.datetime | None:
        """Times without an offset are read in the installation's time zone; both engines
        store the years 1000 to 9998 in UTC alike (at the edges of 1 and 9999 an offset
        would carry the time out of range)."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        if not EARLIEST <= value <= LATEST:
            raise InvalidInput(
                f"{field} must lie between the years {EARLIEST.year} and {LATEST.year}",
                field=field,
            )
        return value

    async def _contact_subject(self, contact_id: uuid.UUID) -> uuid.UUID:
        if not await ContactService(self.kith).exists(contact_id):
            raise NotFound(f"contact {contact_id} does not exist")
        return contact_id

    @staticmethod
    async def _check_assignee(assignee_id: uuid.UUID | None) -> None:
        if assignee_id is not None and not await User.exists().where(User.id == assignee_id):
            raise InvalidInput(f"user {assignee_id} does not exist", field="assignee_id")

    async def log(
        self,
        contact_id: uuid.UUID,
        data: InteractionCreate,
        actor: Actor = SYSTEM,
        *,
        at_commit: bool = False,
        _retry: bool = True,
    ) -> tuple[InteractionOut, bool]:
        """Add an interaction; returns it and whether it was new. A repeated ``source`` +
        ``external_id`` returns the interaction already stored instead of a second one.
        ``at_commit``: in a caller's transaction that reads it no more, the row is written
        with the others just before the commit (on PostgreSQL in one statement) instead of
        at once; it needs no ``external_id``, the one insert that can race, and a contact the
        caller's transaction has written or checked (it is not looked up again)."""
        if at_commit and data.external_id is not None:
            raise InvalidInput("an interaction with an external id is written at once")
        if data.kind != "task":
            for name in TASK_ONLY:
                if getattr(data, name) is not None:
                    raise InvalidInput(f"only tasks have {name}", field=name)
        _check_amount(data.amount)
        try:
            return await self._log(contact_id, data, actor, at_commit)
        except _RacedOnExternalId as raced:
            if not (_retry and raced.retryable):
                raise Conflict(
                    f"{data.source} logged {data.external_id!r} at the same moment in another "
                    "request; send it again to get the stored interaction",
                    field="external_id",
                ) from None
        # The other request has committed its row, so a new unit of work finds it.
        return await self.log(contact_id, data, actor, _retry=False)

    async def _log(
        self, contact_id: uuid.UUID, data: InteractionCreate, actor: Actor, at_commit: bool
    ) -> tuple[InteractionOut, bool]:
        try:
            return await self._store(contact_id, data, actor, at_commit)
        except (_NoContactRow, Conflict) as exc:
            # The contact is not looked up first (a round trip on every log): a missing one
            # fails on the foreign key, or earlier where its data key is destroyed (erased).
            # Either way it is a 404, told apart from other failures after the transaction.
            if not await ContactService(self.kith).exists(contact_id):
                raise NotFound(f"contact {contact_id} does not exist") from None
            if isinstance(exc, _NoContactRow) and exc.__cause__ is not None:
                raise exc.__cause__ from None
            raise

    async def _store(
        self, contact_id: uuid.UUID, data: InteractionCreate, actor: Actor, at_commit: bool
    ) -> tuple[InteractionOut, bool]:
        unit = self.kith.unit_of_work(actor)
        # The insert may run with the statements deferred to the commit (below): its failures
        # then come from the commit and mean what they meant at the insert.
        async with _insert_failures(data, retryable=True), unit as uow:
            if uow is not unit and not at_commit:
                # In someone else's transaction a failed insert would spoil it on PostgreSQL
                # (one at the commit fails the whole transaction anyway).
                await self._contact_subject(contact_id)
            await check_processing(self.kith, contact_id, "interaction.log")
            if data.external_id is not None:
                existing = (
                    await Interaction.select(Interaction.id, Interaction.contact)
                    .where(
                        (Interaction.source == data.source)
                        & (Interaction.external_id == data.external_id)
                    )
                    .first()
                )
                if existing is not None:
                    if existing["contact"] != contact_id:
                        raise Conflict(
                            f"{data.source} already logged {data.external_id!r} "
                            f"for another contact ({existing['contact']})",
                            field="external_id",
                        )
                    found = await self._read(existing["id"])
                    await self._report(
                        contact_id, "log_interaction", actor, interaction=str(found.id)
                    )
                    return found, False
            await self._check_assignee(data.assignee_id)
            row_id = new_id()
            now = utcnow()
            stored = await self.kith.protector.protect(
                contact_id, TABLE, row_id, {"summary": data.summary, "body": data.body}
            )
            written = InteractionOut(
                id=row_id,
                contact_id=contact_id,
                kind=data.kind,
                direction=data.direction,
                occurred_at=_utc(self._aware(data.occurred_at, "occurred_at")) or now,
                summary=data.summary,
                body=data.body,
                channel=data.channel,
                duration_s=data.duration_s,
                amount=_cents(data.amount),
                source=data.source,
                external_id=data.external_id,
                due_at=_utc(self._aware(data.due_at, "due_at")),
                done_at=_utc(self._aware(data.done_at, "done_at")),
                assignee_id=data.assignee_id,
                created_at=now,
                updated_at=now,
            )
            values = {name: getattr(written, name, None) for name in _COLUMNS}
            values.update(
                contact=contact_id,
                assignee=data.assignee_id,
                created_by=actor.id if actor.kind == "user" else None,
                **stored,
            )
            # An order is read back below, by its contact's value and tier update.
            read_back = data.kind == "order"
            async with _insert_failures(data, retryable=uow is unit):
                if (uow is unit or at_commit) and not read_back:
                    # Nothing reads it back in this transaction: it runs with the audit entry
                    # and the outbox event (on PostgreSQL one statement, with no BEGIN or
                    # COMMIT of its own). In a caller's transaction it runs now, so that a
                    # failure is told here, before it spoils that transaction, unless the
                    # caller asked for it at the commit.
                    await _INSERT.defer(**values)
                else:
                    await _INSERT.run(**values)
            uow.publish(
                "interaction.logged",
                contact_id,
                interaction_id=str(row_id),
                contact_id=str(contact_id),
                kind=data.kind,
                source=data.source,
            )
            if data.kind == "order":
                # The contact's value and tier move with the order, in its transaction: once
                # for all the orders of a batch (an import), just before it commits.
                from kith.services.tiers import TierService

                uow.gather("tiers.on_order", contact_id, TierService(self.kith).on_orders)
            # In the transaction: the record commits with the interaction, in one commit.
            await self._report(contact_id, "log_interaction", actor, interaction=str(row_id))
        # What was just written, as a read would return it, without reading it back.
        return written, True

    async def update(
        self, interaction_id: uuid.UUID, patch: InteractionPatch, actor: Actor = SYSTEM
    ) -> InteractionOut:
        changes = unset_to_dict(patch)
        _check_amount(changes.get("amount"))  # type: ignore[arg-type]
        async with self.kith.unit_of_work(actor) as uow:
            current = await self._read(interaction_id)
            await check_processing(self.kith, current.contact_id, "interaction.update")
            if current.kind != "task":
                for name in TASK_ONLY:
                    if changes.get(name) is not None:
                        raise InvalidInput(f"only tasks have {name}", field=name)
            if "assignee_id" in changes:
                await self._check_assignee(changes["assignee_id"])  # type: ignore[arg-type]
            values: dict[Any, Any] = {Interaction.updated_at: utcnow()}
            columns = {
                "direction": Interaction.direction,
                "occurred_at": Interaction.occurred_at,
                "channel": Interaction.channel,
                "duration_s": Interaction.duration_s,
                "amount": Interaction.amount,
                "due_at": Interaction.due_at,
                "done_at": Interaction.done_at,
                "assignee_id": Interaction.assignee,
            }
            for name, column in columns.items():
                if name in changes:
                    value = changes[name]
                    values[column] = (
                        self._aware(value, name) if isinstance(value, dt.datetime) else value
                    )
            if "occurred_at" in changes and changes["occurred_at"] is None:
                raise InvalidInput("occurred_at cannot be empty", field="occurred_at")
            if {"summary", "body"} & changes.keys():
                stored = await self.kith.protector.protect(
                    current.contact_id,
                    TABLE,
                    interaction_id,
                    {
                        "summary": str(changes.get("summary", current.summary)),
                        "body": str(changes.get("body", current.body)),
                    },
                )
                values[Interaction.summary] = stored["summary"]
                values[Interaction.body] = stored["body"]
            await Interaction.update(values).where(Interaction.id == interaction_id).run()
            uow.publish(
                "interaction.updated",
                current.contact_id,
                interaction_id=str(interaction_id),
                fields=sorted(changes),
            )
        await self._report(
            current.contact_id, "update_interaction", actor, interaction=str(interaction_id)
        )
        return await self._read(interaction_id)

    async def complete(
        self, interaction_id: uuid.UUID, actor: Actor = SYSTEM, *, at: dt.datetime | None = None
    ) -> tuple[InteractionOut, bool]:
        """Mark a task done (now, or ``at``); returns it and whether this call closed it. A
        task that is already done keeps the time it was closed."""
        current = await self._read(interaction_id)
        if current.kind != "task":
            raise InvalidInput(
                f"interaction {interaction_id} is a {current.kind}, not a task",
                field="interaction_id",
            )
        if current.done_at is not None:
            await self._report(
                current.contact_id, "read_interaction", actor, interaction=str(interaction_id)
            )
            return current, False
        patch = InteractionPatch(done_at=at or utcnow())
        return await self.update(interaction_id, patch, actor), True

    async def _hydrate(self, rows: list[dict[str, Any]]) -> list[InteractionOut]:
        items = []
        for row in rows:
            text = await self.kith.protector.reveal(
                row["contact"], TABLE, row["id"], {c: row[c] for c in PROTECTED}
            )
            items.append(
                InteractionOut(
                    id=row["id"],
                    contact_id=row["contact"],
                    kind=row["kind"],
                    direction=row["direction"],
                    occurred_at=row["occurred_at"],
                    summary=text["summary"] or "",
                    body=text["body"] or "",
                    channel=row["channel"],
                    duration_s=row["duration_s"],
                    amount=_cents(row["amount"]),
                    source=row["source"],
                    external_id=row["external_id"],
                    due_at=row["due_at"],
                    done_at=row["done_at"],
                    assignee_id=row["assignee"],
                    created_at=row["created_at"],
                    updated_at=row["updated_at"],
                )
            )
        return items

    async def get(self, interaction_id: uuid.UUID, actor: Actor = SYSTEM) -> InteractionOut:
        """One interaction; the read is reported."""
        interaction = await self._read(interaction_id)
        await self._report(
            interaction.contact_id, "read_interaction", actor, interaction=str(interaction_id)
        )
        return interaction

    async def exists(self, interaction_id: uuid.UUID, contact_id: uuid.UUID | None = None) -> bool:
        """Whether the interaction exists (on ``contact_id``'s timeline, when given)."""
        condition = Interaction.id == interaction_id
        if contact_id is not None:
            condition &= Interaction.contact == contact_id
        return bool(await Interaction.exists().where(condition))

    async def count_and_latest(
        self,
        contact_id: uuid.UUID,
        *,
        kinds: Sequence[str] | None = None,
        since: dt.datetime | None = None,
    ) -> tuple[int, dt.datetime | None]:
        """How many of a contact's interactions (of ``kinds``, at or after ``since``) there
        are, and when the latest happened. Reads no personal data."""
        condition = Interaction.contact == contact_id
        if kinds is not None:
            condition &= Interaction.kind.is_in(list(kinds) or [""])
        if since is not None:
            condition &= Interaction.occurred_at >= since
        row = (
            await Interaction.select(
                Count(Interaction.id, alias="n"), Max(Interaction.occurred_at, alias="latest")
            )
            .where(condition)
            .first()
        )
        latest = row["latest"] if row else None
        if isinstance(latest, str):
            latest = dt.datetime.fromisoformat(latest)
        return (int(row["n"]) if row else 0), latest

    async def delete_older_than(
        self,
        cutoff: dt.datetime,
        *,
        kinds: Sequence[str] | None = None,
        except_kinds: Sequence[str] = (),
        except_contacts: Sequence[uuid.UUID] = (),
        dry_run: bool = False,
    ) -> int:
        """Delete interactions that happened before ``cutoff`` (a retention rule), of
        ``kinds`` or of every kind but ``except_kinds``, except those of ``except_contacts``;
        returns how many (with ``dry_run``, how many would go)."""
        condition = Interaction.occurred_at < cutoff
        if kinds is not None:
            condition &= Interaction.kind.is_in(list(kinds) or [""])
        if except_kinds:
            condition &= Interaction.kind.not_in(list(except_kinds))
        if except_contacts:
            condition &= Interaction.contact.not_in(list(except_contacts))
        count = int(await Interaction.count().where(condition).run())
        if count and not dry_run:
            await Interaction.delete().where(condition).run()
        return count

    async def _read(self, interaction_id: uuid.UUID) -> InteractionOut:
        row = await Interaction.select().where(Interaction.id == interaction_id).first()
        if row is None:
            raise NotFound(f"interaction {interaction_id} does not exist")
        return (await self._hydrate([row]))[0]

    async def timeline(
        self,
        contact_id: uuid.UUID,
        cursor: str | None = None,
        limit: int = 50,
        actor: Actor = SYSTEM,
        *,
        include_people: bool = False,
    ) -> Page[InteractionOut]:
        """A contact's interactions, newest first; with ``include_people``, an organization's
        together with those of its people. The read is reported for the contact and for each
        person whose interactions the page holds."""
        limit = check_limit(limit)
        await self._contact_subject(contact_id)
        whose = Interaction.contact == contact_id
        if include_people:
            people = Contact.select(Contact.id).where(Contact.organization == contact_id)
            whose |= Interaction.contact.is_in(people)
        query = Interaction.select().where(whose)
        if cursor:
            at, last_id = _time_key(cursor)
            query = query.where(
                (Interaction.occurred_at < at)
                | ((Interaction.occurred_at == at) & (Interaction.id < last_id))
            )
        rows = await (
            query.order_by(Interaction.occurred_at, ascending=False)
            .order_by(Interaction.id, ascending=False)
            .limit(limit + 1)
            .run()
        )
        items = await self._hydrate(rows[:limit])
        more = len(rows) > limit
        await self._report(contact_id, "read_timeline", actor)
        for person in dict.fromkeys(i.contact_id for i in items if i.contact_id != contact_id):
            await self._report(person, "read_timeline", actor, organization=str(contact_id))
        return Page(
            items=items,
            next_cursor=encode_cursor(items[-1].occurred_at.isoformat(), items[-1].id)
            if more
            else None,
        )

    def _day_bounds(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        local = now.astimezone(self.zone)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + dt.timedelta(days=1)

    async def tasks(
        self,
        due: DueFilter = "all",
        assignee_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: int = 50,
        now: dt.datetime | None = None,
        actor: Actor = SYSTEM,
    ) -> Page[InteractionOut]:
        """Open tasks: due today (including overdue ones), overdue, or all, soonest first. Each
        task listed is reported as a read of its contact's data."""
        page = await self._tasks(due, assignee_id, cursor, limit, now)
        for item in page.items:
            await self._report(item.contact_id, "list_tasks", actor, interaction=str(item.id))
        return page

    async def _tasks(
        self,
        due: DueFilter,
        assignee_id: uuid.UUID | None,
        cursor: str | None,
        limit: int,
        now: dt.datetime | None,
    ) -> Page[InteractionOut]:
        limit = check_limit(limit)
        now = now or utcnow()

        def open_tasks() -> Any:
            # A new query each time: piccolo's where() changes the query it is called on.
            query = Interaction.select().where(
                (Interaction.kind == "task") & Interaction.done_at.is_null()
            )
            if assignee_id is not None:
                query = query.where(Interaction.assignee == assignee_id)
            return query

        if due == "all":
            return await self._all_tasks(open_tasks, cursor, limit)
        query = open_tasks()
        if due == "today":
            query = query.where(Interaction.due_at < self._day_bounds(now)[1])
        else:
            query = query.where(Interaction.due_at < now)
        if cursor:
            at, last_id = _time_key(cursor)
            query = query.where(
                (Interaction.due_at > at)
                | ((Interaction.due_at == at) & (Interaction.id > last_id))
            )
        rows = (
            await query.order_by(Interaction.due_at).order_by(Interaction.id).limit(limit + 1).run()
        )
        items = await self._hydrate(rows[:limit])
        more = len(rows) > limit
        last = items[-1] if items else None
        return Page(
            items=items,
            next_cursor=encode_cursor(last.due_at.isoformat(), last.id)
            if more and last and last.due_at
            else None,
        )

    async def _all_tasks(
        self, open_tasks: Callable[[], Any], cursor: str | None, limit: int
    ) -> Page[InteractionOut]:
        """Tasks with a due date, soonest first, then those without one in the order they were
        added. The cursor holds the last task's due time (empty among the undated) and id."""
        after: tuple[dt.datetime, uuid.UUID] | None = None
        undated_after: uuid.UUID | None = None
        if cursor:
            at, last_id = decode_cursor(cursor, 2)
            if at:
                after = _time_key(cursor)
            else:
                undated_after = _cursor_id(last_id)
        rows: list[dict[str, Any]] = []
        if undated_after is None:
            dated = open_tasks().where(Interaction.due_at.is_not_null())
            if after is not None:
                dated = dated.where(
                    (Interaction.due_at > after[0])
                    | ((Interaction.due_at == after[0]) & (Interaction.id > after[1]))
                )
            rows = await (
                dated.order_by(Interaction.due_at).order_by(Interaction.id).limit(limit + 1).run()
            )
        if len(rows) <= limit:
            undated = open_tasks().where(Interaction.due_at.is_null())
            if undated_after is not None:
                undated = undated.where(Interaction.id > undated_after)
            rows += await undated.order_by(Interaction.id).limit(limit + 1 - len(rows)).run()
        items = await self._hydrate(rows[:limit])
        if len(rows) <= limit:
            return Page(items=items, next_cursor=None)
        last = items[-1]
        due_key = last.due_at.isoformat() if last.due_at is not None else ""
        return Page(items=items, next_cursor=encode_cursor(due_key, last.id))


def _cursor_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInput("the cursor is not one this server handed out", field="cursor") from None


def _time_key(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    at, last_id = decode_cursor(cursor, 2)
    try:
        return dt.datetime.fromisoformat(at), uuid.UUID(last_id)
    except ValueError:
        raise InvalidInput("the cursor is not one this server handed out", field="cursor") from None
