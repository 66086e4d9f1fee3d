"""Contacts: create, read, change, archive, list and search, with normalised emails and phones."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from kith import name_index
from kith.actor import SYSTEM, Actor
from kith.contact_names import blank_to_none as _blank_to_none
from kith.contact_names import display_name
from kith.errors import Conflict, InvalidInput, KithError, NotFound
from kith.events import utcnow
from kith.ids import new_id
from kith.import_digests import RowDigests
from kith.merge_records import merged_into
from kith.normalize import looks_like_email, looks_like_phone, normalize_email, normalize_phone
from kith.pagination import check_limit, decode_cursor, decode_id_cursor, encode_cursor
from kith.runtime import Kith
from kith.schemas import (
    CONTACT_PATCH_DIRECTIVES,
    ContactCreate,
    ContactOut,
    ContactPatch,
    EmailIn,
    EmailOut,
    Page,
    PhoneIn,
    PhoneOut,
    unset_to_dict,
)
from kith.services import is_unique_violation
from kith.services.fields import VALUE_TABLE, VERSION_SQL, FieldService, PreparedValues, ValueRow
from kith.storage.bulk import insert_rows
from kith.storage.prepared import Prepared, run_deferred
from kith.subject_checks import check_new_contact, check_processing, record_access
from kith.tables import Contact, ContactPoint, CustomField, CustomFieldValue, Interaction, User
from kith.unit_of_work import UnitOfWork
from piccolo.columns.combination import WhereRaw
from piccolo.query import Insert

CONTACT_TABLE = Contact._meta.tablename
POINT_TABLE = ContactPoint._meta.tablename
NAME_COLUMNS = ("display_name", "given_name", "family_name")
SCAN_CHUNK = 500


@dataclasses.dataclass(frozen=True)
class ContactFilter:
    """Which contacts a list (or an export) is of: ``q`` an exact email or phone, or the
    start of words of the name; ``organization_id`` that organization's people; ``fields``
    custom field filters (``{"industry": "retail", "employees.min": "10"}``)."""

    q: str | None = None
    include_archived: bool = False
    organization_id: uuid.UUID | None = None
    fields: Mapping[str, str] | None = None
    # Only contacts in this value tier (kith.services.tiers).
    tier: str | None = None
    # Only contacts carrying this tag (exactly, as stored), of this owner, of this kind.
    tag: str | None = None
    owner_id: uuid.UUID | None = None
    kind: str | None = None


KINDS = ("person", "organization")
# The orders of a list: a key, and a leading "-" for descending.
SORTS = ("created", "-created", "updated", "-updated", "name", "-name", "last_interaction")


@dataclasses.dataclass(frozen=True)
class Order:
    """How a list is ordered (``ContactService.order``). Pages follow creation (id) order or
    last change, keyset-paginated. Names are stored encrypted, so ``name`` orders the contacts
    of each page by name while the pages themselves follow creation order: ordering across
    pages would need a sort key that tells whoever reads the database how names compare.
    ``last_interaction`` lists the most recently in touch first (the newest interaction other
    than a task), then the contacts with none, newest first."""

    sort: str = "created"

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def key(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def by_updated(self) -> bool:
        return self.key == "updated"

    @property
    def by_last_interaction(self) -> bool:
        return self.key == "last_interaction"

    @property
    def pages_descending(self) -> bool:
        # A name order pages in creation order, oldest first, whichever way each page sorts.
        return self.descending and self.key != "name"

    def cursor(self, row: dict[str, Any]) -> str:
        if self.sort == "created" or self.key == "name":
            return encode_cursor(row["id"])  # as before sorts existed: old cursors still work
        if self.by_updated:
            return encode_cursor(self.sort, row["updated_at"].isoformat(), row["id"])
        if self.by_last_interaction:
            last = row["last_interaction_at"]
            return encode_cursor(self.sort, "" if last is None else last.isoformat(), row["id"])
        return encode_cursor(self.sort, row["id"])

    def after(self, cursor: str | None) -> tuple[dt.datetime | None, uuid.UUID] | None:
        """The keyset position a cursor of this order stands for."""
        if not cursor:
            return None
        if self.sort == "created" or self.key == "name":
            return None, decode_id_cursor(cursor)
        timed = self.by_updated or self.by_last_interaction
        parts = decode_cursor(cursor, 3 if timed else 2)
        if parts[0] != self.sort:
            raise InvalidInput("the cursor belongs to a list in another order", field="cursor")
        try:
            # By last interaction, no moment: past the contacts that have one.
            moment = dt.datetime.fromisoformat(parts[1]) if timed and parts[1] else None
            return moment, uuid.UUID(parts[-1])
        except ValueError:
            raise InvalidInput(
                "the cursor is not one this server handed out", field="cursor"
            ) from None


@dataclasses.dataclass(frozen=True)
class Selection:
    """A :class:`ContactFilter` checked and turned into conditions (``ContactService.select``):
    ``empty`` when nothing can match (an email no contact has, say)."""

    filters: ContactFilter
    conditions: list[Any]
    by_fields: list[Any]
    words: list[str] | None
    empty: bool


class _PrimaryEmailRaced(Conflict):
    """Another request gave the same primary email to its contact between our check and our
    insert. ``retryable`` when this call's own transaction was rolled back (not a joined one)."""

    retryable = False


@contextlib.asynccontextmanager
async def _retryable_race(own_transaction: bool) -> AsyncIterator[None]:
    try:
        yield
    except _PrimaryEmailRaced as raced:
        raced.retryable = own_transaction
        raise


# The unique index that keeps a primary email to one contact (core's constraints migration).
_PRIMARY_EMAIL_INDEX = "kith_contact_point_primary_email"


@contextlib.asynccontextmanager
async def _raced_at_commit(primary_email: str | None) -> AsyncIterator[None]:
    """Around a create whose emails and phones are inserted with the commit (its own
    transaction): the unique index refusing the primary email there is the race it is at the
    insert, and the create may try again."""
    try:
        yield
    except Exception as exc:
        if primary_email is None or getattr(exc, "constraint_name", None) != _PRIMARY_EMAIL_INDEX:
            raise
        raced = _PrimaryEmailRaced(
            f"another contact already has {primary_email} as primary email", field="emails"
        )
        raced.retryable = True
        raise raced from None


# The read path of every contact: built once, not per call (see kith.storage.prepared).
_CONTACT_EXISTS = Prepared(lambda contact_id: Contact.exists().where(Contact.id == contact_id))
_POINTS_OF = Prepared(
    lambda ids: (
        ContactPoint.select(
            ContactPoint.id,
            ContactPoint.contact,
            ContactPoint.kind,
            ContactPoint.value,
            ContactPoint.label,
            ContactPoint.is_primary,
        )
        .where(ContactPoint.contact.is_in(ids))
        .order_by(ContactPoint.position)
    )
)
# Reading one contact in one round trip: the contact's row joined to its emails and phones and
# its custom field values (one row each, in that order; one row of NULLs when it has none, no
# row when it does not exist). On PostgreSQL a round trip costs more CPU than the rest of the
# read, so a second query for the custom field values cost a sixth of the read's throughput.
# piccolo has no UNION, hence the SQL; its names come from the tables.
_CONTACT_COLUMNS = tuple(column._meta.name for column in Contact._meta.columns)


