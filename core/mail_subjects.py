"""Core answers for the email it has queued about a data subject (``kith_mail``), through the
same hooks as the plugins (registered like :mod:`kith.import_jobs`): an access request lists it,
an erasure deletes it (a message not yet sent is then never sent), a merge moves it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from kith.hookspecs import hookimpl
from kith.subject_moves import move_subject_rows
from kith.subjects import ErasureOutcome, ExportSection
from kith.tables import Mail

if TYPE_CHECKING:
    from kith.runtime import Kith

PLUGIN_NAME = "kith.mail"
SOURCE = "kith"
LOCATION = "kith_mail"


async def _outcome(contact_id: uuid.UUID) -> list[ErasureOutcome]:
    count = await Mail.count().where(Mail.contact_id == contact_id).run()
    method = "deleted" if count else "not_present"
    return [ErasureOutcome(source=SOURCE, location=LOCATION, method=method, count=count)]


@hookimpl
async def kith_subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    rows = await Mail.select().where(Mail.contact_id == contact_id).order_by(Mail.id).run()
    if not rows:
        return None
    out = []
    for row in rows:
        values = {c: row[c] for c in ("recipient", "subject", "body", "html")}
        if row["state"] != "sent":
            values = await kith.protector.reveal(contact_id, LOCATION, row["id"], values)
        out.append(
            {
                "id": str(row["id"]),
                "state": row["state"],
                "created_at": row["created_at"].isoformat(),
                "sent_at": row["sent_at"].isoformat() if row["sent_at"] else None,
                **values,
            }
        )
    return ExportSection(
        source=SOURCE,
        description="Email sent or to be sent to you",
        tables={LOCATION: out},
        descriptions={LOCATION: "Emails; the content of a sent email is not kept"},
    )


@hookimpl
async def kith_subject_erase_preview(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    return await _outcome(contact_id)


@hookimpl
async def kith_subject_erase(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    outcome = await _outcome(contact_id)
    await Mail.delete().where(Mail.contact_id == contact_id).run()
    return outcome


@hookimpl
async def kith_subject_merge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    choices: dict[str, uuid.UUID],
) -> Any:
    moved: dict[str, list[str]] = {}
    for loser in losers:
        ids = await move_subject_rows(kith, Mail, Mail.contact_id == loser, survivor)
        if ids:
            moved[str(loser)] = [str(i) for i in ids]
    return moved or None


@hookimpl
async def kith_subject_unmerge(
    kith: Kith, merge_id: uuid.UUID, survivor: uuid.UUID, losers: list[uuid.UUID], note: Any
) -> None:
    for loser, ids in (note or {}).items():
        where = Mail.id.is_in([uuid.UUID(i) for i in ids]) & (Mail.contact_id == survivor)
        await move_subject_rows(kith, Mail, where, uuid.UUID(loser))
