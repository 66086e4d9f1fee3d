"""What the webhooks plugin answers for one data subject: its purpose, its recipients, and the
deliveries about a contact (for access requests and erasure)."""

from __future__ import annotations

import uuid
from typing import Any

from kith import (
    Conflict,
    ErasureOutcome,
    ExportSection,
    Kith,
    PersonalField,
    Purpose,
    Recipient,
    RecipientNotice,
    move_subject_rows,
)
from kith.plugins.webhooks.consent import PURPOSE
from kith.plugins.webhooks.tables import WebhookDelivery

SOURCE = "webhooks"
TABLE = str(WebhookDelivery._meta.tablename)
RESPONSE_TEXT = "response_text"

RESPONSE_FIELD = PersonalField(
    table=TABLE,
    column=RESPONSE_TEXT,
    category="communications",
    purposes=(PURPOSE,),
    description="The start of a webhook receiver's last answer to a delivery about the contact "
    "(another system's text, which may quote the person)",
    owner=SOURCE,
)

WEBHOOK_PURPOSE = Purpose(
    name=PURPOSE,
    description="Passing a contact's details to other systems through outgoing webhooks whose "
    "subscription allows personal data",
    lawful_basis="consent",
    owner=SOURCE,
)

WEBHOOK_RECIPIENT = Recipient(
    name="webhook receivers",
    description="HTTP endpoints subscribed with `kith webhooks add` or /api/webhooks. They get "
    "ids only, unless their subscription allows personal data; then the contact's name, "
    "emails and phones and the interaction's text",
    categories=("identity", "contact_details", "communications"),
    purposes=(PURPOSE,),
    owner=SOURCE,
)


async def seal_response(
    kith: Kith, contact_id: uuid.UUID | None, delivery_id: uuid.UUID, text: str | None
) -> str | None:
    """The stored form of a receiver's answer: sealed under the contact's key. Not kept at all
    for a delivery about nobody (there is no key to seal it with) or about a contact whose key
    was destroyed."""
    if text is None or contact_id is None:
        return None
    try:
        sealed = await kith.protector.protect(contact_id, TABLE, delivery_id, {RESPONSE_TEXT: text})
    except Conflict:
        return None
    return sealed[RESPONSE_TEXT]


async def open_response(
    kith: Kith, contact_id: uuid.UUID | None, delivery_id: uuid.UUID, stored: str | None
) -> str | None:
    """A receiver's answer as it was sealed (``[erased]`` once the contact's key is gone)."""
    if stored is None or contact_id is None:
        return None
    opened = await kith.protector.reveal(contact_id, TABLE, delivery_id, {RESPONSE_TEXT: stored})
    return opened[RESPONSE_TEXT]


async def export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    """Which events about the contact went where, whether they carried personal data, and
    what the receiver last answered."""
    rows = await (
        WebhookDelivery.select(
            WebhookDelivery.id,
            WebhookDelivery.event_id,
            WebhookDelivery.event_name,
            WebhookDelivery.subscription.url,
            WebhookDelivery.state,
            WebhookDelivery.shared_personal_data,
            WebhookDelivery.last_attempt_at,
            WebhookDelivery.delivered_at,
            WebhookDelivery.response_text,
        )
        .where(WebhookDelivery.contact_id == contact_id)
        .order_by(WebhookDelivery.id)
        .run()
    )
    if not rows:
        return None
    items: list[dict[str, Any]] = [
        {
            "event_id": str(row["event_id"]),
            "event": row["event_name"],
            "recipient_url": row["subscription.url"],
            "state": row["state"],
            "personal_data_included": bool(row["shared_personal_data"]),
            "last_attempt_at": row["last_attempt_at"],
            "delivered_at": row["delivered_at"],
            "receiver_response": await open_response(
                kith, contact_id, row["id"], row[RESPONSE_TEXT]
            ),
        }
        for row in rows
    ]
    return ExportSection(
        source=SOURCE,
        description="Events about you sent to other systems by outgoing webhooks: the event, "
        "the receiving URL, whether your personal data was included, when, and the start of "
        "what the receiving system last answered",
        tables={"webhook_deliveries": items},
    )