def _one_contact_sql() -> str:
    def name(column: Any) -> str:
        return f'"{column._meta.db_column_name}"'

    from kith.loop_tables import ContactTier

    point, value, field = ContactPoint, CustomFieldValue, CustomField
    contact_columns = ", ".join(f"c.{name(c)}" for c in Contact._meta.columns)
    # The value tier rides along: a second query would cost as much as the read.
    tier = (
        f'(SELECT t.{name(ContactTier.tier)} FROM "{ContactTier._meta.tablename}" t '
        f"WHERE t.{name(ContactTier.contact)} = c.{name(Contact.id)}) AS tier"
    )
    return (
        f"SELECT {contact_columns}, {tier}, r.part, r.row_id, r.name, r.value, r.label, r.flag, "
        "r.protected "
        f'FROM "{CONTACT_TABLE}" c LEFT JOIN ('
        f"SELECT p.{name(point.contact)} AS contact, 0 AS part, p.{name(point.position)} AS ord, "
        f"p.{name(point.id)} AS row_id, p.{name(point.kind)} AS name, "
        f"p.{name(point.value)} AS value, p.{name(point.label)} AS label, "
        f"p.{name(point.is_primary)} AS flag, NULL AS protected "
        f'FROM "{POINT_TABLE}" p WHERE p.{name(point.contact)} = {{}} '
        "UNION ALL "
        f"SELECT v.{name(value.contact)}, 1, 0, v.{name(value.id)}, f.{name(field.name)}, "
        f"v.{name(value.value)}, f.{name(field.type)}, f.{name(field.archived)}, "
        f"v.{name(value.protected)} "
        f'FROM "{VALUE_TABLE}" v JOIN "{CustomField._meta.tablename}" f '
        f"ON f.{name(field.id)} = v.{name(value.field)} "
        f"WHERE v.{name(value.contact)} = {{}}"
        f") r ON r.contact = c.{name(Contact.id)} "
        f"WHERE c.{name(Contact.id)} = {{}} ORDER BY r.part, r.ord, r.name"
    )


_ONE_CONTACT = Prepared(
    lambda contact_id: Contact.raw(_one_contact_sql(), contact_id, contact_id, contact_id)
)


# The write path of a contact create: built once, not per call.
# piccolo's ``Insert`` rather than ``Contact.insert`` here and for the points: without
# ``RETURNING id``, whose rows nobody reads and which cost SQLite a step per row.
_INSERT_CONTACT = Prepared(
    lambda id, kind, display_name, given_name, family_name, organization, owner, tags, source, at: (
        Insert(
            Contact,
            Contact(
                id=id,
                kind=kind,
                display_name=display_name,
                given_name=given_name,
                family_name=family_name,
                organization=organization,
                owner=owner,
                tags=tags,
                source=source,
                archived=False,
                created_at=at,
                updated_at=at,
            ),
        )
    )
)


def _insert_points(
    id: list[Any],
    contact: list[Any],
    kind: list[Any],
    value: list[Any],
    lookup: list[Any],
    label: list[Any],
    is_primary: list[Any],
    position: list[Any],
) -> Any:
    """Emails and phones in one statement, whatever their number (one list per column)."""
    return Insert(
        ContactPoint,
        *(
            ContactPoint(
                id=id[i],
                contact=contact[i],
                kind=kind[i],
                value=value[i],
                lookup=lookup[i],
                label=label[i],
                is_primary=is_primary[i],
                position=position[i],
            )
            for i in range(len(id))
        ),
    )


# All of a contact's emails and phones in one statement.
_INSERT_POINTS = Prepared(_insert_points)
_HOLDERS = Prepared(
    lambda key, kind: ContactPoint.select(ContactPoint.contact).where(
        (ContactPoint.lookup == key) & (ContactPoint.kind == kind)
    )
)
_PRIMARY_HOLDERS = Prepared(
    lambda key, kind: ContactPoint.select(ContactPoint.contact).where(
        (ContactPoint.lookup == key)
        & (ContactPoint.kind == kind)
        & (ContactPoint.is_primary == True)  # noqa: E712 - piccolo builds SQL from this
    )
)

# What a create reads before it writes, in one statement (one round trip on PostgreSQL): the
# custom field declarations' version (kith.services.fields.FieldService.declared_at) and the
# contact holding the new one's primary email (at most one: a unique index).
_BEFORE_CREATE = Prepared(
    lambda lookup: ContactPoint.raw(
        f"SELECT {VERSION_SQL} AS fields_version, (SELECT contact FROM kith_contact_point "
        "WHERE lookup = {} AND kind = 'email' AND is_primary) AS primary_holder",
        lookup,
    )
)


_BULK_CONTACT_COLUMNS = (
    "id",
    "kind",
    "display_name",
    "given_name",
    "family_name",
    "organization",
    "owner",
    "tags",
    "source",
    "archived",
    "created_at",
    "updated_at",
)
_BULK_POINT_COLUMNS = (
    "id",
    "contact",
    "kind",
    "value",
    "lookup",
    "label",
    "is_primary",
    "position",
)


@dataclass(eq=False)
class _NewContact:
    """One item of :meth:`ContactService.create_many` on its way to being written."""

    index: int
    data: ContactCreate
    id: uuid.UUID
    display: str
    points: list[tuple[str, str, str, bool]]
    custom: PreparedValues
    tags: list[str] = field(default_factory=list)
    out: ContactOut | None = None
    # Keyed hashes computed with the parsing (an import's worker), or None.
    digests: RowDigests | None = None

    @property
    def sealed(self) -> bool:
        """Whether its data key and stored values were made already (see RowDigests)."""
        return self.digests is not None and self.digests.sealed

    def lookup(self, protector: Any, kind: str, value: str) -> str:
        """The blind index of one of its emails or phones."""
        if self.digests is not None:
            known = self.digests.lookups.get((kind, value))
            if known is not None:
                return known
        found: str = protector.lookup_key(kind, value)
        return found


