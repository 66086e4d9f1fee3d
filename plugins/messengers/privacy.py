"""What the messengers plugin answers for one data subject: its personal fields, the providers
as recipients, and a contact's conversations (for access requests, erasure and merges)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from kith import (
    ErasureOutcome,
    ExportSection,
    Kith,
    PersonalField,
    Recipient,
    RecipientNotice,
    move_subject_rows,
)
from kith.plugins.messengers.tables import MessengerConversation, MessengerMessage

SOURCE = "messengers"
CONVERSATIONS = str(MessengerConversation._meta.tablename)
MESSAGES = str(MessengerMessage._meta.tablename)
PURPOSE = "customer_relationship"

PERSONAL_FIELDS = (
    PersonalField(
        table=CONVERSATIONS,
        column="chat_ref",
        category="online_identifiers",
        purposes=(PURPOSE,),
        description="The messenger's id of a chat with the contact (Telegram chat id, "
        "WhatsApp number)",
        owner=SOURCE,
    ),
    PersonalField(
        table=MESSAGES,
        column="text",
        category="communications",
        purposes=(PURPOSE,),
        description="The text of a message to or from the contact",
        owner=SOURCE,
    ),
    PersonalField(
        table=MESSAGES,
        column="attachments",
        category="communications",
        purposes=(PURPOSE,),
        description="References to the files of a message, kept by the messenger",
        owner=SOURCE,
    ),
)

# Recipient name -> channel.
CHANNELS = {"Telegram": "telegram", "WhatsApp (Meta)": "whatsapp"}
RECIPIENTS = (
    Recipient(
        name="Telegram",
        description="Telegram carries the messages between the bot and the contact and keeps "
        "the chat and its files",
        categories=("online_identifiers", "communications"),
        purposes=(PURPOSE,),
        country="AE",
        owner=SOURCE,
    ),
    Recipient(
        name="WhatsApp (Meta)",
        description="WhatsApp Business (Meta) carries the messages between the business number "
        "and the contact, and keeps media for a limited time",
        categories=("contact_details", "online_identifiers", "communications"),
        purposes=(PURPOSE,),
        country="US",
        safeguards="standard contractual clauses",
        owner=SOURCE,
    ),
)


async def _opened(
    kith: Kith, contact_id: uuid.UUID, table: str, row: dict[str, Any], names: tuple[str, ...]
) -> dict[str, Any]:
    sealed = {name: row[name] for name in names if row[name] is not None}
    if not sealed:
        return {}
    return dict(await kith.protector.reveal(contact_id, table, row["id"], sealed))


async def export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    """The contact's conversations and every message with its text and file references."""
    conversations = await MessengerConversation.select().where(
        MessengerConversation.contact_id == contact_id
    )
    if not conversations:
        return None
    chats = []
    for row in conversations:
        opened = await _opened(kith, contact_id, CONVERSATIONS, row, ("chat_ref",))
        chats.append(
            {"channel": row["channel"], "chat": opened.get("chat_ref"), "since": row["created_at"]}
        )
    messages = []
    rows = (
        await MessengerMessage.select()
        .where(MessengerMessage.contact_id == contact_id)
        .order_by(MessengerMessage.created_at)
    )
    for row in rows:
        opened = await _opened(kith, contact_id, MESSAGES, row, ("text", "attachments"))
        files = opened.get("attachments")
        messages.append(
            {
                "channel": row["channel"],
                "direction": row["direction"],
                "at": row["created_at"],
                "status": row["status"],
                "text": opened.get("text") or "",
                "attachments": msgspec.json.decode(files) if files else [],
            }
        )
    return ExportSection(
        source=SOURCE,
        description="Your conversations with us on messengers (Telegram, WhatsApp): the chats, "
        "every message and the files sent in them",
        tables={"conversations": chats, "messages": messages},
    )


async def erase(contact_id: uuid.UUID, dry_run: bool = False) -> list[ErasureOutcome]:
    """Delete the contact's conversations and messages. Idempotent."""
    outcomes = []
    for table, location in ((MessengerMessage, MESSAGES), (MessengerConversation, CONVERSATIONS)):
        found = int(await table.count().where(table.contact_id == contact_id))  # type: ignore[attr-defined]
        if not found:
            outcomes.append(ErasureOutcome(source=SOURCE, location=location, method="not_present"))
            continue
        if not dry_run:
            await table.delete().where(table.contact_id == contact_id)  # type: ignore[attr-defined]
        outcomes.append(
            ErasureOutcome(source=SOURCE, location=location, method="deleted", count=found)
        )
    return outcomes


async def _had_chat(contact_id: uuid.UUID, channel: str) -> bool:
    return bool(
        await MessengerConversation.exists().where(
            (MessengerConversation.contact_id == contact_id)
            & (MessengerConversation.channel == channel)
        )
    )


async def notify_preview(
    kith: Kith, recipient: Recipient, contact_id: uuid.UUID
) -> RecipientNotice | None:
    return await notify(kith, recipient, "erasure", contact_id, dry_run=True)


async def notify(
    kith: Kith,
    recipient: Recipient,
    action: str,
    contact_id: uuid.UUID,
    *,
    dry_run: bool = False,
) -> RecipientNotice | None:
    """Art. 19: neither messenger's API lets a business delete a person's chat history, so
    erasure says what is left to ask of the person or the provider."""
    channel = CHANNELS.get(recipient.name)
    if recipient.owner != SOURCE or channel is None:
        return None
    if not await _had_chat(contact_id, channel):
        return RecipientNotice(
            outcome="not_applicable", detail=f"the contact never wrote on {recipient.name}"
        )
    if action != "erasure":
        return RecipientNotice(
            outcome="not_applicable",
            detail="the messenger holds the chat only, not the contact's details in Kith",
        )
    return RecipientNotice(
        outcome="failed",
        detail=f"{recipient.name} offers no API to delete a chat: the person can delete it in "
        "their app; Kith's copy is erased",
    )


async def merge(kith: Kith, survivor: uuid.UUID, losers: list[uuid.UUID]) -> dict[str, Any] | None:
    """Conversations of contacts merged into ``survivor`` become its own."""
    moved: dict[str, Any] = {}
    for loser in losers:
        conversations = await move_subject_rows(
            kith, MessengerConversation, MessengerConversation.contact_id == loser, survivor
        )
        messages = await move_subject_rows(
            kith, MessengerMessage, MessengerMessage.contact_id == loser, survivor
        )
        if conversations or messages:
            moved[str(loser)] = {
                "conversations": [str(i) for i in conversations],
                "messages": [str(i) for i in messages],
            }
    return moved or None


async def unmerge(kith: Kith, survivor: uuid.UUID, note: dict[str, Any] | None) -> None:
    for loser, ids in (note or {}).items():
        await move_subject_rows(
            kith,
            MessengerConversation,
            MessengerConversation.id.is_in(
                [uuid.UUID(i) for i in ids["conversations"]] or [uuid.UUID(int=0)]
            )
            & (MessengerConversation.contact_id == survivor),
            uuid.UUID(loser),
        )
        await move_subject_rows(
            kith,
            MessengerMessage,
            MessengerMessage.id.is_in([uuid.UUID(i) for i in ids["messages"]] or [uuid.UUID(int=0)])
            & (MessengerMessage.contact_id == survivor),
            uuid.UUID(loser),
        )
