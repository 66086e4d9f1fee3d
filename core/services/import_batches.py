"""What an import does with one batch of parsed records: contacts created (or counted as
duplicates, suppressed or invalid), interactions logged. Each record's outcome is one of
:data:`OUTCOMES`; a record that is not imported carries the reason for the error file.

A batch runs inside the caller's transaction (one commit with the job's checkpoint). Contacts
are created with :meth:`ContactService.create_many`, which writes nothing of a contact it
refuses; each interaction is logged in a savepoint of the transaction, so one refused half-way
leaves nothing behind. Either way a refused record never stops the others."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from kith.actor import Actor
from kith.errors import InvalidInput, KithError
from kith.ids import new_id
from kith.import_rows import ContactRow, InteractionRow, RowError
from kith.import_seen import SeenDigests
from kith.runtime import Kith
from kith.schemas import ContactCreate, FieldOut
from kith.services.contacts import ContactService
from kith.services.fields import FieldService
from kith.services.interactions import InteractionService
from kith.subject_checks import check_new_contact
from kith.tables import Contact, Interaction

Outcome = Literal["imported", "invalid", "duplicate", "suppressed"]
OUTCOMES: tuple[Outcome, ...] = ("imported", "invalid", "duplicate", "suppressed")
# Organizations matched or created by name, remembered per import (bounded: a file naming more
# companies looks them up again).
ORGANIZATION_CACHE = 50_000


@dataclass
class Result:
    line: int
    outcome: Outcome
    reason: str = ""


def refusal(exc: KithError) -> Outcome:
    """How a plugin's refusal of a new contact counts: the suppression list's (its error
    names the ``suppressed`` fields) as suppressed, any other as invalid."""
    return "suppressed" if "suppressed" in exc.extra else "invalid"


@asynccontextmanager
async def _isolated(kith: Kith) -> AsyncIterator[None]:
    """A savepoint around one record: undone (with the events it published) when it raises."""
    transaction = kith.database.engine.current_transaction.get()
    unit = kith.unit_of_work()
    async with unit as uow:
        published = len(uow.events)
        savepoint = await transaction.savepoint() if transaction is not None else None
        try:
            yield
        except BaseException:
            if savepoint is not None:
                await savepoint.rollback_to()
            del uow.events[published:]
            raise
        if savepoint is not None:
            await savepoint.release()


class Organizations:
    """Organizations by name for one import: matched among the existing ones through the name
    search (and reported as read), or created. Names match ignoring case and spacing."""

    def __init__(self, contacts: ContactService, source: str, actor: Actor) -> None:
        self.contacts = contacts
        self.source = source
        self.actor = actor
        self._known: dict[str, uuid.UUID] = {}
        # Created in the batch under way: known once it commits.
        self._pending: dict[str, uuid.UUID] = {}

    @staticmethod
    def key(name: str) -> str:
        return " ".join(name.casefold().split())

    async def resolve(self, names: Iterable[str]) -> dict[str, uuid.UUID | KithError]:
        """Each name's organization (by :meth:`key`), found or created (all that are missing
        in one :meth:`ContactService.create_many`), or the error that refused creating it."""
        found: dict[str, uuid.UUID | KithError] = {}
        missing: dict[str, str] = {}
        for name in names:
            key = self.key(name)
            if key in found or key in missing:
                continue
            known = self._known.get(key) or self._pending.get(key)
            if known is None:
                known = await self._existing(name, key)
                if known is not None:
                    self._remember(key, known)
            if known is None:
                missing[key] = name
            else:
                found[key] = known
        creating: dict[str, ContactCreate] = {}
        for key, name in missing.items():
            try:
                creating[key] = msgspec.convert(
                    {"kind": "organization", "name": name, "source": self.source}, ContactCreate
                )
            except msgspec.ValidationError as exc:
                found[key] = InvalidInput(
                    f"the organization's name is not valid ({exc})", field="organization"
                )
        if not creating:
            return found
        created = await self.contacts.create_many(list(creating.values()), self.actor)
        for key, outcome in zip(creating, created, strict=True):
            if isinstance(outcome, KithError):
                found[key] = outcome
            else:
                found[key] = self._pending[key] = outcome.id
        return found

    async def _existing(self, name: str, key: str) -> uuid.UUID | None:
        cursor = None
        while True:
            page = await self.contacts.list(q=name, cursor=cursor, limit=200, actor=self.actor)
            for item in page.items:
                if item.kind == "organization" and self.key(item.name) == key:
                    return item.id
            cursor = page.next_cursor
            if cursor is None:
                return None

    def _remember(self, key: str, contact_id: uuid.UUID) -> None:
        if len(self._known) >= ORGANIZATION_CACHE:
            self._known.clear()
        self._known[key] = contact_id

    def committed(self) -> None:
        for key, contact_id in self._pending.items():
            self._remember(key, contact_id)
        self._pending.clear()

    def rolled_back(self) -> None:
        self._pending.clear()


class ContactBatches:
    """Contacts from parsed records: deduplicated (against the contacts stored, this import's
    committed batches included, and within the batch), checked against the suppression list,
    created through :class:`ContactService` with their organization."""

    def __init__(self, kith: Kith, contacts: ContactService, source: str, actor: Actor) -> None:
        self.kith = kith
        self.contacts = contacts
        self.actor = actor
        self.organizations = Organizations(contacts, source, actor)

    async def write(self, rows: Sequence[ContactRow | Result]) -> list[Result]:
        parsed = [row for row in rows if isinstance(row, ContactRow)]
        holders = await self.contacts.holders(
            (key for row in parsed for key in row.keys), _lookups(parsed)
        )
        results: dict[int, Result] = {row.line: row for row in rows if isinstance(row, Result)}
        pending = parsed
        # Keys of the rows imported by this batch, with their lines.
        imported: dict[tuple[str, str], int] = {}
        # A row refused here stands in for nobody: a later row that only repeated it is tried
        # again, in another round.
        while pending:
            seen = dict(imported)
            creating: list[ContactRow] = []
            for row in pending:
                duplicate = _duplicate_of(row, holders, seen)
                if duplicate is not None:
                    results[row.line] = Result(row.line, "duplicate", duplicate)
                    continue
                for key in row.keys:
                    seen.setdefault(key, row.line)
                creating.append(row)
            refused = await self._create(creating, results)
            for row in creating:
                if row.line not in refused:
                    for key in row.keys:
                        imported.setdefault(key, row.line)
            pending = [
                row
                for row in pending
                if results[row.line].outcome == "duplicate"
                and not any(key in holders or key in imported for key in row.keys)
            ]
        return [results[row.line] for row in rows]

    async def _create(self, rows: list[ContactRow], results: dict[int, Result]) -> set[int]:
        """Create the rows' contacts with their organizations; the lines refused."""
        organizations = await self.organizations.resolve(
            row.organization for row in rows if row.organization is not None
        )
        refused: set[int] = set()
        creating: list[ContactRow] = []
        data = []
        digests = []
        for row in rows:
            organization = (
                None
                if row.organization is None
                else organizations[self.organizations.key(row.organization)]
            )
            if isinstance(organization, KithError):
                refused.add(row.line)
                results[row.line] = Result(
                    row.line, "invalid", f"organization: {organization.detail}"
                )
                continue
            creating.append(row)
            digests.append(row.digests)
            data.append(
                row.data
                if organization is None
                else msgspec.structs.replace(row.data, organization_id=organization)
            )
        outcomes = await self.contacts.create_many(
            data, self.actor, normalised=True, digests=digests
        )
        for row, outcome in zip(creating, outcomes, strict=True):
            if isinstance(outcome, KithError):
                refused.add(row.line)
                results[row.line] = Result(row.line, refusal(outcome), outcome.detail)
            else:
                results[row.line] = Result(row.line, "imported")
        return refused

    def committed(self) -> None:
        self.organizations.committed()

    def rolled_back(self) -> None:
        self.organizations.rolled_back()


