"""What the webhooks plugin answers for one data subject: its purpose, its recipients, and the
deliveries about a contact (for access requests, erasure and merges)."""

from __future__ import annotations

import uuid

from kith.plugins.webhooks.consent import PURPOSE
from kith.plugins.webhooks.tables import WebhookDelivery
from kith.subjects import ErasureOutcome, ExportSection, Purpose, Recipient

SOURCE = "webhooks"

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


async def export(contact_id: uuid.UUID) -> ExportSection | None:
    """Which events about the contact went where, and whether they carried personal data."""
    rows = await (
        WebhookDelivery.select(
            WebhookDelivery.event_id,
            WebhookDelivery.event_name,
            WebhookDelivery.subscription.url,
            WebhookDelivery.state,
            WebhookDelivery.shared_personal_data,
            WebhookDelivery.last_attempt_at,
            WebhookDelivery.delivered_at,
        )
        .where(WebhookDelivery.contact_id == contact_id)
        .order_by(WebhookDelivery.id)
        .run()
    )
    if not rows:
        return None
    return ExportSection(
        source=SOURCE,
        description="Events about you sent to other systems by outgoing webhooks: the event, "
        "the receiving URL, whether your personal data was included, and when",
        tables={
            "webhook_deliveries": [
                {
                    "event_id": str(row["event_id"]),
                    "event": row["event_name"],
                    "recipient_url": row["subscription.url"],
                    "state": row["state"],
                    "personal_data_included": bool(row["shared_personal_data"]),
                    "last_attempt_at": row["last_attempt_at"],
                    "delivered_at": row["delivered_at"],
                }
                for row in rows
            ]
        },
    )


async def erase(contact_id: uuid.UUID) -> list[ErasureOutcome]:
    """Delete the deliveries about the contact, pending ones included, so nothing more is
    sent. Idempotent: a second run finds nothing."""
    found = await WebhookDelivery.count().where(WebhookDelivery.contact_id == contact_id).run()
    if not found:
        return [ErasureOutcome(source=SOURCE, location="webhooks_delivery", method="not_present")]
    await WebhookDelivery.delete().where(WebhookDelivery.contact_id == contact_id).run()
    return [
        ErasureOutcome(
            source=SOURCE, location="webhooks_delivery", method="deleted", count=int(found)
        )
    ]


async def merge(source_id: uuid.UUID, target_id: uuid.UUID) -> None:
    """The merged contact's deliveries belong to the contact that remains."""
    await (
        WebhookDelivery.update({WebhookDelivery.contact_id: target_id})
        .where(WebhookDelivery.contact_id == source_id)
        .run()
    )
