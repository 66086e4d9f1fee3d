"""Who was merged into whom: the lookups reads and erasure make in the merge records."""

from __future__ import annotations

import uuid
from typing import Any

from kith.tables import Merge, MergedContact

# Merges whose losers are gone into their survivor (not undone).
MERGED_STATES = ("done", "closed")


async def merged_into(contact_id: uuid.UUID) -> dict[str, Any] | None:
    """The merge that merged ``contact_id`` away (its ``id`` and ``survivor``), or None."""
    row = await (
        MergedContact.select(MergedContact.merge.id, MergedContact.merge.survivor)
        .where(
            (MergedContact.contact_id == contact_id)
            & MergedContact.merge.state.is_in(list(MERGED_STATES))
        )
        .first()
        .run()
    )
    if row is None:
        return None
    return {"id": row["merge.id"], "survivor": row["merge.survivor"]}


async def merged_subjects(survivor: uuid.UUID) -> list[uuid.UUID]:
    """Every contact merged into ``survivor``, directly or through a contact merged into it
    (a contact merged into one that was merged itself later), in no particular order."""
    found: list[uuid.UUID] = []
    frontier = [survivor]
    seen = {survivor}
    while frontier:
        rows = await (
            MergedContact.select(MergedContact.contact_id)
            .where(
                MergedContact.merge.survivor.is_in(frontier)
                & MergedContact.merge.state.is_in(list(MERGED_STATES))
            )
            .run()
        )
        frontier = [row["contact_id"] for row in rows if row["contact_id"] not in seen]
        seen.update(frontier)
        found += frontier
    return found


async def records_about(contact_id: uuid.UUID) -> list[uuid.UUID]:
    """The ids of every merge record naming the contact, or a contact merged into it, as
    survivor or as loser: what an erasure of the contact deletes."""
    subjects = [contact_id, *await merged_subjects(contact_id)]
    as_survivor = await Merge.select(Merge.id).where(Merge.survivor.is_in(subjects)).run()
    as_loser = await (
        MergedContact.select(MergedContact.merge).where(MergedContact.contact_id.is_in(subjects))
    ).run()
    return sorted({row["id"] for row in as_survivor} | {row["merge"] for row in as_loser})
