"""Conversations and messages: every channel's webhooks go through :meth:`MessageService.take`,
every reply through :meth:`MessageService.send`; the ``messengers.send`` subscriber hands
queued replies to the provider (:meth:`MessageService.deliver`), so a failure is retried by
the event bus and dead-lettered after its last attempt."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
from kith import (
    Actor,
    Conflict,
    ContactCreate,
    ContactIntake,
    ContactPatch,
    ContactService,
    Event,
    InteractionCreate,
    InteractionService,
    InvalidInput,
    Kith,
    NotFound,
    PermissionDenied,
    PhoneIn,
    ProcessingRefused,
    check_processing,
    get_logger,
    move_subject_rows,
    new_id,
    normalize_phone,
    processing_refusals,
    record_access,
    utcnow,
)
from kith.plugins.messengers.adapters import (
    Attachment,
    InboundMessage,
    Incoming,
    MessengerAdapter,
    MessengerError,
    OutgoingMessage,
    StatusUpdate,
    Template,
)
from kith.plugins.messengers.registry import adapters_of
from kith.plugins.messengers.schemas import AttachmentOut, MessageIn, MessageOut, Taken
from kith.plugins.messengers.tables import MessengerConversation, MessengerMessage

ACTOR = Actor(kind="plugin", name="messengers")
CHANNEL = "messengers"
CONVERSATIONS = str(MessengerConversation._meta.tablename)
MESSAGES = str(MessengerMessage._meta.tablename)
SEND_ACTIVITY = "messengers.send"
# The event the send subscriber takes, and how often it tries before the message fails.
QUEUED = "message.queued"
SEND_ATTEMPTS = 6
# A chat id's blind-index kind: its own key, so equal values of other kinds never match.
CHAT_KIND = "messengers.chat"
MESSAGE_KIND = "messengers.message"
# Later statuses never go back to earlier ones (a late "delivered" after "read").
RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
log = get_logger("kith.plugins.messengers")


def source_of(channel: str) -> str:
    """The ``source`` of the interactions and leads a channel's messages make."""
    return f"messengers.{channel}"


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _summary(channel: str, direction: str, attachments: int) -> str:
    """The timeline line of a message (the text is the interaction's body)."""
    name = {"telegram": "Telegram", "whatsapp": "WhatsApp"}.get(channel, channel)
    text = f"{name} message {'received' if direction == 'inbound' else 'sent'}"
    if attachments:
        text += f", {attachments} attachment{'s' if attachments > 1 else ''}"
    return text


def message_out(
    row: Mapping[str, Any], opened: Mapping[str, str | None] | None = None
) -> MessageOut:
    attachments = None
    if opened is not None and opened.get("attachments"):
        attachments = msgspec.json.decode(
            str(opened["attachments"]).encode(), type=list[AttachmentOut]
        )
    return MessageOut(
        id=row["id"],
        conversation_id=row["conversation_id"],
        contact_id=row["contact_id"],
        channel=row["channel"],
        external_id=row["external_id"],
        direction=row["direction"],
        status=row["status"],
        interaction_id=row["interaction_id"],
        created_at=_utc(row["created_at"]) or utcnow(),
        sent_at=_utc(row["sent_at"]),
        template=row["template"],
        error=row["error"],
        attachment_count=row["attachment_count"],
        text=None if opened is None else (opened.get("text") or ""),
        attachments=attachments if opened is not None else None,
    )