class ContactChecks:
    """A dry run of contacts: the same outcomes as :class:`ContactBatches`, nothing written.
    Duplicates within the file are found from a digest of each email and phone seen, kept on
    disk (:class:`~kith.import_seen.SeenDigests`) so memory stays flat at any file size."""

    def __init__(self, kith: Kith, contacts: ContactService) -> None:
        self.kith = kith
        self.contacts = contacts
        self.fields = FieldService(kith)
        self._declared: list[FieldOut] | None = None
        self._seen = SeenDigests()

    async def write(self, rows: Sequence[ContactRow | Result]) -> list[Result]:
        parsed = [row for row in rows if isinstance(row, ContactRow)]
        holders = await self.contacts.holders(key for row in parsed for key in row.keys)
        digests = {id(row): [_digest(self.kith, key) for key in row.keys] for row in parsed}
        earlier = self._seen.seen(d for row_digests in digests.values() for d in row_digests)
        accepted: set[int] = set()
        results = []
        for row in rows:
            if isinstance(row, Result):
                results.append(row)
                continue
            mine = digests[id(row)]
            duplicate = _duplicate_of(row, holders, {})
            if duplicate is None and any(d in earlier or d in accepted for d in mine):
                duplicate = "duplicate of an earlier row of this file"
            if duplicate is not None:
                results.append(Result(row.line, "duplicate", duplicate))
                continue
            try:
                if self._declared is None:
                    self._declared = await self.fields.declared(include_archived=True)
                await self.fields.prepare(row.data.fields, creating=True, declared=self._declared)
                await check_new_contact(
                    self.kith,
                    new_id(),
                    [v for k, v in row.keys if k == "email"],
                    [v for k, v in row.keys if k == "phone"],
                )
            except KithError as exc:
                results.append(Result(row.line, refusal(exc), exc.detail))
                continue
            accepted.update(mine)
            results.append(Result(row.line, "imported"))
        self._seen.add(accepted)
        return results

    def committed(self) -> None:
        return None

    def rolled_back(self) -> None:
        return None

    def close(self) -> None:
        self._seen.close()


