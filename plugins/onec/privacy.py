"""What the 1C plugin answers for one data subject: its purpose, 1C as a recipient, the links
and order details about a contact (access requests, erasure, merges), and Art. 19 notices."""

from __future__ import annotations

import uuid
from typing import Any

from kith import (
    ErasureOutcome,
    ExportSection,
    Kith,
    Purpose,
    Recipient,
    RecipientNotice,
    move_subject_rows,
    new_id,
    utcnow,
)
from kith.plugins.onec.settings import onec_settings
from kith.plugins.onec.tables import OnecConflict, OnecLink, OnecNotice, OnecOrder

SOURCE = "onec"
PURPOSE = "accounting"

ACCOUNTING_PURPOSE = Purpose(
    name=PURPOSE,
    description="Keeping customers and their orders in step with the firm's accounting "
    "system (1C:Enterprise)",
    lawful_basis="contract",
    owner=SOURCE,
)

ONEC_RECIPIENT = Recipient(
    name="1C:Enterprise",
    description="The firm's 1C accounting base: it receives organizations and people made in "
    "Kith (names, tax ids, addresses, emails and phones) and their orders, through the "
    "CommerceML exchange and the OData interface",
    categories=("identity", "contact_details", "orders"),
    purposes=(PURPOSE,),
    owner=SOURCE,
)


async def export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    """Which 1C records the contact is linked to, their orders' details and sync conflicts."""
    links = await OnecLink.select(
        OnecLink.kind, OnecLink.onec_id, OnecLink.state, OnecLink.updated_at
    ).where(OnecLink.contact_id == contact_id)
    orders = await OnecOrder.select(
        OnecOrder.id,
        OnecOrder.onec_id,
        OnecOrder.operation,
        OnecOrder.number,
        OnecOrder.amount,
        OnecOrder.currency,
        OnecOrder.status,
        OnecOrder.paid,
        OnecOrder.shipped,
        OnecOrder.cancelled,
        OnecOrder.deleted,
        OnecOrder.lines,
    ).where(OnecOrder.contact_id == contact_id)
    conflicts = await OnecConflict.select(
        OnecConflict.onec_id, OnecConflict.field, OnecConflict.winner, OnecConflict.created_at
    ).where(OnecConflict.contact_id == contact_id)
    if not (links or orders or conflicts):
        return None
    for row in orders:
        row["id"] = str(row["id"])
        row["amount"] = None if row["amount"] is None else str(row["amount"])
    return ExportSection(
        source=SOURCE,
        description="What the 1C accounting sync holds about you: which 1C records you are, "
        "the details of your orders, and which of your details 1C and Kith disagreed on",
        tables={
            "onec_links": list(links),
            "onec_orders": list(orders),
            "onec_conflicts": list(conflicts),
        },
    )


async def erase(contact_id: uuid.UUID, dry_run: bool = False) -> list[ErasureOutcome]:
    """Links stay, marked erased (so that 1C's next file does not bring the person back), and
    hold no personal data; order details stay under the legal hold with the orders (goods and
    sums, no person); conflict records go."""
    links = int(await OnecLink.count().where(OnecLink.contact_id == contact_id))
    orders = int(await OnecOrder.count().where(OnecOrder.contact_id == contact_id))
    conflicts = int(await OnecConflict.count().where(OnecConflict.contact_id == contact_id))
    if not dry_run:
        await OnecLink.update(
            {OnecLink.state: "erased", OnecLink.synced: {}, OnecLink.digest: ""}
        ).where(OnecLink.contact_id == contact_id)
        await OnecConflict.delete().where(OnecConflict.contact_id == contact_id)
    outcomes = [
        ErasureOutcome(
            source=SOURCE,
            location="onec_link",
            method="anonymised" if links else "not_present",
            count=links,
        ),
        ErasureOutcome(
            source=SOURCE,
            location="onec_conflict",
            method="deleted" if conflicts else "not_present",
            count=conflicts,
        ),
    ]
    if orders:
        outcomes.append(
            ErasureOutcome(
                source=SOURCE,
                location="onec_order",
                method="legal_hold",
                count=orders,
                ground="orders are accounting records kept for tax law; they hold goods and "
                "sums, no personal data",
            )
        )
    return outcomes


async def _linked(contact_id: uuid.UUID) -> list[str]:
    rows = await OnecLink.select(OnecLink.onec_id).where(
        (OnecLink.contact_id == contact_id) & (OnecLink.kind == "counterparty")
    )
    return sorted(row["onec_id"] for row in rows)


def _not_linked() -> RecipientNotice:
    return RecipientNotice(
        outcome="not_applicable", detail="this contact was never exchanged with 1C"
    )


async def notify_preview(recipient: Recipient, contact_id: uuid.UUID) -> RecipientNotice | None:
    if recipient.owner != SOURCE:
        return None
    linked = await _linked(contact_id)
    if not linked:
        return _not_linked()
    return RecipientNotice(
        outcome="done", detail="1C would be told of it for each linked record", count=len(linked)
    )


async def notify(
    kith: Kith, recipient: Recipient, action: str, contact_id: uuid.UUID, notice_id: uuid.UUID
) -> RecipientNotice | None:
    """Art. 19: queue the notice for every 1C record linked to the contact, once per notice
    id. Restrictions are not sent: 1C has no such state; the notice says so."""
    if recipient.owner != SOURCE:
        return None
    linked = await _linked(contact_id)
    if not linked:
        return _not_linked()
    if action not in ("rectification", "erasure"):
        return RecipientNotice(
            outcome="not_applicable",
            detail=f"1C keeps no {action.replace('_', ' ')} state; nothing is sent",
        )
    queued = {
        row["onec_id"]
        for row in await OnecNotice.select(OnecNotice.onec_id).where(
            OnecNotice.notice_id == notice_id
        )
    }
    now = utcnow()
    new = [
        OnecNotice(id=new_id(), notice_id=notice_id, onec_id=onec_id, action=action, created_at=now)
        for onec_id in linked
        if onec_id not in queued
    ]
    if new:
        await OnecNotice.insert(*new)
    how = "over OData" if onec_settings(kith).odata_url else "in the next exchange's reply"
    return RecipientNotice(outcome="done", detail=f"queued for 1C, sent {how}", count=len(linked))


async def merge(kith: Kith, survivor: uuid.UUID, losers: list[uuid.UUID]) -> dict[str, Any] | None:
    """A merged contact's links, orders and conflicts become the survivor's."""
    moved: dict[str, Any] = {}
    for loser in losers:
        ids: list[str] = []
        for table in (OnecLink, OnecOrder, OnecConflict):
            rows = await move_subject_rows(kith, table, table.contact_id == loser, survivor)
            ids += [str(i) for i in rows]
        await OnecLink.update({OnecLink.kith_id: survivor}).where(
            (OnecLink.kith_id == loser) & (OnecLink.kind == "counterparty")
        )
        if ids:
            moved[str(loser)] = ids
    return moved or None


async def unmerge(kith: Kith, survivor: uuid.UUID, note: dict[str, Any] | None) -> None:
    for loser, ids in (note or {}).items():
        wanted = [uuid.UUID(i) for i in ids]
        loser_id = uuid.UUID(loser)
        for table in (OnecLink, OnecOrder, OnecConflict):
            await move_subject_rows(
                kith, table, table.id.is_in(wanted) & (table.contact_id == survivor), loser_id
            )
        await OnecLink.update({OnecLink.kith_id: loser_id}).where(
            OnecLink.id.is_in(wanted) & (OnecLink.kind == "counterparty")
        )
