"""This plugin's part of a merge of contacts: the person's consent history, restrictions of
processing and suppression overrides follow them to the surviving contact, and go back on an
undo.

The consent ledger itself is append-only and names pseudonyms, not contacts: a merge re-links
the losers' pseudonyms to the survivor, so the survivor's history holds every event of all of
them (the latest per purpose decides, as for one contact). The survivor gets a pseudonym of its
own, newer than the others, for the events recorded after the merge, so that an undo gives the
losers back exactly their own events. Restrictions in force refuse the merge before it starts
(``kith_check_processing``); lifted ones move, their notices re-encrypted. Audit entries stay
with the contact id they were recorded for (their details stay under the loser's key, which an
erasure of the survivor destroys too).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from kith import Kith, move_subject_rows, utcnow
from kith.privacy.rights.tables import ConsentSubject, Restriction, SuppressionOverride


class Moved(msgspec.Struct, kw_only=True):
    """Rows of one loser now the survivor's: their keys."""

    contact: uuid.UUID
    pseudonyms: list[uuid.UUID] = []
    restrictions: list[uuid.UUID] = []
    overrides: list[uuid.UUID] = []


async def merge(kith: Kith, survivor: uuid.UUID, losers: list[uuid.UUID]) -> list[Any] | None:
    """Move the losers' rows to the survivor; what an undo needs, or None when they had none."""
    moved: list[Moved] = []
    for loser in losers:
        pseudonyms = await (
            ConsentSubject.update({ConsentSubject.contact: survivor})
            .where(ConsentSubject.contact == loser)
            .returning(ConsentSubject.pseudonym)
            .run()
        )
        rows = Moved(
            contact=loser,
            pseudonyms=[row["pseudonym"] for row in pseudonyms],
            restrictions=await move_subject_rows(
                kith, Restriction, Restriction.contact_id == loser, survivor
            ),
            overrides=await move_subject_rows(
                kith, SuppressionOverride, SuppressionOverride.contact_id == loser, survivor
            ),
        )
        if rows.pseudonyms or rows.restrictions or rows.overrides:
            moved.append(rows)
    if any(rows.pseudonyms for rows in moved):
        # The newest pseudonym is where the survivor's next consent events go (see the
        # module's docstring); random, like every pseudonym.
        await ConsentSubject.insert(
            ConsentSubject(pseudonym=uuid.uuid4(), contact=survivor, created_at=utcnow())
        ).run()
    return msgspec.to_builtins(moved) if moved else None


async def unmerge(kith: Kith, survivor: uuid.UUID, note: Any) -> None:
    """Move the rows :func:`merge` moved back to their contacts."""
    for rows in msgspec.convert(note or [], list[Moved]):
        if rows.pseudonyms:
            await (
                ConsentSubject.update({ConsentSubject.contact: rows.contact})
                .where(
                    ConsentSubject.pseudonym.is_in(rows.pseudonyms)
                    & (ConsentSubject.contact == survivor)
                )
                .run()
            )
        for table, ids in ((Restriction, rows.restrictions), (SuppressionOverride, rows.overrides)):
            if ids:
                await move_subject_rows(
                    kith, table, table.id.is_in(ids) & (table.contact_id == survivor), rows.contact
                )
