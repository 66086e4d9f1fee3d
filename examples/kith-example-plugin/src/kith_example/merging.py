"""The welcome list when duplicate contacts are merged into one: one row per person.

The survivor's row stays as it is; when it has none, the first loser's row moves to it (its
note sealed again under the survivor's key: ``kith.move_subject_rows``). The other losers' rows
are removed, and what undoing needs, their notes readable, goes into the merge's note, which
Kith keeps encrypted under the survivor's key until the undo window closes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from kith import Kith, move_subject_rows

from kith_example.tables import Welcome
from kith_example.welcomes import TABLE, open_note


class RemovedWelcome(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    contact_id: uuid.UUID
    event_id: uuid.UUID
    created_at: dt.datetime
    welcomed_at: dt.datetime | None
    note: str | None


class MergeNote(msgspec.Struct, kw_only=True):
    moved: list[uuid.UUID] = []
    # Whose row moved: it goes back to that contact.
    moved_from: uuid.UUID | None = None
    removed: list[RemovedWelcome] = []


async def merge(kith: Kith, survivor: uuid.UUID, losers: list[uuid.UUID]) -> Any:
    """Answer ``kith_subject_merge``: what undoing needs, or None when no loser had a row."""
    rows = await Welcome.select().where(Welcome.contact_id.is_in(losers)).run()
    if not rows:
        return None
    note = MergeNote()
    by_contact = {row["contact_id"]: row for row in rows}
    if not await Welcome.exists().where(Welcome.contact_id == survivor).run():
        first = next(loser for loser in losers if loser in by_contact)
        note.moved = await move_subject_rows(kith, Welcome, Welcome.contact_id == first, survivor)
        note.moved_from = first
        del by_contact[first]
    for row in by_contact.values():
        note.removed.append(
            RemovedWelcome(
                id=row["id"],
                contact_id=row["contact_id"],
                event_id=row["event_id"],
                created_at=row["created_at"],
                welcomed_at=row["welcomed_at"],
                note=await open_note(kith, row),
            )
        )
    if note.removed:
        await Welcome.delete().where(Welcome.id.is_in([r.id for r in note.removed])).run()
    return msgspec.to_builtins(note)


async def unmerge(kith: Kith, survivor: uuid.UUID, note: Any) -> None:
    """Answer ``kith_subject_unmerge``: the rows are back with the contacts they were on."""
    if note is None:
        return
    state = msgspec.convert(note, MergeNote)
    if state.moved and state.moved_from is not None:
        await move_subject_rows(
            kith,
            Welcome,
            Welcome.id.is_in(state.moved) & (Welcome.contact_id == survivor),
            state.moved_from,
        )
    for removed in state.removed:
        sealed: str | None = None
        if removed.note is not None:
            # Sealed again under the person's own key, for its own row.
            sealed = (
                await kith.protector.protect(
                    removed.contact_id, TABLE, removed.id, {"note": removed.note}
                )
            )["note"]
        await Welcome.insert(
            Welcome(
                id=removed.id,
                contact_id=removed.contact_id,
                event_id=removed.event_id,
                created_at=removed.created_at,
                welcomed_at=removed.welcomed_at,
                note=sealed,
            )
        ).run()
