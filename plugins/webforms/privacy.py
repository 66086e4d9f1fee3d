"""What the web forms plugin holds about people, for the personal-data registry and the
subject rights: submissions (attribution sealed under the contact's key) and opt-ins
waiting for confirmation."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import msgspec
from kith import ErasureOutcome, ExportSection, PersonalField, Purpose, move_subject_rows
from kith.plugins.webforms.tables import WebFormOptIn, WebFormSubmission

if TYPE_CHECKING:
    from kith import Kith

SOURCE = "webforms"
SUBMISSIONS = "webforms_submission"
OPT_INS = "webforms_opt_in"
SEALED = ("gclid", "yclid", "page_url", "referrer", "client_address", "user_agent")
LABELS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

MARKETING = Purpose(
    name="marketing",
    description="Sending news and offers to people who asked for them on a web form",
    lawful_basis="consent",
)

PERSONAL_FIELDS = tuple(
    PersonalField(
        table=SUBMISSIONS,
        column=column,
        category="online_identifiers",
        purposes=("customer_relationship",),
        description=description,
    )
    for column, description in (
        ("gclid", "Google Ads click id of a form submission"),
        ("yclid", "Yandex Direct click id of a form submission"),
        ("page_url", "The page a form was submitted from"),
        ("referrer", "The page that led to the form"),
        ("client_address", "The submitter's network address, truncated"),
        ("user_agent", "The submitter's browser (user agent)"),
    )
)


def _json(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


async def reveal(kith: Kith, row: dict[str, Any]) -> dict[str, Any]:
    values = {column: row[column] for column in SEALED}
    opened = await kith.protector.reveal(row["contact_id"], SUBMISSIONS, row["id"], values)
    return {**row, **opened}


async def export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    rows = await WebFormSubmission.select().where(WebFormSubmission.contact_id == contact_id)
    pending = await WebFormOptIn.select().where(WebFormOptIn.contact_id == contact_id)
    if not rows and not pending:
        return None
    submissions = []
    for row in rows:
        opened = await reveal(kith, row)
        submissions.append(
            {
                "id": str(row["id"]),
                "form_id": row["form_id"],
                "interaction_id": str(row["interaction_id"]),
                "submitted_at": row["submitted_at"].isoformat(),
                **{column: opened[column] for column in (*LABELS, *SEALED)},
            }
        )
    opt_ins = [
        {
            "id": str(row["id"]),
            "form_id": row["form_id"],
            "purposes": [purpose["name"] for purpose in _json(row["purposes"])],
            "expires_at": row["expires_at"].isoformat(),
            "confirmed_at": row["confirmed_at"].isoformat() if row["confirmed_at"] else None,
        }
        for row in pending
    ]
    return ExportSection(
        source=SOURCE,
        description="Web forms you submitted",
        tables={SUBMISSIONS: submissions, OPT_INS: opt_ins},
        descriptions={
            SUBMISSIONS: "Each form you sent: where from, the campaign, your browser",
            OPT_INS: "Consent you were asked to confirm by email",
        },
    )


async def erase(contact_id: uuid.UUID, *, dry_run: bool = False) -> list[ErasureOutcome]:
    outcomes = []
    for table, location in ((WebFormSubmission, SUBMISSIONS), (WebFormOptIn, OPT_INS)):
        where = table.contact_id == contact_id  # type: ignore[attr-defined]
        count = await table.count().where(where).run()
        if count and not dry_run:
            await table.delete().where(where).run()
        method = "deleted" if count else "not_present"
        outcomes.append(
            ErasureOutcome(source=SOURCE, location=location, method=method, count=count)
        )
    return outcomes


async def merge(kith: Kith, survivor: uuid.UUID, losers: list[uuid.UUID]) -> Any:
    moved: dict[str, dict[str, list[str]]] = {}
    for loser in losers:
        for table, location in ((WebFormSubmission, SUBMISSIONS), (WebFormOptIn, OPT_INS)):
            where = table.contact_id == loser  # type: ignore[attr-defined]
            ids = await move_subject_rows(kith, table, where, survivor)
            if ids:
                moved.setdefault(str(loser), {})[location] = [str(i) for i in ids]
    return moved or None


async def unmerge(kith: Kith, survivor: uuid.UUID, note: Any) -> None:
    for loser, tables in (note or {}).items():
        for table, location in ((WebFormSubmission, SUBMISSIONS), (WebFormOptIn, OPT_INS)):
            ids = [uuid.UUID(i) for i in tables.get(location, [])]
            if ids:
                where = table.id.is_in(ids) & (table.contact_id == survivor)  # type: ignore[attr-defined]
                await move_subject_rows(kith, table, where, uuid.UUID(loser))