async def erase(contact_id: uuid.UUID, dry_run: bool = False) -> list[ErasureOutcome]:
    """Delete the deliveries about the contact, pending ones included, so nothing more is
    sent (``dry_run``: only say so, for the erasure preview). Idempotent: a second run finds
    nothing."""
    found = await WebhookDelivery.count().where(WebhookDelivery.contact_id == contact_id).run()
    if not found:
        return [ErasureOutcome(source=SOURCE, location="webhooks_delivery", method="not_present")]
    if dry_run:
        return [
            ErasureOutcome(
                source=SOURCE, location="webhooks_delivery", method="deleted", count=int(found)
            )
        ]
    await WebhookDelivery.delete().where(WebhookDelivery.contact_id == contact_id).run()
    return [
        ErasureOutcome(
            source=SOURCE, location="webhooks_delivery", method="deleted", count=int(found)
        )
    ]


NOTICE_EVENT = "subject.notice"


async def _receivers(contact_id: uuid.UUID) -> list[uuid.UUID]:
    """The active subscriptions that received events about the contact."""
    rows = await (
        WebhookDelivery.select(WebhookDelivery.subscription)
        .where(WebhookDelivery.contact_id == contact_id)
        .where(WebhookDelivery.subscription.active == True)  # noqa: E712 - SQL, not Python
        .run()
    )
    return sorted({row["subscription"] for row in rows}, key=str)


def _none_received() -> RecipientNotice:
    return RecipientNotice(
        outcome="not_applicable", detail="no webhook delivery about this contact was recorded"
    )


async def notify_preview(recipient: Recipient, contact_id: uuid.UUID) -> RecipientNotice | None:
    """What :func:`notify` would do, queueing nothing: how many subscriptions it would tell."""
    if recipient.owner != SOURCE or recipient.name != WEBHOOK_RECIPIENT.name:
        return None
    receivers = await _receivers(contact_id)
    if not receivers:
        return _none_received()
    return RecipientNotice(
        outcome="done",
        detail=f"a {NOTICE_EVENT} delivery would be queued for each subscription that "
        "received events about this contact",
        count=len(receivers),
    )


async def notify(
    recipient: Recipient, action: str, contact_id: uuid.UUID, notice_id: uuid.UUID
) -> RecipientNotice | None:
    """Art. 19: queue a ``subject.notice`` delivery (ids only: the contact id and the action)
    to every subscription that received events about the contact, whatever events it
    subscribed to. Once per notice id; not applicable when none received any."""
    if recipient.owner != SOURCE or recipient.name != WEBHOOK_RECIPIENT.name:
        return None
    from kith import Event, new_id, utcnow
    from kith.plugins.webhooks.delivery import envelope
    from kith.plugins.webhooks.tables import WebhookSubscription

    subscriptions = await _receivers(contact_id)
    if not subscriptions:
        return _none_received()
    queued = {
        row["subscription"]
        for row in await WebhookDelivery.select(WebhookDelivery.subscription)
        .where(WebhookDelivery.event_id == notice_id)
        .run()
    }
    event = Event(
        name=NOTICE_EVENT,
        id=notice_id,
        payload={"contact_id": str(contact_id), "action": action},
    )
    now = utcnow()
    new = [
        WebhookDelivery(
            id=new_id(),
            subscription=subscription_id,
            event_id=notice_id,
            event_name=NOTICE_EVENT,
            event=envelope(event),
            # Not the contact's own delivery: erasure must not delete it, nor a restriction
            # hold it back.
            contact_id=None,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for subscription_id in subscriptions
        if subscription_id not in queued
    ]
    if new:
        await WebhookDelivery.insert(*new).run()
    active = await WebhookSubscription.count().where(WebhookSubscription.id.is_in(subscriptions))
    return RecipientNotice(
        outcome="done",
        detail=f"a {NOTICE_EVENT} delivery is queued for {active} subscription(s) that "
        "received events about this contact",
        count=len(subscriptions),
    )


async def merge(kith: Kith, survivor: uuid.UUID, losers: list[uuid.UUID]) -> dict[str, Any] | None:
    """The delivery log of contacts merged into ``survivor`` becomes the survivor's (each
    receiver's answer sealed again under its key); the ids moved, for an undo."""
    moved: dict[str, Any] = {}
    for loser in losers:
        ids = await move_subject_rows(
            kith, WebhookDelivery, WebhookDelivery.contact_id == loser, survivor
        )
        if ids:
            moved[str(loser)] = [str(i) for i in ids]
    return moved or None


async def unmerge(kith: Kith, survivor: uuid.UUID, note: dict[str, Any] | None) -> None:
    for loser, ids in (note or {}).items():
        await move_subject_rows(
            kith,
            WebhookDelivery,
            WebhookDelivery.id.is_in([uuid.UUID(i) for i in ids])
            & (WebhookDelivery.contact_id == survivor),
            uuid.UUID(loser),
        )