class MessageService:
    """Messages in and out, on every channel of the installation."""

    def __init__(self, kith: Kith, adapters: Mapping[str, MessengerAdapter] | None = None) -> None:
        self.kith = kith
        self.adapters = dict(adapters) if adapters is not None else adapters_of(kith)

    def adapter(self, channel: str) -> MessengerAdapter:
        adapter = self.adapters.get(channel)
        if adapter is None:
            raise NotFound(f"the {channel} channel is not enabled")
        return adapter

    def chat_key(self, channel: str, chat_id: str) -> str:
        return self.kith.protector.lookup_key(CHAT_KIND, f"{channel}\x00{chat_id}")

    def message_key(self, channel: str, message_id: str) -> str:
        """What Kith keeps of a provider's message id: its blind index. The ids themselves
        carry the chat (Telegram's chat id, the number in a WhatsApp wamid), and they end up
        in interactions and events that outlive nothing but must hold no personal data."""
        return self.kith.protector.lookup_key(MESSAGE_KIND, f"{channel}\x00{message_id}")

    # -- webhooks ------------------------------------------------------------------------------

    def check(self, channel: str, headers: Mapping[str, str], body: bytes) -> Incoming:
        """The content of a webhook request, once the adapter has verified it (403 otherwise,
        with nothing stored)."""
        adapter = self.adapter(channel)
        if not adapter.verify(headers, body):
            raise PermissionDenied(
                f"the {channel} webhook's secret or signature is missing or wrong"
            )
        return adapter.parse(body)

    async def take(self, channel: str, incoming: Incoming) -> Taken:
        new = 0
        for message in incoming.messages:
            if await self.receive(channel, message) is not None:
                new += 1
        for status in incoming.statuses:
            if await self.record_status(channel, status):
                new += 1
        return Taken(messages=len(incoming.messages), statuses=len(incoming.statuses), new=new)

    async def receive(self, channel: str, message: InboundMessage) -> MessageOut | None:
        """Take in one inbound message: None when it was taken in before (same channel and
        message id), else the stored message, on the sender's conversation."""
        key = self.chat_key(channel, message.chat_id)
        external_id = self.message_key(channel, message.message_id)
        async with self.kith.unit_of_work(ACTOR) as uow:
            # One delivery of a message at a time (a provider's retry racing the original);
            # messages of a known chat otherwise run alongside.
            await self.kith.database.lock([f"messengers\x00message\x00{external_id}"])
            seen = await MessengerMessage.exists().where(
                (MessengerMessage.channel == channel)
                & (MessengerMessage.external_id == external_id)
            )
            if seen:
                return None
            conversation, new_lead = await self._conversation(channel, key, message)
            contact_id: uuid.UUID = conversation["contact_id"]
            at = _utc(message.at) or utcnow()
            row = await self._store(
                conversation,
                direction="inbound",
                text=message.text,
                attachments=message.attachments,
                external_id=external_id,
                status="received",
                at=at,
            )
            await self._on_timeline(row, message.text, at, ACTOR)
            latest = max(filter(None, [_utc(conversation["last_inbound_at"]), at]))
            await MessengerConversation.update(
                {
                    MessengerConversation.last_inbound_at: latest,
                    MessengerConversation.last_message_at: latest,
                }
            ).where(MessengerConversation.id == conversation["id"])
            uow.publish(
                "message.received",
                contact_id,
                **self._payload(row),
                new_lead=new_lead,
            )
        return message_out(row)

    async def _conversation(
        self, channel: str, key: str, message: InboundMessage
    ) -> tuple[dict[str, Any], bool]:
        """The sender's conversation, made with its contact (found or a new lead) when new;
        a phone they share links it to the contact holding that number."""
        find = MessengerConversation.select().where(
            (MessengerConversation.channel == channel) & (MessengerConversation.chat_key == key)
        )
        found = await find.first()
        if found is None:
            # A new chat: one at a time, so the first messages of an unknown sender, however
            # many arrive at once, make one conversation and one lead.
            await self.kith.database.lock([f"messengers\x00{channel}\x00{key}"])
            found = await find.first()
        phone = self._phone(message.phone or message.shared_phone)
        if found is not None:
            conversation = dict(found)
            if message.shared_phone and phone is not None:
                await self._link(conversation, phone)
            return conversation, False
        contact_id, new_lead = await self._match(channel, phone, message.sender_name)
        now = utcnow()
        row_id = new_id()
        sealed = await self.kith.protector.protect(
            contact_id, CONVERSATIONS, row_id, {"chat_ref": message.chat_id}
        )
        conversation = {
            "id": row_id,
            "channel": channel,
            "chat_key": key,
            "chat_ref": sealed["chat_ref"],
            "contact_id": contact_id,
            "last_inbound_at": None,
            "last_message_at": None,
            "created_at": now,
        }
        await MessengerConversation.insert(MessengerConversation(**conversation))
        return conversation, new_lead

    def _phone(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return normalize_phone(value, self.kith.settings.default_region)
        except InvalidInput:
            return None

    async def _match(
        self, channel: str, phone: str | None, name: str | None
    ) -> tuple[uuid.UUID, bool]:
        """The contact holding ``phone``, or a new lead; and whether it is new."""
        contacts = ContactService(self.kith, CHANNEL)
        lead = ContactCreate(
            name=(name or phone or f"{channel} contact")[:200],
            phones=[PhoneIn(number=phone, primary=True)] if phone else [],
            tags=["lead"],
            source=source_of(channel),
        )
        if phone is None:
            # Nothing to match by (a Telegram sender who shared no number): the chat's lock
            # already makes this the only lead of the chat.
            return (await contacts.create(lead, ACTOR)).id, True
        intake = ContactIntake(contacts)
        matched = await intake.match(lead)
        if matched is not None:
            return matched[0], False
        made = await intake.find_or_create(lead, ACTOR)
        return made.contact.id, made.created

    async def _link(self, conversation: dict[str, Any], phone: str) -> None:
        """A number the sender shared as their own: when another contact holds it, the
        conversation and its messages move to that contact (sealed again under its key)."""
        matched = await ContactIntake(ContactService(self.kith, CHANNEL)).match(
            ContactCreate(name=phone, phones=[PhoneIn(number=phone)])
        )
        if matched is not None and matched[0] == conversation["contact_id"]:
            return
        if matched is None:
            await self._add_phone(conversation["contact_id"], phone)
            return
        to = matched[0]
        await move_subject_rows(
            self.kith,
            MessengerMessage,
            MessengerMessage.conversation_id == conversation["id"],
            to,
        )
        await move_subject_rows(
            self.kith,
            MessengerConversation,
            MessengerConversation.id == conversation["id"],
            to,
        )
        refreshed = (
            await MessengerConversation.select()
            .where(MessengerConversation.id == conversation["id"])
            .first()
        )
        conversation.update(dict(refreshed or {}))

    async def _add_phone(self, contact_id: uuid.UUID, phone: str) -> None:
        """A number nobody holds yet becomes the chat's contact's, so that calls and
        WhatsApp messages from it find them too."""
        contacts = ContactService(self.kith, CHANNEL)
        contact = await contacts.get(contact_id, ACTOR)
        phones = [
            PhoneIn(number=p.number, label=p.label, primary=p.primary) for p in contact.phones
        ]
        phones.append(PhoneIn(number=phone, primary=not phones))
        try:
            await contacts.update(contact_id, ContactPatch(phones=phones), ACTOR)
        except ProcessingRefused:
            # A restricted contact's data is not changed: the chat stays as it is.
            return

    async def _store(
        self,
        conversation: Mapping[str, Any],
        *,
        direction: str,
        text: str,
        attachments: tuple[Attachment, ...] | list[Attachment],
        external_id: str | None,
        status: str,
        at: dt.datetime,
        template: str | None = None,
        purpose: str | None = None,
    ) -> dict[str, Any]:
        contact_id = conversation["contact_id"]
        row_id = new_id()
        values: dict[str, str | None] = {"text": text or None}
        if attachments:
            values["attachments"] = msgspec.json.encode(list(attachments)).decode()
        sealed = await self.kith.protector.protect(contact_id, MESSAGES, row_id, values)
        now = utcnow()
        row: dict[str, Any] = {
            "id": row_id,
            "conversation_id": conversation["id"],
            "contact_id": contact_id,
            "channel": conversation["channel"],
            "external_id": external_id,
            "direction": direction,
            "text": sealed.get("text"),
            "attachments": sealed.get("attachments"),
            "attachment_count": len(attachments),
            "status": status,
            "template": template,
            "purpose": purpose,
            "interaction_id": None,
            "attempts": 0,
            "error": None,
            "created_at": at,
            "sent_at": None,
            "updated_at": now,
        }
        await MessengerMessage.insert(MessengerMessage(**row))
        return row

    async def _on_timeline(
        self, row: dict[str, Any], text: str, at: dt.datetime, actor: Actor
    ) -> None:
        """The message's interaction, once per message."""
        external = row["external_id"] if row["direction"] == "inbound" else f"out:{row['id']}"
        try:
            logged, _ = await InteractionService(self.kith, CHANNEL).log(
                row["contact_id"],
                InteractionCreate(
                    kind="message",
                    direction=row["direction"],
                    occurred_at=at,
                    summary=_summary(row["channel"], row["direction"], row["attachment_count"]),
                    body=text,
                    channel=row["channel"][:50],
                    source=source_of(row["channel"]),
                    external_id=str(external)[:200],
                ),
                actor,
            )
        except ProcessingRefused:
            # A restricted contact's message is kept, sealed, but not processed further.
            return
        row["interaction_id"] = logged.id
        await MessengerMessage.update({MessengerMessage.interaction_id: logged.id}).where(
            MessengerMessage.id == row["id"]
        )

    def _payload(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """An event's data: ids, channel and status; never the text or the chat id."""
        return {
            "message_id": str(row["id"]),
            "conversation_id": str(row["conversation_id"]),
            "channel": row["channel"],
            "external_id": row["external_id"],
            "direction": row["direction"],
            "status": row["status"],
            "interaction_id": str(row["interaction_id"]) if row["interaction_id"] else None,
            "attachments": row["attachment_count"],
        }

    async def record_status(self, channel: str, update: StatusUpdate) -> bool:
        """A provider's word on a message it sent; whether it changed the message. Statuses of
        messages Kith does not know, repeated ones and ones older than what is known change
        nothing."""
        async with self.kith.unit_of_work(ACTOR) as uow:
            found = (
                await MessengerMessage.select()
                .where(
                    (MessengerMessage.channel == channel)
                    & (MessengerMessage.external_id == self.message_key(channel, update.message_id))
                    & (MessengerMessage.direction == "outbound")
                )
                .first()
            )
            if found is None or RANK.get(update.status, 0) <= RANK.get(found["status"], 0):
                return False
            row = dict(found)
            await self.kith.database.lock([f"messengers\x00message\x00{row['id']}"])
            row["status"] = update.status
            row["error"] = update.error if update.status == "failed" else row["error"]
            await MessengerMessage.update(
                {
                    MessengerMessage.status: row["status"],
                    MessengerMessage.error: row["error"],
                    MessengerMessage.updated_at: utcnow(),
                }
            ).where(MessengerMessage.id == row["id"])
            uow.publish(
                "message.status",
                row["contact_id"],
                **self._payload(row),
                error=row["error"],
                at=(_utc(update.at) or utcnow()).isoformat(),
            )
        return True

    # -- replies -------------------------------------------------------------------------------

    async def _latest_conversation(
        self, contact_id: uuid.UUID, channel: str | None
    ) -> dict[str, Any]:
        query = MessengerConversation.select().where(MessengerConversation.contact_id == contact_id)
        if channel is not None:
            query = query.where(MessengerConversation.channel == channel)
        found = await query.order_by(MessengerConversation.last_message_at, ascending=False).first()
        if found is None:
            where = f" on {channel}" if channel else ""
            raise Conflict(
                f"contact {contact_id} has no conversation{where}: they have to write first",
                field="channel",
            )
        return dict(found)

    async def send(self, contact_id: uuid.UUID, data: MessageIn, actor: Actor) -> MessageOut:
        """Queue a message to the contact on their conversation; the send subscriber hands it
        to the provider. Refused (409) for a restricted contact, for a ``purpose`` the
        contact has not consented to, and on WhatsApp outside the 24-hour window without a
        template."""
        if not data.text.strip() and data.template is None:
            raise InvalidInput("give the text of the message, or a template", field="text")
        if data.text.strip() and data.template is not None:
            raise InvalidInput("give either text or a template, not both", field="template")
        await ContactService(self.kith, CHANNEL).get(contact_id, actor)
        await check_processing(self.kith, contact_id, SEND_ACTIVITY)
        if data.purpose is not None:
            reasons = await processing_refusals(self.kith, contact_id, f"purpose:{data.purpose}")
            if reasons:
                raise ProcessingRefused(
                    reasons[0], contact_id=str(contact_id), activity=f"purpose:{data.purpose}"
                )
        conversation = await self._latest_conversation(contact_id, data.channel)
        adapter = self.adapter(conversation["channel"])
        window = adapter.session_window
        last = _utc(conversation["last_inbound_at"])
        now = utcnow()
        outside = window is not None and (last is None or now - last > window)
        if outside and data.template is None:
            raise Conflict(
                f"the contact last wrote on {conversation['channel']} more than "
                f"{int(window.total_seconds() // 3600) if window else 0} hours ago: outside "
                "the customer service window only an approved template may be sent; give "
                "template",
                field="template",
            )
        text = data.text if data.template is None else ""
        async with self.kith.unit_of_work(actor) as uow:
            row = await self._store(
                conversation,
                direction="outbound",
                text=text,
                attachments=(),
                external_id=None,
                status="queued",
                at=now,
                template=msgspec.json.encode(data.template).decode() if data.template else None,
                purpose=data.purpose,
            )
            shown = f"(template {data.template.name})" if data.template else text
            await self._on_timeline(row, shown, now, actor)
            await MessengerConversation.update({MessengerConversation.last_message_at: now}).where(
                MessengerConversation.id == conversation["id"]
            )
            uow.publish(QUEUED, contact_id, **self._payload(row))
        return message_out(row)

    async def deliver(self, message_id: uuid.UUID) -> None:
        """Hand a queued message to its provider (the send subscriber's work). A provider's
        error that a retry may cure is raised, so the bus tries again; after the last attempt,
        or when retrying cannot help, the message fails (``message.status`` says so)."""
        found = await MessengerMessage.select().where(MessengerMessage.id == message_id).first()
        if found is None or found["status"] != "queued":
            # Sent already (a repeated delivery), or erased meanwhile.
            return
        row = dict(found)
        contact_id: uuid.UUID = row["contact_id"]
        refused = await processing_refusals(self.kith, contact_id, SEND_ACTIVITY)
        if refused:
            await self._fail(row, "not sent: processing of the contact's data is restricted")
            return
        conversation = (
            await MessengerConversation.select()
            .where(MessengerConversation.id == row["conversation_id"])
            .first()
        )
        adapter = self.adapters.get(row["channel"])
        if conversation is None or adapter is None:
            await self._fail(row, f"not sent: the {row['channel']} channel is not enabled")
            return
        opened = await self.kith.protector.reveal(
            contact_id, CONVERSATIONS, conversation["id"], {"chat_ref": conversation["chat_ref"]}
        )
        text = ""
        if row["text"] is not None:
            text = (
                await self.kith.protector.reveal(
                    contact_id, MESSAGES, row["id"], {"text": row["text"]}
                )
            )["text"] or ""
        template = (
            msgspec.json.decode(row["template"].encode(), type=Template)
            if row["template"]
            else None
        )
        await record_access(
            self.kith,
            contact_id,
            "send",
            ACTOR,
            CHANNEL,
            message=str(row["id"]),
            via=row["channel"],
        )
        try:
            external_id = await adapter.send(
                OutgoingMessage(chat_id=str(opened["chat_ref"]), text=text, template=template)
            )
        except MessengerError as exc:
            attempts = int(row["attempts"]) + 1
            log.warning(
                "messengers.send_failed",
                channel=row["channel"],
                message_id=str(row["id"]),
                attempt=attempts,
                error=exc.detail,
            )
            if not exc.retry or attempts >= SEND_ATTEMPTS:
                await self._fail(row, exc.detail, attempts)
                if exc.retry:
                    # The last attempt: the bus keeps the delivery as dead, for a replay.
                    raise
                return
            await MessengerMessage.update(
                {MessengerMessage.attempts: attempts, MessengerMessage.error: exc.detail[:300]}
            ).where(MessengerMessage.id == row["id"])
            raise
        async with self.kith.unit_of_work(ACTOR) as uow:
            now = utcnow()
            row.update(
                status="sent",
                external_id=self.message_key(row["channel"], external_id),
                sent_at=now,
                error=None,
            )
            await MessengerMessage.update(
                {
                    MessengerMessage.status: "sent",
                    MessengerMessage.external_id: row["external_id"],
                    MessengerMessage.sent_at: now,
                    MessengerMessage.attempts: int(row["attempts"]) + 1,
                    MessengerMessage.error: None,
                    MessengerMessage.updated_at: now,
                }
            ).where((MessengerMessage.id == row["id"]) & (MessengerMessage.status == "queued"))
            uow.publish("message.sent", contact_id, **self._payload(row))

    async def _fail(self, row: dict[str, Any], reason: str, attempts: int | None = None) -> None:
        async with self.kith.unit_of_work(ACTOR) as uow:
            row.update(status="failed", error=reason[:300])
            await MessengerMessage.update(
                {
                    MessengerMessage.status: "failed",
                    MessengerMessage.error: row["error"],
                    MessengerMessage.attempts: attempts
                    if attempts is not None
                    else row["attempts"],
                    MessengerMessage.updated_at: utcnow(),
                }
            ).where(MessengerMessage.id == row["id"])
            uow.publish(
                "message.status",
                row["contact_id"],
                **self._payload(row),
                error=row["error"],
                at=utcnow().isoformat(),
            )

    # -- reading -------------------------------------------------------------------------------

    async def messages(
        self, contact_id: uuid.UUID, actor: Actor, *, limit: int = 50, channel: str = "api"
    ) -> list[MessageOut]:
        """The contact's latest messages, newest first, with their text (the read is
        audited)."""
        await ContactService(self.kith, CHANNEL).get(contact_id, actor)
        rows = (
            await MessengerMessage.select()
            .where(MessengerMessage.contact_id == contact_id)
            .order_by(MessengerMessage.created_at, ascending=False)
            .limit(limit)
            .run()
        )
        found = []
        for row in rows:
            sealed = {k: row[k] for k in ("text", "attachments") if row[k] is not None}
            opened = (
                await self.kith.protector.reveal(contact_id, MESSAGES, row["id"], sealed)
                if sealed
                else {}
            )
            found.append(message_out(row, opened))
        if found:
            await record_access(self.kith, contact_id, "read", actor, channel, messages=len(found))
        return found


async def on_queued(kith: Kith, event: Event) -> None:
    """The send subscriber: a queued message goes to its provider."""
    await MessageService(kith).deliver(uuid.UUID(str(event.payload["message_id"])))
