"""Core's part of a merge of contacts, and of its undo: the contact records, their emails and
phones, custom field values, interactions (tasks among them), name search tokens and the
people of a merged organization.

A merge moves each loser's interactions to the survivor and its emails and phones the survivor
lacks (a value both hold is kept once), re-encrypted under the survivor's key
(:func:`kith.move_subject_rows`). Names, owner, organization, primary email and phone and each
custom field take the value ``choices`` picks; without a choice the survivor's, or where it has
none, the first loser's that has one. Tags are united. People of a merged organization move to
the survivor. The losers' contact records are then deleted.

What undoing needs is returned as the merge's note (:class:`CoreNote`): every record as it
was, readable, which the merge record keeps sealed under the survivor's key. The undo puts
the records back as they were, ids included, and moves the interactions and people back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from kith import name_index
from kith.errors import Conflict, InvalidInput
from kith.events import utcnow
from kith.services import is_unique_violation
from kith.subject_moves import CHUNK, move_subject_rows
from kith.tables import Contact, ContactPoint, CustomField, CustomFieldValue, Interaction, User

if TYPE_CHECKING:
    from kith.runtime import Kith

CONTACT_TABLE = str(Contact._meta.tablename)
POINT_TABLE = str(ContactPoint._meta.tablename)
VALUE_TABLE = str(CustomFieldValue._meta.tablename)
NAME_COLUMNS = ("display_name", "given_name", "family_name")
# Choices of a contact column: the choice's name → the column.
COLUMN_CHOICES = {
    "name": "display_name",
    "given_name": "given_name",
    "family_name": "family_name",
    "owner": "owner",
    "organization": "organization",
}
POINT_CHOICES = {"primary_email": "email", "primary_phone": "phone"}
FIELD_CHOICE = "fields."


class ContactRecord(msgspec.Struct, kw_only=True):
    """One contact row as it was, its names readable."""

    id: uuid.UUID
    kind: str
    display_name: str
    given_name: str | None
    family_name: str | None
    organization: uuid.UUID | None
    owner: uuid.UUID | None
    tags: list[str]
    source: str
    archived: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class PointRecord(msgspec.Struct, kw_only=True):
    """One email or phone as it was, its value readable."""

    id: uuid.UUID
    contact: uuid.UUID
    kind: str
    value: str
    lookup: str
    label: str
    is_primary: bool
    position: int


class ValueRecord(msgspec.Struct, kw_only=True):
    """One custom field value as it was, a personal one readable in ``protected``."""

    id: uuid.UUID
    contact: uuid.UUID
    field: uuid.UUID
    value: str | None
    protected: str | None
    number: float | None
    kind: str | None
    lookup: str | None


class Moved(msgspec.Struct, kw_only=True):
    """Rows moved from one contact to the survivor: ``rows`` are their ids."""

    contact: uuid.UUID
    rows: list[uuid.UUID]


class CoreNote(msgspec.Struct, kw_only=True):
    """What undoing core's part of a merge needs."""

    survivor: ContactRecord
    losers: list[ContactRecord]
    points: list[PointRecord]
    values: list[ValueRecord]
    interactions: list[Moved]
    people: list[Moved]


def choice_names() -> tuple[str, ...]:
    """The choices core knows besides ``fields.<name>``."""
    return (*COLUMN_CHOICES, *POINT_CHOICES)


# -- reading what is there -----------------------------------------------------------------


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return list(msgspec.json.decode(value))
    return list(value or [])