class ContactService:
    """Contacts, for one channel (``api``, ``cli``, ``web``...). Every method that reads or
    changes a contact's personal data reports it (``kith_record_access``) with the actor it is
    given and this channel, so every channel audits the same accesses."""

    def __init__(
        self, kith: Kith, channel: str | None = None, context: Mapping[str, Any] | None = None
    ) -> None:
        self.kith = kith
        self.channel = channel
        # Details added to every access reported (the CLI names the operating-system account).
        self.context = dict(context or {})

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

    # -- writing -----------------------------------------------------------------------------

    def _points(
        self, emails: Sequence[EmailIn], phones: Sequence[PhoneIn], *, normalised: bool = False
    ) -> list[tuple[str, str, str, bool]]:
        """(kind, normalised value, label, primary) for every email and phone, one primary each.
        ``normalised``: the caller normalised the values already (a batch of an import)."""
        region = self.kith.settings.default_region
        points: list[tuple[str, str, str, bool]] = []
        for kind, items in (("email", emails), ("phone", phones)):
            seen: set[str] = set()
            values = []
            for index, item in enumerate(items):
                field = f"{kind}s[{index}]"
                if normalised:
                    value = item.address if isinstance(item, EmailIn) else item.number
                elif isinstance(item, EmailIn):
                    value = normalize_email(item.address, field=field)
                else:
                    value = normalize_phone(item.number, region, field=field)
                if value in seen:
                    raise InvalidInput(f"{value} is listed twice", field=field)
                seen.add(value)
                values.append((value, item.label, item.primary))
            primaries = sum(1 for _, _, primary in values if primary)
            if primaries > 1:
                raise InvalidInput(f"only one of the {kind}s can be primary", field=f"{kind}s")
            for position, (value, label, primary) in enumerate(values):
                is_primary = primary or (primaries == 0 and position == 0)
                points.append((kind, value, label, is_primary))
        return points

    async def _write_points(
        self,
        contact_id: uuid.UUID,
        points: Iterable[tuple[str, str, str, bool]],
        *,
        defer: bool = False,
        checked: bool = False,
    ) -> None:
        """``defer``: inserted with the commit (see :func:`_raced_at_commit`). ``checked``:
        the caller refused a primary email held by another contact already."""
        primary_email = _primary_email(points)
        if primary_email is not None and not checked:
            holders = [
                other
                for other in await self.find_ids_by("email", primary_email, primary_only=True)
                if other != contact_id
            ]
            _refuse_held(primary_email, holders[0] if holders else None)
        columns: dict[str, list[Any]] = {
            name: [] for name in ("id", "contact", "kind", "value", "lookup", "label", "is_primary")
        }
        for kind, value, label, primary in points:
            row_id = new_id()
            stored = await self.kith.protector.protect(
                contact_id, POINT_TABLE, row_id, {"value": value}
            )
            columns["id"].append(row_id)
            columns["contact"].append(contact_id)
            columns["kind"].append(kind)
            columns["value"].append(stored["value"])
            columns["lookup"].append(self.kith.protector.lookup_key(kind, value))
            columns["label"].append(label)
            columns["is_primary"].append(primary)
        if not columns["id"]:
            return
        if defer:
            await _INSERT_POINTS.defer(**columns, position=list(range(len(columns["id"]))))
            return
        try:
            await _INSERT_POINTS.run(**columns, position=list(range(len(columns["id"]))))
        except Exception as exc:
            # Two requests raced past the check above; the unique index decided.
            if is_unique_violation(exc):
                raise _PrimaryEmailRaced(
                    f"another contact already has {primary_email} as primary email",
                    field="emails",
                ) from None
            raise

    async def _check_references(
        self, organization_id: uuid.UUID | None, owner_id: uuid.UUID | None, self_id: uuid.UUID
    ) -> None:
        if organization_id is not None:
            if organization_id == self_id:
                raise InvalidInput(
                    "a contact cannot be its own organization", field="organization_id"
                )
            await self._check_organization(organization_id)
        if owner_id is not None and not await User.exists().where(User.id == owner_id):
            raise InvalidInput(f"user {owner_id} does not exist", field="owner_id")

    _display_name = staticmethod(display_name)

    async def create(
        self, data: ContactCreate, actor: Actor = SYSTEM, *, _retry: bool = True
    ) -> ContactOut:
        try:
            return await self._create(data, actor)
        except _PrimaryEmailRaced as raced:
            if not (_retry and raced.retryable):
                raise
        # The contact that won the race is committed now, so the check names it.
        return await self.create(data, actor, _retry=False)

    async def _create(self, data: ContactCreate, actor: Actor) -> ContactOut:
        display = self._display_name(data.kind, data.name, data.given_name, data.family_name)
        given, family = _blank_to_none(data.given_name), _blank_to_none(data.family_name)
        tags = _clean_tags(data.tags)
        points = self._points(data.emails, data.phones)
        contact_id = new_id()
        now = utcnow()
        unit = self.kith.unit_of_work(actor)
        raced = _raced_at_commit(_primary_email(points))
        async with raced, unit as uow, _retryable_race(uow is unit):
            # Its own transaction's rows are written with the commit: nothing reads them back
            # here, and on PostgreSQL the contact, its data key, emails and phones, name tokens,
            # audit entry and event are then one statement. In a caller's transaction the
            # emails and phones are inserted now, so that a race is told before it spoils it.
            own = uow is unit
            # In the transaction, as every statement of a create is (one commit).
            primary = _primary_email(points)
            [before] = await _BEFORE_CREATE.run(
                lookup=None if primary is None else self.kith.protector.lookup_key("email", primary)
            )
            fields = FieldService(self.kith)
            custom = await fields.prepare(
                data.fields,
                creating=True,
                declared=await fields.declared_at(before["fields_version"]),
            )
            await self._check_references(data.organization_id, data.owner_id, contact_id)
            await check_new_contact(
                self.kith,
                contact_id,
                [value for kind, value, _, _ in points if kind == "email"],
                [value for kind, value, _, _ in points if kind == "phone"],
                data.override_suppression_reason,
                actor,
            )
            plain = {"display_name": display, "given_name": given, "family_name": family}
            names = await self.kith.protector.protect(
                contact_id, CONTACT_TABLE, contact_id, plain, new_subject=True
            )
            await (_INSERT_CONTACT.defer if own else _INSERT_CONTACT.run)(
                id=contact_id,
                kind=data.kind,
                display_name=names["display_name"],
                given_name=names["given_name"],
                family_name=names["family_name"],
                organization=data.organization_id,
                owner=data.owner_id,
                tags=msgspec.json.encode(tags).decode(),
                source=data.source,
                at=now,
            )
            if primary is not None:
                _refuse_held(primary, before["primary_holder"])
            await self._write_points(contact_id, points, defer=own, checked=True)
            if custom.set or custom.cleared:
                # Its values refer to the contact's row: that goes in first.
                await run_deferred(Contact._meta.db)
                await FieldService(self.kith).store(contact_id, custom)
            await name_index.index_row(
                self.kith, contact_id, CONTACT_TABLE, contact_id, plain, new=True
            )
            uow.publish(
                "contact.created",
                contact_id,
                contact_id=str(contact_id),
                kind=data.kind,
                source=data.source,
            )
            # In the transaction: the record of the access commits with the contact (one
            # commit, not two), and a contact that was not stored has no such record.
            await self._report(contact_id, "create", actor)
        # What was just written, as a read would return it, without reading it back.
        return ContactOut(
            id=contact_id,
            kind=data.kind,
            name=display,
            given_name=given,
            family_name=family,
            organization_id=data.organization_id,
            emails=[EmailOut(v, label, p) for kind, v, label, p in points if kind == "email"],
            phones=[PhoneOut(v, label, p) for kind, v, label, p in points if kind == "phone"],
            tags=tags,
            owner_id=data.owner_id,
            source=data.source,
            created_at=now,
            updated_at=now,
            archived=False,
            fields=custom.shown,
        )

    async def create_many(
        self,
        items: Sequence[ContactCreate],
        actor: Actor = SYSTEM,
        *,
        normalised: bool = False,
        digests: Sequence[RowDigests | None] | None = None,
    ) -> list[ContactOut | KithError]:
        """Create many contacts in the current unit of work (or one of its own), checked as
        :meth:`create` checks one, written with multi-row statements: a batch of an import.
        Each item's outcome is its contact, or the error that refused it (nothing of it is
        written). ``normalised``: the items' emails and phones are normalised already.
        ``digests``: each item's keyed hashes computed already (by an import's worker)."""
        outcomes: list[ContactOut | KithError | None] = [None] * len(items)
        fields = FieldService(self.kith)
        async with self.kith.unit_of_work(actor) as uow:
            declared = await fields.declared(include_archived=True)
            ready: list[_NewContact] = []
            for index, data in enumerate(items):
                try:
                    ready.append(
                        _NewContact(
                            index=index,
                            data=data,
                            id=_new_contact_id(None if digests is None else digests[index]),
                            display=self._display_name(
                                data.kind, data.name, data.given_name, data.family_name
                            ),
                            points=self._points(data.emails, data.phones, normalised=normalised),
                            custom=await fields.prepare(
                                data.fields, creating=True, declared=declared
                            ),
                            digests=None if digests is None else digests[index],
                        )
                    )
                except KithError as exc:
                    outcomes[index] = exc
            for check in (self._bulk_references, self._bulk_primaries, self._bulk_plugin_checks):
                refused = await check(ready, actor)
                for item in ready:
                    if item.index in refused:
                        outcomes[item.index] = refused[item.index]
                ready = [item for item in ready if item.index not in refused]
            for written in await self._write_many(ready, uow, actor):
                outcomes[written.index] = written.out
        return [outcome for outcome in outcomes if outcome is not None]

    async def _bulk_references(
        self, items: list[_NewContact], actor: Actor
    ) -> dict[int, KithError]:
        """The items whose organization or owner does not exist (or is no organization)."""
        refused: dict[int, KithError] = {}
        organizations = {i.data.organization_id for i in items} - {None}
        kinds: dict[Any, str] = {}
        if organizations:
            rows = await Contact.select(Contact.id, Contact.kind).where(
                Contact.id.is_in(list(organizations))
            )
            kinds = {row["id"]: row["kind"] for row in rows}
        owners = {i.data.owner_id for i in items} - {None}
        users: set[Any] = set()
        if owners:
            users = {r["id"] for r in await User.select(User.id).where(User.id.is_in(list(owners)))}
        for item in items:
            organization, owner = item.data.organization_id, item.data.owner_id
            if organization is not None and kinds.get(organization) != "organization":
                refused[item.index] = InvalidInput(
                    f"organization {organization} does not exist"
                    if organization not in kinds
                    else f"contact {organization} is a person, not an organization; only "
                    "organizations have people",
                    field="organization_id",
                )
            elif owner is not None and owner not in users:
                refused[item.index] = InvalidInput(f"user {owner} does not exist", field="owner_id")
        return refused

    async def _bulk_primaries(self, items: list[_NewContact], actor: Actor) -> dict[int, KithError]:
        """The items whose primary email is another contact's primary email (stored, or of an
        earlier item)."""
        primaries = {
            item.index: value
            for item in items
            for kind, value, _, primary in item.points
            if kind == "email" and primary
        }
        ids = {item.index: item.id for item in items}
        by_index = {item.index: item for item in items}
        protector = self.kith.protector
        keys = {by_index[index].lookup(protector, "email", v): v for index, v in primaries.items()}
        held: dict[str, Any] = {}
        if keys:
            rows = await ContactPoint.select(ContactPoint.contact, ContactPoint.lookup).where(
                ContactPoint.lookup.is_in(list(keys))
                & (ContactPoint.kind == "email")
                & (ContactPoint.is_primary == True)  # noqa: E712 - piccolo builds SQL from this
            )
            held = {keys[row["lookup"]]: row["contact"] for row in rows}
        refused: dict[int, KithError] = {}
        for index, value in primaries.items():
            if value in held:
                refused[index] = Conflict(
                    f"contact {held[value]} already has {value} as primary email",
                    field="emails",
                    existing_contact_id=str(held[value]),
                )
            else:
                held[value] = ids[index]
        return refused

    async def _bulk_plugin_checks(
        self, items: list[_NewContact], actor: Actor
    ) -> dict[int, KithError]:
        """The plugins' refusals (the suppression list's, above all): asked once for all the
        items' emails and phones, and item by item only when something was refused."""
        plain = [item for item in items if item.data.override_suppression_reason is None]
        try:
            await check_new_contact(
                self.kith,
                new_id(),
                [v for item in plain for kind, v, _, _ in item.points if kind == "email"],
                [v for item in plain for kind, v, _, _ in item.points if kind == "phone"],
                None,
                actor,
            )
            one_by_one = [item for item in items if item not in plain]
        except KithError:
            one_by_one = items
        refused: dict[int, KithError] = {}
        for item in one_by_one:
            try:
                await check_new_contact(
                    self.kith,
                    item.id,
                    [value for kind, value, _, _ in item.points if kind == "email"],
                    [value for kind, value, _, _ in item.points if kind == "phone"],
                    item.data.override_suppression_reason,
                    actor,
                )
            except KithError as exc:
                refused[item.index] = exc
        return refused

    async def _write_many(
        self, items: list[_NewContact], uow: UnitOfWork, actor: Actor
    ) -> list[_NewContact]:
        if not items:
            return []
        protector = self.kith.protector
        prepare = getattr(protector, "prepare_new_subjects", None)
        adopted = [item.digests.key for item in items if item.sealed and item.digests]
        if adopted:
            await protector.adopt_new_subjects(adopted)
        if prepare is not None:
            await prepare([item.id for item in items if not item.sealed])
        index = name_index.name_index(self.kith)
        await index.before_new_rows()
        now = utcnow()
        contacts: list[tuple[Any, ...]] = []
        points: list[tuple[Any, ...]] = []
        named = []
        tokenised: list[tuple[uuid.UUID, str, Any, set[int]]] = []
        for item in items:
            data = item.data
            plain = {
                "display_name": item.display,
                "given_name": _blank_to_none(data.given_name),
                "family_name": _blank_to_none(data.family_name),
            }
            # Made by an import's worker, or made here.
            made = item.digests if item.sealed else None
            if made is not None and made.names is not None:
                names = made.names
            else:
                names = await protector.protect(
                    item.id, CONTACT_TABLE, item.id, plain, new_subject=prepare is None
                )
            item.tags = _clean_tags(data.tags)
            contacts.append(
                (
                    item.id,
                    data.kind,
                    names["display_name"],
                    names["given_name"],
                    names["family_name"],
                    data.organization_id,
                    data.owner_id,
                    msgspec.json.encode(item.tags).decode(),
                    data.source,
                    False,
                    now,
                    now,
                )
            )
            for position, (kind, value, label, primary) in enumerate(item.points):
                sealed = None if made is None else made.points.get((kind, value))
                if sealed is not None:
                    point_id, stored = sealed
                else:
                    point_id = new_id()
                    protected = await protector.protect(
                        item.id, POINT_TABLE, point_id, {"value": value}
                    )
                    stored = protected["value"]
                points.append(
                    (
                        point_id,
                        item.id,
                        kind,
                        stored,
                        item.lookup(protector, kind, value),
                        label,
                        primary,
                        position,
                    )
                )
            tokens = None if item.digests is None else item.digests.name_tokens
            if tokens is None:
                named.append((item.id, CONTACT_TABLE, item.id, plain))
            else:
                tokenised.append((item.id, CONTACT_TABLE, item.id, tokens))
        await insert_rows(Contact, _BULK_CONTACT_COLUMNS, contacts)
        await insert_rows(ContactPoint, _BULK_POINT_COLUMNS, points)
        await FieldService(self.kith).store_new((item.id, item.custom) for item in items)
        await name_index.index_rows(self.kith, named)
        if tokenised:
            await name_index.insert_tokens(self.kith, tokenised)
        for item in items:
            data = item.data
            uow.publish(
                "contact.created",
                item.id,
                contact_id=str(item.id),
                kind=data.kind,
                source=data.source,
            )
            item.out = ContactOut(
                id=item.id,
                kind=data.kind,
                name=item.display,
                given_name=_blank_to_none(data.given_name),
                family_name=_blank_to_none(data.family_name),
                organization_id=data.organization_id,
                emails=[EmailOut(v, label, p) for k, v, label, p in item.points if k == "email"],
                phones=[PhoneOut(v, label, p) for k, v, label, p in item.points if k == "phone"],
                tags=item.tags,
                owner_id=data.owner_id,
                source=data.source,
                created_at=now,
                updated_at=now,
                archived=False,
                fields=item.custom.shown,
            )
        # One after the other: in a transaction every statement shares one connection.
        for item in items:
            await self._report(item.id, "create", actor)
        return items

    async def update(
        self,
        contact_id: uuid.UUID,
        patch: ContactPatch,
        actor: Actor = SYSTEM,
        *,
        _retry: bool = True,
    ) -> ContactOut:
        try:
            contact = await self._update(contact_id, patch, actor)
        except _PrimaryEmailRaced as raced:
            if not (_retry and raced.retryable):
                raise
            return await self.update(contact_id, patch, actor, _retry=False)
        fields = sorted(
            name
            for name in patch.__struct_fields__
            if getattr(patch, name) is not msgspec.UNSET and name not in CONTACT_PATCH_DIRECTIVES
        )
        await self._report(contact_id, "update", actor, fields=fields)
        return contact

    async def _check_new_points(
        self,
        current: ContactOut,
        points: Sequence[tuple[str, str, str, bool]],
        override_reason: str | None,
        actor: Actor,
    ) -> None:
        """Ask the plugins about the emails and phones the contact does not hold yet (the
        suppression list, above all), as ``create`` does for a new contact's."""
        held = {("email", e.address) for e in current.emails}
        held |= {("phone", p.number) for p in current.phones}
        new: dict[str, list[str]] = {"email": [], "phone": []}
        positions: dict[str, list[int]] = {"emails": [], "phones": []}
        index = {"email": 0, "phone": 0}
        for kind, value, _, _ in points:
            if (kind, value) not in held:
                new[kind].append(value)
                positions[f"{kind}s"].append(index[kind])
            index[kind] += 1
        if not new["email"] and not new["phone"]:
            return
        await check_new_contact(
            self.kith,
            current.id,
            new["email"],
            new["phone"],
            override_reason,
            actor,
            positions=positions,
        )

    async def _update(self, contact_id: uuid.UUID, patch: ContactPatch, actor: Actor) -> ContactOut:
        changes = unset_to_dict(patch)
        directives = {name: changes.pop(name) for name in CONTACT_PATCH_DIRECTIVES & changes.keys()}
        unit = self.kith.unit_of_work(actor)
        async with unit as uow, _retryable_race(uow is unit):
            current = await self._read(contact_id)
            await check_processing(self.kith, contact_id, "contact.update")
            custom = None
            if "fields" in changes:
                custom = await FieldService(self.kith).prepare(
                    changes["fields"],  # type: ignore[arg-type]
                    creating=False,
                )
            points = None
            if "emails" in changes or "phones" in changes:
                emails = changes.get(
                    "emails", [EmailIn(e.address, e.label, e.primary) for e in current.emails]
                )
                phones = changes.get(
                    "phones", [PhoneIn(p.number, p.label, p.primary) for p in current.phones]
                )
                points = self._points(emails, phones)  # type: ignore[arg-type]
                # Before anything is written: a refusal leaves the contact as it was.
                await self._check_new_points(
                    current,
                    points,
                    directives.get("override_suppression_reason"),  # type: ignore[arg-type]
                    actor,
                )
            kind = changes.get("kind", current.kind)
            given = changes.get("given_name", current.given_name)
            family = changes.get("family_name", current.family_name)
            if "name" in changes:
                # An empty name falls back to the one derived from the parts.
                display = self._display_name(
                    str(kind),
                    str(changes["name"]),
                    given,  # type: ignore[arg-type]
                    family,  # type: ignore[arg-type]
                )
            elif {"given_name", "family_name"} & changes.keys() and current.name == " ".join(
                p for p in (current.given_name, current.family_name) if p
            ):
                # The name was derived from the parts, so it follows them.
                display = self._display_name(str(kind), None, given, family)  # type: ignore[arg-type]
            else:
                display = current.name
            if kind == "person" and current.kind == "organization":
                member = (
                    await Contact.select(Contact.id)
                    .where(Contact.organization == contact_id)
                    .first()
                )
                if member is not None:
                    raise Conflict(
                        f"contact {member['id']} belongs to this organization; unlink its "
                        "people before making it a person",
                        field="kind",
                    )
            organization_id = changes.get("organization_id", current.organization_id)
            owner_id = changes.get("owner_id", current.owner_id)
            await self._check_references(
                organization_id if "organization_id" in changes else None,  # type: ignore[arg-type]
                owner_id if "owner_id" in changes else None,  # type: ignore[arg-type]
                contact_id,
            )
            plain = {
                "display_name": display,
                "given_name": _blank_to_none(given),  # type: ignore[arg-type]
                "family_name": _blank_to_none(family),  # type: ignore[arg-type]
            }
            names = await self.kith.protector.protect(contact_id, CONTACT_TABLE, contact_id, plain)
            values: dict[Any, Any] = {
                Contact.kind: kind,
                Contact.organization: organization_id,
                Contact.owner: owner_id,
                Contact.updated_at: utcnow(),
                Contact.display_name: names["display_name"],
                Contact.given_name: names["given_name"],
                Contact.family_name: names["family_name"],
            }
            if "tags" in changes:
                values[Contact.tags] = _clean_tags(changes["tags"])  # type: ignore[arg-type]
            if "archived" in changes:
                values[Contact.archived] = bool(changes["archived"])
            await Contact.update(values).where(Contact.id == contact_id).run()
            if plain != {
                "display_name": current.name,
                "given_name": current.given_name,
                "family_name": current.family_name,
            }:
                await name_index.index_row(self.kith, contact_id, CONTACT_TABLE, contact_id, plain)
            if points is not None:
                await ContactPoint.delete().where(ContactPoint.contact == contact_id).run()
                await self._write_points(contact_id, points)
            if custom is not None:
                await FieldService(self.kith).store(contact_id, custom)
            uow.publish(
                "contact.updated", contact_id, contact_id=str(contact_id), fields=sorted(changes)
            )
            if changes.get("archived") is True and not current.archived:
                uow.publish("contact.archived", contact_id, contact_id=str(contact_id))
        return await self._read(contact_id)

    async def archive(self, contact_id: uuid.UUID, actor: Actor = SYSTEM) -> ContactOut:
        async with self.kith.unit_of_work(actor) as uow:
            current = await self._read(contact_id)
            await check_processing(self.kith, contact_id, "contact.archive")
            if not current.archived:
                await (
                    Contact.update({Contact.archived: True, Contact.updated_at: utcnow()})
                    .where(Contact.id == contact_id)
                    .run()
                )
                uow.publish("contact.archived", contact_id, contact_id=str(contact_id))
        await self._report(contact_id, "archive", actor)
        return await self._read(contact_id)

    # -- reading -----------------------------------------------------------------------------

    async def _hydrate(
        self,
        rows: list[dict[str, Any]],
        revealed: Mapping[uuid.UUID, dict[str, str | None]] | None = None,
    ) -> list[ContactOut]:
        """Contacts out of their rows; ``revealed``: names already decrypted, by contact."""
        if not rows:
            return []
        # The page's keys in one round trip rather than one per contact.
        await preload_keys(self.kith, [row["id"] for row in rows])
        point_rows = await _POINTS_OF.run(ids=[row["id"] for row in rows])
        points: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for point in point_rows:
            points.setdefault(point["contact"], []).append(point)
        custom = await FieldService(self.kith).values_of([row["id"] for row in rows])
        tiers = await _tiers_of([row["id"] for row in rows])
        return [
            await self._contact_out(
                row,
                points.get(row["id"], []),
                custom.get(row["id"], {}),
                (revealed or {}).get(row["id"]),
                tier=tiers.get(row["id"]),
            )
            for row in rows
        ]

    async def _contact_out(
        self,
        row: dict[str, Any],
        points: list[dict[str, Any]],
        fields: dict[str, Any],
        names: dict[str, str | None] | None = None,
        *,
        tier: str | None = None,
    ) -> ContactOut:
        contact_id = row["id"]
        if names is None:
            names = await self.kith.protector.reveal(
                contact_id, CONTACT_TABLE, contact_id, {c: row[c] for c in NAME_COLUMNS}
            )
        emails, phones = [], []
        for point in points:
            value = (
                await self.kith.protector.reveal(
                    contact_id, POINT_TABLE, point["id"], {"value": point["value"]}
                )
            )["value"] or ""
            if point["kind"] == "email":
                emails.append(EmailOut(value, point["label"], bool(point["is_primary"])))
            else:
                phones.append(PhoneOut(value, point["label"], bool(point["is_primary"])))
        return ContactOut(
            id=contact_id,
            kind=row["kind"],
            name=names["display_name"] or "",
            given_name=names["given_name"],
            family_name=names["family_name"],
            organization_id=row["organization"],
            emails=emails,
            phones=phones,
            tags=_tags_from_db(row["tags"]),
            owner_id=row["owner"],
            source=row["source"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            archived=bool(row["archived"]),
            fields=fields,
            tier=tier,
        )

    async def get(self, contact_id: uuid.UUID, actor: Actor = SYSTEM) -> ContactOut:
        """One contact, its emails and phones readable; the read is reported. A contact merged
        into another is not found, and the error names the one it was merged into."""
        try:
            contact = await self._read(contact_id)
        except NotFound:
            merge = await merged_into(contact_id)
            if merge is None:
                raise
            raise NotFound(
                f"contact {contact_id} was merged into {merge['survivor']}",
                merged_into=str(merge["survivor"]),
                merge_id=str(merge["id"]),
            ) from None
        await self._report(contact_id, "read", actor)
        return contact

    async def _read(self, contact_id: uuid.UUID) -> ContactOut:
        rows = await _ONE_CONTACT.run(contact_id=contact_id)
        if not rows:
            raise NotFound(f"contact {contact_id} does not exist")
        first = rows[0]
        contact = {name: first[name] for name in _CONTACT_COLUMNS}
        points: list[dict[str, Any]] = []
        values: list[ValueRow] = []
        for row in rows:
            if row["part"] is None:
                continue  # no emails, phones or custom field values
            # Through the UNION, SQLite no longer knows these columns' declared types.
            row_id = row["row_id"]
            row_id = row_id if isinstance(row_id, uuid.UUID) else uuid.UUID(row_id)
            if row["part"] == 0:
                points.append(
                    {
                        "id": row_id,
                        "kind": row["name"],
                        "value": row["value"],
                        "label": row["label"],
                        "is_primary": bool(row["flag"]),
                    }
                )
            else:
                values.append(
                    ValueRow(
                        row_id,
                        contact_id,
                        row["name"],
                        row["label"],
                        bool(row["flag"]),
                        row["value"],
                        row["protected"],
                    )
                )
        custom = await FieldService(self.kith).present(values)
        return await self._contact_out(
            contact, points, custom.get(contact_id, {}), tier=first["tier"]
        )

    async def exists(self, contact_id: uuid.UUID) -> bool:
        return bool(await _CONTACT_EXISTS.run(contact_id=contact_id))

    async def untouched_since(
        self, moment: dt.datetime, *, after: uuid.UUID | None = None, limit: int = 500
    ) -> list[uuid.UUID]:
        """Contacts created and last changed before ``moment`` with no interaction that
        happened or changed since (a retention rule's candidates), in id order."""
        recent = Interaction.select(Interaction.contact).where(
            (Interaction.occurred_at >= moment) | (Interaction.updated_at >= moment)
        )
        query = Contact.select(Contact.id).where(
            (Contact.updated_at < moment)
            & (Contact.created_at < moment)
            & Contact.id.not_in(recent)
        )
        return await self._ids(query, after, limit)

    async def created_before_without(
        self,
        moment: dt.datetime,
        kind: str,
        *,
        after: uuid.UUID | None = None,
        limit: int = 500,
    ) -> list[uuid.UUID]:
        """Contacts created before ``moment`` with no interaction of ``kind`` (leads that
        never ordered, say), in id order."""
        having = Interaction.select(Interaction.contact).where(Interaction.kind == kind)
        query = Contact.select(Contact.id).where(
            (Contact.created_at < moment) & Contact.id.not_in(having)
        )
        return await self._ids(query, after, limit)

    @staticmethod
    async def _ids(query: Any, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
        if after is not None:
            query = query.where(Contact.id > after)
        rows = await query.order_by(Contact.id).limit(limit).run()
        return [row["id"] for row in rows]

    async def find_ids_by(
        self, kind: str, normalized: str, primary_only: bool = False
    ) -> list[uuid.UUID]:
        """Contacts holding an exact email or phone (already normalised)."""
        key = self.kith.protector.lookup_key(kind, normalized)
        rows = await (_PRIMARY_HOLDERS if primary_only else _HOLDERS).run(key=key, kind=kind)
        return sorted({row["contact"] for row in rows})

    async def holders(
        self,
        values: Iterable[tuple[str, str]],
        lookups: Mapping[tuple[str, str], str] | None = None,
    ) -> dict[tuple[str, str], list[uuid.UUID]]:
        """The contacts holding each of these exact (kind, normalised value) emails and
        phones, oldest first: one query for many (a batch of an import). Values nobody
        holds are left out. ``lookups``: blind indexes of values computed already."""
        lookup = self.kith.protector.lookup_key
        known = lookups or {}
        by_key = {
            (kind, known.get((kind, value)) or lookup(kind, value)): (kind, value)
            for kind, value in values
        }
        if not by_key:
            return {}
        rows = await ContactPoint.select(
            ContactPoint.contact, ContactPoint.kind, ContactPoint.lookup
        ).where(ContactPoint.lookup.is_in(sorted({key for _, key in by_key})))
        found: dict[tuple[str, str], set[uuid.UUID]] = {}
        for row in rows:
            value = by_key.get((row["kind"], row["lookup"]))
            if value is not None:
                found.setdefault(value, set()).add(row["contact"])
        return {value: sorted(ids) for value, ids in found.items()}

    def _parse_lookup(self, q: str) -> tuple[str, str] | None:
        """(kind, normalised value) when the query is an email or a phone number, else None."""
        if looks_like_email(q):
            try:
                return "email", normalize_email(q, field="q")
            except InvalidInput:
                return None
        if looks_like_phone(q):
            try:
                return "phone", normalize_phone(q, self.kith.settings.default_region, field="q")
            except InvalidInput:
                return None
        return None

    async def select(self, filters: ContactFilter) -> Selection:
        """The filters of a list checked and turned into conditions, once for every page:
        :class:`InvalidInput` for an unknown organization or custom field filter."""
        conditions = []
        if not filters.include_archived:
            conditions.append(Contact.archived == False)  # noqa: E712 - piccolo builds SQL from this
        if filters.organization_id is not None:
            await self._check_organization(filters.organization_id)
            conditions.append(Contact.organization == filters.organization_id)
        by_fields = []
        if filters.fields:
            matching = await FieldService(self.kith).conditions(filters.fields)
            by_fields = [Contact.id.is_in(ids) for ids in matching]
            conditions += by_fields
        if filters.kind is not None:
            if filters.kind not in KINDS:
                raise InvalidInput(
                    f"kind must be one of {', '.join(KINDS)}, not {filters.kind!r}", field="kind"
                )
            conditions.append(Contact.kind == filters.kind)
        if filters.owner_id is not None:
            if not await User.exists().where(User.id == filters.owner_id):
                raise InvalidInput(f"user {filters.owner_id} does not exist", field="owner_id")
            conditions.append(Contact.owner == filters.owner_id)
        if filters.tag is not None:
            if not filters.tag.strip():
                raise InvalidInput("give the tag to list the contacts of", field="tag")
            conditions.append(_has_tag(filters.tag.strip()))
        if filters.tier is not None:
            from kith.loop_tables import ContactTier

            in_tier = ContactTier.select(ContactTier.contact).where(
                ContactTier.tier == filters.tier
            )
            by_fields = [*by_fields, Contact.id.is_in(in_tier)]
            conditions.append(by_fields[-1])
        q = (filters.q or "").strip()
        lookup = self._parse_lookup(q) if q else None
        empty = False
        if lookup is not None:
            ids = await self.find_ids_by(*lookup)
            if ids:
                conditions.append(Contact.id.is_in(ids))
            empty = not ids
        words = name_index.query_words(q) if q and lookup is None else None
        # Nothing in the query that a name could start with (only punctuation).
        empty = empty or words == []
        return Selection(filters, conditions, by_fields, words, empty)

    async def page(
        self,
        selection: Selection,
        after: uuid.UUID | None,
        limit: int,
        order: Order | None = None,
        after_moment: dt.datetime | None = None,
    ) -> tuple[list[ContactOut], bool]:
        """Up to ``limit`` contacts of a selection (see :meth:`select`) after ``after`` (and,
        by last change, ``after_moment``), in creation order or ``order``, and whether more
        follow. Nothing is reported here: the caller reports what it shows or hands on
        (:meth:`report_each`)."""
        items, _, more = await self._page(selection, after, limit, order or Order(), after_moment)
        return items, more

    async def _page(
        self,
        selection: Selection,
        after: uuid.UUID | None,
        limit: int,
        order: Order,
        after_moment: dt.datetime | None,
    ) -> tuple[list[ContactOut], list[dict[str, Any]], bool]:
        if selection.empty:
            return [], [], False
        words, by_fields = selection.words, selection.by_fields
        if words is not None and (
            order.by_updated or order.by_last_interaction or order.pages_descending
        ):
            raise InvalidInput(
                "a name search lists contacts oldest first or by name; search by email or "
                "phone, or leave the search out, to order them otherwise",
                field="sort",
            )
        index = name_index.name_index(self.kith)
        filters_of = selection.filters

        # Names are stored protected: a name search decrypts the contacts the name index
        # offers (or, without a usable index, every contact in turn) and checks them.
        found: list[dict[str, Any]] = []
        revealed: dict[uuid.UUID, dict[str, str | None]] = {}
        while True:
            candidates = None
            if words is not None:
                candidates = await index.candidates(words, after, limit + 1)
                if candidates == []:
                    break
            query = Contact.select().order_by(Contact.id)
            if candidates is not None:
                # By primary key alone: with the other conditions in SQL, the planner may
                # prefer their index and read every contact that passes them.
                query = query.where(Contact.id.is_in(candidates))
                for condition in by_fields:  # still by id: the candidates' own
                    query = query.where(condition)
                rows = [row for row in await query.run() if _passes(row, filters_of)]
            elif words is None and order.by_last_interaction:
                rows = await _by_last_interaction(
                    selection.conditions, after, after_moment, limit + 1
                )
            else:
                if words is None:
                    query = _ordered(order, after, after_moment)
                for condition in selection.conditions:
                    query = query.where(condition)
                if after and words is not None:
                    query = query.where(Contact.id > after)
                rows = await query.limit(SCAN_CHUNK if words is not None else limit + 1).run()
            if words is None:
                found = rows
                break
            await preload_keys(self.kith, [row["id"] for row in rows])
            more = await index.plugin_names([row["id"] for row in rows])
            for row in rows:
                names = await self.kith.protector.reveal(
                    row["id"], CONTACT_TABLE, row["id"], {c: row[c] for c in NAME_COLUMNS}
                )
                if name_index.matches(words, [*names.values(), *more.get(row["id"], ())]):
                    found.append(row)
                    revealed[row["id"]] = names
                    if len(found) > limit:
                        break
            if len(found) > limit:
                break
            if candidates is not None:
                if len(candidates) <= limit:
                    break
                after = candidates[-1]
            else:
                if len(rows) < SCAN_CHUNK:
                    break
                after = rows[-1]["id"]
        shown = found[:limit]
        items = await self._hydrate(shown, revealed)
        if order.key == "name":
            # Within the page only (see Order): the names are decrypted here anyway.
            ranked = sorted(
                zip(items, shown, strict=True),
                key=lambda pair: (name_index.words(pair[0].name), str(pair[0].id)),
                reverse=order.descending,
            )
            return [i for i, _ in ranked], [r for _, r in ranked], len(found) > limit
        return items, shown, len(found) > limit

    async def report_each(
        self, contact_ids: Iterable[uuid.UUID], action: str, actor: Actor, **details: Any
    ) -> None:
        """Report an access (``action``) to each of these contacts' personal data."""
        # Together, so that an audit log that commits each entry before answering commits the
        # page's entries at once rather than one after the other.
        if self.kith.database.engine.current_transaction.get() is not None:
            # In a caller's transaction the entries commit with it, and its one connection
            # runs one statement at a time.
            for contact_id in contact_ids:
                await self._report(contact_id, action, actor, **details)
        else:
            await asyncio.gather(*(self._report(i, action, actor, **details) for i in contact_ids))

    async def list(
        self,
        *,
        q: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        include_archived: bool = False,
        organization_id: uuid.UUID | None = None,
        fields: Mapping[str, str] | None = None,
        actor: Actor = SYSTEM,
        tier: str | None = None,
        tag: str | None = None,
        owner_id: uuid.UUID | None = None,
        kind: str | None = None,
        sort: str = "created",
    ) -> Page[ContactOut]:
        """Contacts in creation order (of value tier ``tier``, when given); ``q`` is an exact
        email or phone, or words that each start a word of the name (any order, any script:
        see :mod:`kith.name_index`);
        ``organization_id`` keeps the people of that organization; ``fields`` filters on
        custom field values (see :meth:`FieldService.conditions`); ``tag``, ``owner_id`` and
        ``kind`` keep the contacts with that tag, owner, kind. ``sort`` is one of
        :data:`SORTS` (see :class:`Order`). Each contact listed is reported as read
        (``list``, or ``search`` for a query)."""
        limit = check_limit(limit)
        if sort not in SORTS:
            raise InvalidInput(
                f"sort must be one of {', '.join(SORTS)}, not {sort!r}", field="sort"
            )
        order = Order(sort)
        position = order.after(cursor)
        filters = ContactFilter(
            q=q,
            include_archived=include_archived,
            organization_id=organization_id,
            fields=fields,
            tier=tier,
            tag=tag,
            owner_id=owner_id,
            kind=kind,
        )
        selection = await self.select(filters)
        after_moment, after = position if position else (None, None)
        items, rows, more = await self._page(selection, after, limit, order, after_moment)
        # A name order's pages follow creation order: the last row by id, not by name.
        last = max(rows, key=lambda row: row["id"]) if order.key == "name" and rows else None
        next_cursor = order.cursor(last or rows[-1]) if more else None
        await self.report_each(
            [item.id for item in items], "search" if filters.q else "list", actor
        )
        return Page(items=items, next_cursor=next_cursor)

    async def people(
        self,
        organization_id: uuid.UUID,
        *,
        cursor: str | None = None,
        limit: int = 50,
        include_archived: bool = False,
        actor: Actor = SYSTEM,
    ) -> Page[ContactOut]:
        """The people of an organization, in creation order, each reported as read (``list``)."""
        if not await self.exists(organization_id):
            raise NotFound(f"contact {organization_id} does not exist")
        return await self.list(
            cursor=cursor,
            limit=limit,
            include_archived=include_archived,
            organization_id=organization_id,
            actor=actor,
        )

    async def _check_organization(self, organization_id: uuid.UUID) -> None:
        org = await Contact.select(Contact.kind).where(Contact.id == organization_id).first()
        if org is None:
            raise InvalidInput(
                f"organization {organization_id} does not exist", field="organization_id"
            )
        if org["kind"] != "organization":
            raise InvalidInput(
                f"contact {organization_id} is a person, not an organization; only "
                "organizations have people",
                field="organization_id",
            )


def _new_contact_id(digests: RowDigests | None) -> uuid.UUID:
    """A new contact's id: the one its data key was made for, if it was made already."""
    if digests is not None and digests.contact_id is not None:
        return digests.contact_id
    return new_id()


def default_channel(actor: Actor) -> str:
    """The channel an access is reported under when the caller names none."""
    return {"user": "api", "plugin": "plugin"}.get(actor.kind, "system")


async def preload_keys(kith: Kith, subject_ids: list[uuid.UUID]) -> None:
    """The keys of the contacts about to be decrypted, in one round trip when the protector
    can (see kith.protection.FieldProtector)."""
    preload = getattr(kith.protector, "preload", None)
    if preload is not None and subject_ids:
        await preload(subject_ids)


def _passes(row: dict[str, Any], filters: ContactFilter) -> bool:
    """The conditions of a contact list, checked on a row read by id."""
    if row["archived"] and not filters.include_archived:
        return False
    if filters.kind is not None and row["kind"] != filters.kind:
        return False
    if filters.owner_id is not None and row["owner"] != filters.owner_id:
        return False
    if filters.tag is not None and filters.tag.strip() not in _tags_from_db(row["tags"]):
        return False
    return filters.organization_id is None or row["organization"] == filters.organization_id


def _ordered(order: Order, after: uuid.UUID | None, moment: dt.datetime | None) -> Any:
    """Contacts in ``order``'s page order, after the keyset position (``after``, and
    ``moment`` by last change)."""
    down = order.pages_descending
    query = Contact.select()
    if order.by_updated:
        query = query.order_by(Contact.updated_at, Contact.id, ascending=not down)
        if after is not None and moment is not None:
            if down:
                query = query.where(
                    (Contact.updated_at < moment)
                    | ((Contact.updated_at == moment) & (Contact.id < after))
                )
            else:
                query = query.where(
                    (Contact.updated_at > moment)
                    | ((Contact.updated_at == moment) & (Contact.id > after))
                )
        return query
    query = query.order_by(Contact.id, ascending=not down)
    if after is not None:
        query = query.where(Contact.id < after if down else Contact.id > after)
    return query


def _has_tag(tag: str) -> Any:
    """Contacts whose tags (a JSON array) hold ``tag``: on PostgreSQL a containment test the
    tags' GIN index answers, on SQLite a look into the array."""
    if Contact._meta.db.engine_type == "postgres":
        return WhereRaw(
            '"kith_contact"."tags"::jsonb @> {}::jsonb', msgspec.json.encode([tag]).decode()
        )
    return WhereRaw(
        'EXISTS (SELECT 1 FROM json_each("kith_contact"."tags") WHERE json_each.value = {})', tag
    )


def _primary_email(points: Iterable[tuple[str, str, str, bool]]) -> str | None:
    return next((v for kind, v, _, p in points if kind == "email" and p), None)


def _refuse_held(primary_email: str, holder: Any) -> None:
    """The conflict of a primary email that contact ``holder`` (None: nobody) has already."""
    if holder is not None:
        raise Conflict(
            f"contact {holder} already has {primary_email} as primary email",
            field="emails",
            existing_contact_id=str(holder),
        )


def _clean_tags(tags: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for tag in tags:
        tag = tag.strip()
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


def _tags_from_db(value: Any) -> list[str]:
    if isinstance(value, str):
        return list(msgspec.json.decode(value))
    return list(value or [])


async def _tiers_of(contact_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The value tiers of these contacts (kith.services.tiers keeps them), in one query."""
    from kith.loop_tables import ContactTier

    rows = await ContactTier.select(ContactTier.contact, ContactTier.tier).where(
        ContactTier.contact.is_in(contact_ids)
    )
    return {
        row["contact"] if isinstance(row["contact"], uuid.UUID) else uuid.UUID(row["contact"]): (
            row["tier"]
        )
        for row in rows
    }


async def _by_last_interaction(
    conditions: list[Any], after: uuid.UUID | None, moment: dt.datetime | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` contacts after the keyset position, most recent interaction first, then
    those with none (newest first). Two reads, each in the order of the index on
    ``(archived, last_interaction_at, id)``: one ``ORDER BY`` cannot put the empty ones last
    the same way on both engines and still read that index in order."""
    last = Contact.last_interaction_at
    rows: list[dict[str, Any]] = []
    if after is None or moment is not None:
        query = Contact.select().where(last.is_not_null())
        if after is not None and moment is not None:
            query = query.where((last < moment) | ((last == moment) & (Contact.id < after)))
        for condition in conditions:
            query = query.where(condition)
        rows = await query.order_by(last, Contact.id, ascending=False).limit(limit).run()
        after = None  # the contacts with none start from their first
    if len(rows) < limit:
        query = Contact.select().where(last.is_null())
        if after is not None:
            query = query.where(Contact.id < after)
        for condition in conditions:
            query = query.where(condition)
        rows += await query.order_by(Contact.id, ascending=False).limit(limit - len(rows)).run()
    return rows