class InteractionBatches:
    """Interactions from parsed records, each logged for the contact its record names (by
    Kith id, email, phone or the value of the import's ``match_field``). A repeated source +
    external id is a duplicate, not a second interaction."""

    def __init__(
        self,
        kith: Kith,
        interactions: InteractionService,
        contacts: ContactService,
        actor: Actor,
        match_field: str | None,
        dry_run: bool = False,
    ) -> None:
        self.kith = kith
        self.interactions = interactions
        self.contacts = contacts
        self.actor = actor
        self.match_field = match_field
        self.dry_run = dry_run
        self.fields = FieldService(kith)

    async def write(self, rows: Sequence[InteractionRow | Result]) -> list[Result]:
        parsed = [row for row in rows if isinstance(row, InteractionRow)]
        holders = await self.contacts.holders(key for row in parsed for key in row.keys)
        results = []
        for row in rows:
            if isinstance(row, Result):
                results.append(row)
                continue
            try:
                contact_id = await self._contact(row, holders)
                if self.dry_run:
                    results.append(await self._check(row))
                    continue
                async with _isolated(self.kith):
                    _, created = await self.interactions.log(contact_id, row.data, self.actor)
            except (KithError, RowError) as exc:
                reason = exc.detail if isinstance(exc, KithError) else exc.reason
                results.append(Result(row.line, "invalid", reason))
                continue
            if created:
                results.append(Result(row.line, "imported"))
            else:
                results.append(Result(row.line, "duplicate", _imported_already(row)))
        return results

    async def _check(self, row: InteractionRow) -> Result:
        """A dry run's outcome: a duplicate when the source and external id are stored."""
        stored = await Interaction.exists().where(
            (Interaction.source == row.data.source)
            & (Interaction.external_id == row.data.external_id)
        )
        if stored:
            return Result(row.line, "duplicate", _imported_already(row))
        return Result(row.line, "imported")

    async def _contact(
        self, row: InteractionRow, holders: dict[tuple[str, str], list[uuid.UUID]]
    ) -> uuid.UUID:
        if row.contact_id is not None:
            if not await self.contacts.exists(row.contact_id):
                raise RowError(f"contact {row.contact_id} does not exist")
            return row.contact_id
        for key in row.keys:
            if key in holders:
                return holders[key][0]
        if row.contact_key is not None:
            if self.match_field is None:
                raise RowError(
                    "the row names its contact by a key, but the import names no match_field "
                    "(the custom field that holds contacts' keys)"
                )
            conditions = await self.fields.conditions({self.match_field: row.contact_key})
            query: Any = Contact.select(Contact.id).order_by(Contact.id).limit(1)
            for condition in conditions:
                query = query.where(Contact.id.is_in(condition))
            found = await query.run()
            if found:
                return uuid.UUID(str(found[0]["id"]))
        raise RowError("no contact has the row's contact id, email, phone or key")

    def committed(self) -> None:
        return None

    def rolled_back(self) -> None:
        return None


def _imported_already(row: InteractionRow) -> str:
    return f"duplicate: {row.data.source} {row.data.external_id!r} was imported already"


def _duplicate_of(
    row: ContactRow,
    holders: dict[tuple[str, str], list[uuid.UUID]],
    seen: dict[tuple[str, str], int],
) -> str | None:
    """Why the row is a duplicate (naming the kind of value, never the value), or None."""
    for kind, value in row.keys:
        if (kind, value) in holders:
            return f"duplicate: contact {holders[(kind, value)][0]} has this {kind}"
        if (kind, value) in seen:
            return f"duplicate: line {seen[(kind, value)]} has this {kind}"
    return None


def _lookups(rows: Iterable[ContactRow]) -> dict[tuple[str, str], str]:
    """The blind indexes the rows' digests hold (computed with their parsing)."""
    found: dict[tuple[str, str], str] = {}
    for row in rows:
        if row.digests is not None:
            found.update(row.digests.lookups)
    return found


def _digest(kith: Kith, key: tuple[str, str]) -> int:
    kind, value = key
    return hash(kith.protector.lookup_key(kind, value))
