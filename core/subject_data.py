"""What core holds about one data subject, answered through the hooks every plugin answers.

Core holds the contact, its emails and phones (with their blind indexes), its custom field
values, its interactions and the events about it in the outbox. An access request exports them
(``kith_subject_export``); an erasure deletes them (``kith_subject_erase``, previewed by
``kith_subject_erase_preview``), except interactions a legal hold keeps (``kith_subject_holds``):
those are re-encrypted under the hold's own key, and the contact stays as a nameless shell while
any are kept. Merges of duplicate contacts move all of it to the survivor
(``kith_subject_merge``, undone by ``kith_subject_unmerge``: :mod:`kith.merging`); erasing a
survivor also deletes the merge records about it and the settled events of the contacts merged
into it.

The plugin manager registers this module under the name ``kith``, after every plugin, so
plugins whose rows refer to the contact erase them first.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from kith import merge_records, merging, name_index
from kith.events import utcnow
from kith.hookspecs import hookimpl
from kith.subjects import ErasureOutcome, ExportSection, Row, RowPages, SubjectHold
from kith.tables import (
    Contact,
    ContactPoint,
    CustomFieldValue,
    DuplicatePair,
    Interaction,
    Merge,
    NameToken,
)

if TYPE_CHECKING:
    from kith.runtime import Kith

SOURCE = "kith"
PLUGIN_NAME = "kith"
PAGE = 500
ERASED_NAME = "[erased]"
NAME_COLUMNS = ("display_name", "given_name", "family_name")

DESCRIPTIONS = {
    "contact": "Your contact record: name, kind, tags, where it came from, when it changed",
    "contact_points": "Your email addresses and phone numbers",
    "custom_fields": "Further details the firm records about you, in fields it declared",
    "interactions": "Your timeline: calls, emails, meetings, notes, form submissions, orders, "
    "tasks",
    "duplicate_pairs": "Other records of the CRM found to look like yours (a possible duplicate): "
    "how alike, why, and whether staff decided it is not you",
}


# -- export --------------------------------------------------------------------------------


async def _contact_rows(kith: Kith, contact_id: uuid.UUID) -> list[Row]:
    row = await Contact.select().where(Contact.id == contact_id).first().run()
    if row is None:
        return []
    names = await kith.protector.reveal(
        contact_id,
        Contact._meta.tablename,
        contact_id,
        {column: row[column] for column in NAME_COLUMNS},
    )
    tags = row["tags"]
    if isinstance(tags, str):
        tags = msgspec.json.decode(tags)
    return [
        {
            "id": str(row["id"]),
            "kind": row["kind"],
            "name": names["display_name"],
            "given_name": names["given_name"],
            "family_name": names["family_name"],
            "organization_id": str(row["organization"]) if row["organization"] else None,
            "tags": list(tags or []),
            "source": row["source"],
            "archived": bool(row["archived"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
    ]


async def _point_rows(kith: Kith, contact_id: uuid.UUID) -> list[Row]:
    rows = await (
        ContactPoint.select()
        .where(ContactPoint.contact == contact_id)
        .order_by(ContactPoint.position)
        .run()
    )
    found = []
    for row in rows:
        value = (
            await kith.protector.reveal(
                contact_id, ContactPoint._meta.tablename, row["id"], {"value": row["value"]}
            )
        )["value"]
        found.append(
            {
                "kind": row["kind"],
                "value": value,
                "label": row["label"],
                "primary": bool(row["is_primary"]),
            }
        )
    return found


async def _custom_field_rows(kith: Kith, contact_id: uuid.UUID) -> list[Row]:
    """Every custom field value held, archived fields' too: the person is owed all of it."""
    rows = await (
        CustomFieldValue.select(
            CustomFieldValue.id,
            CustomFieldValue.value,
            CustomFieldValue.protected,
            CustomFieldValue.field.name,
            CustomFieldValue.field.label,
        )
        .where(CustomFieldValue.contact == contact_id)
        .order_by(CustomFieldValue.field.name)
        .run()
    )
    found = []
    for row in rows:
        value = row["value"]
        if row["protected"] is not None:
            value = (
                await kith.protector.reveal(
                    contact_id,
                    CustomFieldValue._meta.tablename,
                    row["id"],
                    {"protected": row["protected"]},
                )
            )["protected"]
        found.append({"field": row["field.name"], "label": row["field.label"], "value": value})
    return found