async def _contacts(kith: Kith, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ContactRecord]:
    rows = await Contact.select().where(Contact.id.is_in(list(ids))).run()
    found = {}
    for row in rows:
        names = await kith.protector.reveal(
            row["id"], CONTACT_TABLE, row["id"], {c: row[c] for c in NAME_COLUMNS}
        )
        found[row["id"]] = ContactRecord(
            id=row["id"],
            kind=row["kind"],
            display_name=names["display_name"] or "",
            given_name=names["given_name"],
            family_name=names["family_name"],
            organization=row["organization"],
            owner=row["owner"],
            tags=_tags(row["tags"]),
            source=row["source"],
            archived=bool(row["archived"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
    return found


async def _points(kith: Kith, ids: Sequence[uuid.UUID]) -> list[PointRecord]:
    rows = await (
        ContactPoint.select()
        .where(ContactPoint.contact.is_in(list(ids)))
        .order_by(ContactPoint.position)
        .run()
    )
    found = []
    for row in rows:
        value = await kith.protector.reveal(
            row["contact"], POINT_TABLE, row["id"], {"value": row["value"]}
        )
        found.append(
            PointRecord(
                id=row["id"],
                contact=row["contact"],
                kind=row["kind"],
                value=value["value"] or "",
                lookup=row["lookup"],
                label=row["label"],
                is_primary=bool(row["is_primary"]),
                position=row["position"],
            )
        )
    return found


async def _values(kith: Kith, ids: Sequence[uuid.UUID]) -> list[ValueRecord]:
    rows = await CustomFieldValue.select().where(CustomFieldValue.contact.is_in(list(ids))).run()
    found = []
    for row in rows:
        protected = row["protected"]
        if protected is not None:
            protected = (
                await kith.protector.reveal(
                    row["contact"], VALUE_TABLE, row["id"], {"protected": protected}
                )
            )["protected"]
        found.append(
            ValueRecord(
                id=row["id"],
                contact=row["contact"],
                field=row["field"],
                value=row["value"],
                protected=protected,
                number=row["number"],
                kind=row["kind"],
                lookup=row["lookup"],
            )
        )
    return found


# -- merging -----------------------------------------------------------------------------


def _pick(
    records: list[ContactRecord], chosen: uuid.UUID | None, value: Any, present: Any = bool
) -> Any:
    """The value of the chosen contact; without a choice the first (survivor first) that has
    one."""
    if chosen is not None:
        return next(value(r) for r in records if r.id == chosen)
    return next((value(r) for r in records if present(value(r))), value(records[0]))


async def _merge_points(
    kith: Kith,
    survivor: uuid.UUID,
    order: list[uuid.UUID],
    points: list[PointRecord],
    choices: dict[str, uuid.UUID],
) -> None:
    mine = [p for p in points if p.contact == survivor]
    held = {(p.kind, p.value) for p in mine}
    position = max((p.position for p in mine), default=-1) + 1
    gone: list[uuid.UUID] = []
    for loser in order[1:]:
        for point in (p for p in points if p.contact == loser):
            if (point.kind, point.value) in held:
                gone.append(point.id)
                continue
            held.add((point.kind, point.value))
            await move_subject_rows(
                kith,
                ContactPoint,
                ContactPoint.id == point.id,
                survivor,
                values={"is_primary": False, "position": position},
            )
            position += 1
    if gone:
        await ContactPoint.delete().where(ContactPoint.id.is_in(gone)).run()
    for choice, kind in POINT_CHOICES.items():
        chosen = choices.get(choice)
        primaries = [p for p in points if p.kind == kind and p.is_primary]
        if chosen is not None:
            picked = next((p for p in primaries if p.contact == chosen), None)
            if picked is None:
                raise InvalidInput(
                    f"contact {chosen} has no {kind} to be the primary one",
                    field=f"choices.{choice}",
                )
        else:
            picked = next((p for contact in order for p in primaries if p.contact == contact), None)
        if picked is None:
            continue
        of_kind = (ContactPoint.contact == survivor) & (ContactPoint.kind == kind)
        # Off first: one primary email per lookup is a unique index.
        await ContactPoint.update({ContactPoint.is_primary: False}).where(of_kind).run()
        await (
            ContactPoint.update({ContactPoint.is_primary: True})
            .where(of_kind & (ContactPoint.lookup == picked.lookup))
            .run()
        )


async def _merge_values(
    kith: Kith,
    survivor: uuid.UUID,
    order: list[uuid.UUID],
    values: list[ValueRecord],
    choices: dict[str, uuid.UUID],
) -> None:
    names = {
        row["id"]: row["name"]
        for row in await CustomField.select(CustomField.id, CustomField.name).where(
            CustomField.id.is_in(list({v.field for v in values}) or [uuid.UUID(int=0)])
        )
    }
    for field, name in names.items():
        held = {v.contact: v for v in values if v.field == field}
        chosen = choices.get(f"{FIELD_CHOICE}{name}")
        if chosen is None:
            chosen = next(contact for contact in order if contact in held)
        winner = held.get(chosen)
        unwanted = [v.id for v in held.values() if v is not winner]
        if unwanted:
            await CustomFieldValue.delete().where(CustomFieldValue.id.is_in(unwanted)).run()
        if winner is not None and winner.contact != survivor:
            await move_subject_rows(
                kith, CustomFieldValue, CustomFieldValue.id == winner.id, survivor
            )


async def merge_rows(
    kith: Kith, survivor: uuid.UUID, losers: list[uuid.UUID], choices: dict[str, uuid.UUID]
) -> dict[str, Any]:
    """Merge core's rows of ``losers`` into ``survivor`` and delete the losers' records;
    returns the note an undo needs (plain data). The caller checked the ids and choices."""
    order = [survivor, *losers]
    records = await _contacts(kith, order)
    ordered = [records[contact] for contact in order]
    points = await _points(kith, order)
    values = await _values(kith, order)
    note = CoreNote(
        survivor=records[survivor],
        losers=[records[loser] for loser in losers],
        points=points,
        values=values,
        interactions=[],
        people=[],
    )
    await _merge_points(kith, survivor, order, points, choices)
    await _merge_values(kith, survivor, order, values, choices)
    for loser in losers:
        moved = await move_subject_rows(kith, Interaction, Interaction.contact == loser, survivor)
        if moved:
            note.interactions.append(Moved(contact=loser, rows=moved))
        people = await (
            Contact.update({Contact.organization: survivor})
            .where(Contact.organization == loser)
            .returning(Contact.id)
            .run()
        )
        if people:
            note.people.append(Moved(contact=loser, rows=[row["id"] for row in people]))
    plain: dict[str, str | None] = {
        "display_name": _pick(ordered, choices.get("name"), lambda r: r.display_name),
        "given_name": _pick(ordered, choices.get("given_name"), lambda r: r.given_name),
        "family_name": _pick(ordered, choices.get("family_name"), lambda r: r.family_name),
    }
    organization = _pick(ordered, choices.get("organization"), lambda r: r.organization)
    if organization in order:
        # A merged organization's own link to one of the merged: it would point at itself.
        organization = None
    tags = list(dict.fromkeys(tag for record in ordered for tag in record.tags))
    sealed = await kith.protector.protect(survivor, CONTACT_TABLE, survivor, plain)
    await (
        Contact.update(
            {
                Contact.display_name: sealed["display_name"],
                Contact.given_name: sealed["given_name"],
                Contact.family_name: sealed["family_name"],
                Contact.organization: organization,
                Contact.owner: _pick(ordered, choices.get("owner"), lambda r: r.owner),
                Contact.tags: tags,
                Contact.updated_at: utcnow(),
            }
        )
        .where(Contact.id == survivor)
        .run()
    )
    await name_index.index_row(kith, survivor, CONTACT_TABLE, survivor, plain)
    # Whatever of theirs is left (duplicate emails, values not chosen) goes with them, their
    # name tokens too (a trigger deletes them with the contact).
    await Contact.delete().where(Contact.id.is_in(losers)).run()
    return msgspec.to_builtins(note)  # type: ignore[no-any-return]


# -- undoing -----------------------------------------------------------------------------


async def _existing(table: Any, ids: Iterable[uuid.UUID | None]) -> set[uuid.UUID]:
    wanted = [i for i in set(ids) if i is not None]
    if not wanted:
        return set()
    return {row["id"] for row in await table.select(table.id).where(table.id.is_in(wanted))}


async def _restore_contact(
    kith: Kith, record: ContactRecord, owners: set[uuid.UUID]
) -> dict[Any, Any]:
    """The columns of a contact record as it was, but its organization (set once every
    merged contact exists again) and an owner who is gone since."""
    plain: dict[str, str | None] = {
        "display_name": record.display_name,
        "given_name": record.given_name,
        "family_name": record.family_name,
    }
    sealed = await kith.protector.protect(record.id, CONTACT_TABLE, record.id, plain)
    return {
        Contact.kind: record.kind,
        Contact.display_name: sealed["display_name"],
        Contact.given_name: sealed["given_name"],
        Contact.family_name: sealed["family_name"],
        Contact.organization: None,
        Contact.owner: record.owner if record.owner in owners else None,
        Contact.tags: record.tags,
        Contact.source: record.source,
        Contact.archived: record.archived,
        Contact.created_at: record.created_at,
        Contact.updated_at: record.updated_at,
    }


async def _move_back(kith: Kith, table: Any, survivor: uuid.UUID, moved: Moved) -> None:
    for start in range(0, len(moved.rows), CHUNK):
        chunk = moved.rows[start : start + CHUNK]
        await move_subject_rows(
            kith, table, table.id.is_in(chunk) & (table.contact == survivor), moved.contact
        )


async def unmerge_rows(kith: Kith, survivor: uuid.UUID, note: Any) -> None:
    """Put core's rows back as they were before the merge whose note this is."""
    state = msgspec.convert(note, CoreNote)
    records = [state.survivor, *state.losers]
    owners = await _existing(User, [r.owner for r in records])
    for record in state.losers:
        columns = await _restore_contact(kith, record, owners)
        await Contact.insert(
            Contact(id=record.id, **{column._meta.name: v for column, v in columns.items()})
        ).run()
    columns = await _restore_contact(kith, state.survivor, owners)
    await Contact.update(columns).where(Contact.id == survivor).run()
    # Links among the merged contacts too, now that they all exist; not to one gone since.
    organizations = await _existing(Contact, [r.organization for r in records])
    for record in records:
        if record.organization in organizations:
            await (
                Contact.update({Contact.organization: record.organization})
                .where(Contact.id == record.id)
                .run()
            )
    for record in records:
        await name_index.index_row(
            kith,
            record.id,
            CONTACT_TABLE,
            record.id,
            {
                "display_name": record.display_name,
                "given_name": record.given_name,
                "family_name": record.family_name,
            },
            new=record.id != survivor,
        )
    for moved in state.interactions:
        await _move_back(kith, Interaction, survivor, moved)
    for moved in state.people:
        for start in range(0, len(moved.rows), CHUNK):
            await (
                Contact.update({Contact.organization: moved.contact})
                .where(
                    Contact.id.is_in(moved.rows[start : start + CHUNK])
                    & (Contact.organization == survivor)
                )
                .run()
            )
    await _restore_points(kith, survivor, state.points)
    await _restore_values(kith, survivor, state.values)


async def _restore_points(kith: Kith, survivor: uuid.UUID, points: list[PointRecord]) -> None:
    await ContactPoint.delete().where(ContactPoint.contact == survivor).run()
    rows = []
    for point in points:
        sealed = await kith.protector.protect(
            point.contact, POINT_TABLE, point.id, {"value": point.value}
        )
        rows.append(
            ContactPoint(
                id=point.id,
                contact=point.contact,
                kind=point.kind,
                value=sealed["value"],
                # Made again: the blind index may have been re-keyed since the merge.
                lookup=kith.protector.lookup_key(point.kind, point.value),
                label=point.label,
                is_primary=point.is_primary,
                position=point.position,
            )
        )
    if not rows:
        return
    try:
        await ContactPoint.insert(*rows).run()
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict(
                "another contact has taken one of the merged contacts' primary emails since "
                "the merge; change that contact first",
                field="emails",
            ) from None
        raise


async def _restore_values(kith: Kith, survivor: uuid.UUID, values: list[ValueRecord]) -> None:
    await CustomFieldValue.delete().where(CustomFieldValue.contact == survivor).run()
    # A field purged since the merge has no values to get back.
    fields = await _existing(CustomField, [v.field for v in values])
    rows = []
    for value in values:
        if value.field not in fields:
            continue
        protected, lookup = value.protected, value.lookup
        if value.protected is not None and value.kind is not None:
            lookup = kith.protector.lookup_key(value.kind, value.protected)
        if protected is not None:
            protected = (
                await kith.protector.protect(
                    value.contact, VALUE_TABLE, value.id, {"protected": protected}
                )
            )["protected"]
        rows.append(
            CustomFieldValue(
                id=value.id,
                contact=value.contact,
                field=value.field,
                value=value.value,
                protected=protected,
                number=value.number,
                kind=value.kind,
                lookup=lookup,
            )
        )
    if rows:
        await CustomFieldValue.insert(*rows).run()