def _interaction_pages(kith: Kith, contact_id: uuid.UUID, count: int) -> RowPages:
    table = Interaction._meta.tablename

    async def pages() -> AsyncIterator[list[Row]]:
        after: uuid.UUID | None = None
        while True:
            query = Interaction.select().where(Interaction.contact == contact_id)
            if after is not None:
                query = query.where(Interaction.id > after)
            rows = await query.order_by(Interaction.id).limit(PAGE).run()
            if not rows:
                return
            page = []
            for row in rows:
                text = await kith.protector.reveal(
                    row["contact"],
                    table,
                    row["id"],
                    {"summary": row["summary"], "body": row["body"]},
                )
                page.append(
                    {
                        "id": str(row["id"]),
                        "kind": row["kind"],
                        "direction": row["direction"],
                        "occurred_at": row["occurred_at"],
                        "summary": text["summary"],
                        "body": text["body"],
                        "channel": row["channel"],
                        "duration_s": row["duration_s"],
                        "amount": None if row["amount"] is None else str(row["amount"]),
                        "source": row["source"],
                        "external_id": row["external_id"],
                        "due_at": row["due_at"],
                        "done_at": row["done_at"],
                        "created_at": row["created_at"],
                    }
                )
            yield page
            after = rows[-1]["id"]
            if len(rows) < PAGE:
                return

    return RowPages(count=count, pages=pages)


async def _duplicate_rows(contact_id: uuid.UUID) -> list[Row]:
    """The pairs a duplicate scan found with this person: what was found and decided, not who
    the other contact is (that is someone else's record)."""
    rows = await (
        DuplicatePair.select(
            DuplicatePair.score,
            DuplicatePair.reasons,
            DuplicatePair.status,
            DuplicatePair.found_at,
            DuplicatePair.decided_at,
        )
        .where(_pairs_of(contact_id))
        .order_by(DuplicatePair.found_at)
        .run()
    )
    return [
        {
            "score": row["score"],
            "reasons": list(
                msgspec.json.decode(row["reasons"])
                if isinstance(row["reasons"], str)
                else row["reasons"] or []
            ),
            "status": row["status"],
            "found_at": row["found_at"],
            "decided_at": row["decided_at"],
        }
        for row in rows
    ]


@hookimpl(trylast=True)
async def kith_subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    contact = await _contact_rows(kith, contact_id)
    if not contact:
        return None
    interactions = await Interaction.count().where(Interaction.contact == contact_id).run()
    tables: dict[str, list[Row] | RowPages] = {
        "contact": contact,
        "contact_points": await _point_rows(kith, contact_id),
    }
    # Only where the firm records custom fields about this person.
    custom = await _custom_field_rows(kith, contact_id)
    if custom:
        tables["custom_fields"] = custom
    tables["interactions"] = _interaction_pages(kith, contact_id, int(interactions))
    pairs = await _duplicate_rows(contact_id)
    if pairs:
        tables["duplicate_pairs"] = pairs
    return ExportSection(
        source=SOURCE,
        description="What the CRM holds about you: your contact record, your emails and phones, "
        "further details in custom fields, and your timeline",
        tables=tables,
        descriptions=dict(DESCRIPTIONS),
    )


# -- erasure -------------------------------------------------------------------------------


async def holds_of(kith: Kith, contact_id: uuid.UUID) -> list[SubjectHold]:
    """What the plugins' legal holds keep of this subject (``kith_subject_holds``)."""
    plugins = kith.plugins
    if plugins is None or not plugins.implements("kith_subject_holds"):
        return []
    found: list[SubjectHold] = []
    for result in await plugins.call_async("kith_subject_holds", kith=kith, contact_id=contact_id):
        found += [hold for hold in result.value if isinstance(hold, SubjectHold)]
    return found


def _held(contact_id: uuid.UUID, hold: SubjectHold) -> Any:
    condition = (Interaction.contact == contact_id) & Interaction.kind.is_in(list(hold.kinds))
    if hold.since is not None:
        condition &= Interaction.occurred_at >= hold.since
    return condition


@dataclass
class _Counts:
    points: int
    custom: int
    interactions: int
    held: int
    contact: int
    events: int
    deliveries: int
    name_tokens: int
    merges: int
    duplicate_pairs: int


def _pairs_of(contact_id: uuid.UUID) -> Any:
    return (DuplicatePair.contact_a == contact_id) | (DuplicatePair.contact_b == contact_id)


def _kept_event_names(kith: Kith) -> list[str]:
    return sorted(name for name, event_type in kith.event_types.items() if event_type.evidence)


async def _counts(kith: Kith, contact_id: uuid.UUID, holds: list[SubjectHold]) -> _Counts:
    held: set[Any] = set()
    for hold in holds:
        held |= {
            row["id"]
            for row in await Interaction.select(Interaction.id).where(_held(contact_id, hold))
        }
    total = await Interaction.count().where(Interaction.contact == contact_id).run()
    events = deliveries = 0
    for subject in [contact_id, *await merge_records.merged_subjects(contact_id)]:
        found = await kith.bus.outbox.subject_counts(subject, _kept_event_names(kith))
        events, deliveries = events + found[0], deliveries + found[1]
    return _Counts(
        points=int(await ContactPoint.count().where(ContactPoint.contact == contact_id).run()),
        custom=int(
            await CustomFieldValue.count().where(CustomFieldValue.contact == contact_id).run()
        ),
        interactions=int(total) - len(held),
        held=len(held),
        contact=int(await Contact.count().where(Contact.id == contact_id).run()),
        events=events,
        deliveries=deliveries,
        name_tokens=int(await NameToken.count().where(NameToken.contact == contact_id).run()),
        merges=len(await merge_records.records_about(contact_id)),
        duplicate_pairs=int(await DuplicatePair.count().where(_pairs_of(contact_id)).run()),
    )


def _outcomes(counts: _Counts) -> list[ErasureOutcome]:
    contact_method = "deleted"
    ground = None
    if counts.held and counts.contact:
        contact_method = "anonymised"
        ground = (
            "kept as a nameless shell for the records under legal hold: name, tags, owner and "
            "organization link erased"
        )
    events_ground = "ids only; events still being delivered are left to finish"
    return [
        ErasureOutcome(
            source=SOURCE, location="kith_contact_point", method="deleted", count=counts.points
        ),
        ErasureOutcome(
            source=SOURCE,
            location="blind indexes (kith_contact_point.lookup)",
            method="deleted",
            count=counts.points,
        ),
        ErasureOutcome(
            source=SOURCE,
            location="kith_custom_field_value",
            method="deleted",
            count=counts.custom,
        ),
        ErasureOutcome(
            source=SOURCE,
            location="name search index (kith_name_token)",
            method="deleted",
            count=counts.name_tokens,
        ),
        ErasureOutcome(
            source=SOURCE,
            location="duplicate pairs (kith_duplicate_pair)",
            method="deleted",
            count=counts.duplicate_pairs,
        ),
        ErasureOutcome(
            source=SOURCE,
            location="kith_interaction",
            method="deleted",
            count=counts.interactions,
        ),
        ErasureOutcome(
            source=SOURCE,
            location="kith_contact",
            method=contact_method,  # type: ignore[arg-type]
            count=counts.contact,
            ground=ground,
        ),
        ErasureOutcome(
            source=SOURCE,
            location="kith_event",
            method="deleted",
            count=counts.events,
            ground=events_ground,
        ),
        ErasureOutcome(
            source=SOURCE,
            location="kith_event_delivery",
            method="deleted",
            count=counts.deliveries,
        ),
        ErasureOutcome(
            source=SOURCE,
            location="kith_merge (merges and what undoing them needed)",
            method="deleted",
            count=counts.merges,
            ground="the records of merges into or of this contact, with the merged contacts' "
            "data kept for an undo",
        ),
    ]


@hookimpl(trylast=True)
async def kith_subject_erase_preview(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    return _outcomes(await _counts(kith, contact_id, await holds_of(kith, contact_id)))


async def _seal(kith: Kith, contact_id: uuid.UUID, hold: SubjectHold) -> list[Any]:
    """Re-encrypt the interactions a hold keeps under the hold's key; returns their ids."""
    table = Interaction._meta.tablename
    rows = await Interaction.select(Interaction.id, Interaction.summary, Interaction.body).where(
        _held(contact_id, hold)
    )
    for row in rows:
        text = await kith.protector.reveal(
            contact_id, table, row["id"], {"summary": row["summary"], "body": row["body"]}
        )
        sealed = await kith.protector.protect(hold.seal_for, table, row["id"], text)
        await (
            Interaction.update(
                {Interaction.summary: sealed["summary"], Interaction.body: sealed["body"]}
            )
            .where(Interaction.id == row["id"])
            .run()
        )
    return [row["id"] for row in rows]


@hookimpl(trylast=True)
async def kith_subject_erase(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    holds = await holds_of(kith, contact_id)
    counts = await _counts(kith, contact_id, holds)
    kept: list[Any] = []
    for hold in holds:
        kept += await _seal(kith, contact_id, hold)
    await ContactPoint.delete().where(ContactPoint.contact == contact_id).run()
    await CustomFieldValue.delete().where(CustomFieldValue.contact == contact_id).run()
    # The token table has no foreign key to take them with the contact, and a shell kept for
    # a legal hold is not deleted anyway.
    await name_index.forget_subject(contact_id)
    # Ids and scores only, but they say whom the person resembled; a shell keeps none.
    await DuplicatePair.delete().where(_pairs_of(contact_id)).run()
    remove = Interaction.contact == contact_id
    if kept:
        remove &= Interaction.id.not_in(kept)
    await Interaction.delete().where(remove).run()
    merged = await merge_records.merged_subjects(contact_id)
    for subject in [contact_id, *merged]:
        await kith.bus.outbox.purge_subject(subject, _kept_event_names(kith))
    merges = await merge_records.records_about(contact_id)
    if merges:
        await Merge.delete().where(Merge.id.is_in(merges)).run()
    if kept:
        # The shell's name reads "[erased]" under the hold's key while the records are kept.
        names = await kith.protector.protect(
            holds[0].seal_for, Contact._meta.tablename, contact_id, {"display_name": ERASED_NAME}
        )
        await (
            Contact.update(
                {
                    Contact.display_name: names["display_name"],
                    Contact.given_name: None,
                    Contact.family_name: None,
                    Contact.tags: [],
                    Contact.owner: None,
                    Contact.organization: None,
                    Contact.archived: True,
                    Contact.updated_at: utcnow(),
                }
            )
            .where(Contact.id == contact_id)
            .run()
        )
    else:
        # People of an erased organization stay, unlinked (the foreign key sets it to NULL).
        await Contact.delete().where(Contact.id == contact_id).run()
    return _outcomes(counts)


# -- merging -------------------------------------------------------------------------------


@hookimpl(trylast=True)
async def kith_subject_merge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    choices: dict[str, uuid.UUID],
) -> dict[str, Any]:
    # Last: the plugins move their rows while the losers still exist; core then deletes them.
    return await merging.merge_rows(kith, survivor, losers, choices)


@hookimpl(tryfirst=True)
async def kith_subject_unmerge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    note: Any,
) -> None:
    # First: the losers' records exist again before the plugins move rows back to them.
    if note is not None:
        await merging.unmerge_rows(kith, survivor, note)
