"""The Telegram Bot API: updates by webhook, checked with the secret token; replies through
``sendMessage``; ``setWebhook`` points the bot at Kith."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping
from typing import Any

import msgspec
from kith import InvalidInput
from kith.plugins.messengers._http import post_json
from kith.plugins.messengers.adapters import (
    Attachment,
    InboundMessage,
    Incoming,
    MessengerError,
    OutgoingMessage,
)
from kith.plugins.messengers.settings import TelegramSettings

CHANNEL = "telegram"
SECRET_HEADER = "x-telegram-bot-api-secret-token"
# Kinds of file a message may carry, and where Telegram puts each one's file_id.
_FILES = ("document", "audio", "video", "voice", "video_note", "sticker", "animation")
# Telegram's answers that sending again cannot change.
_FINAL = {400, 401, 403, 404}


def _name(user: Mapping[str, Any]) -> str | None:
    parts = [str(user.get(k) or "").strip() for k in ("first_name", "last_name")]
    name = " ".join(p for p in parts if p)
    return name or (f"@{user['username']}" if user.get("username") else None)


def message_of(update: Mapping[str, Any]) -> InboundMessage | None:
    """The message of one ``Update`` (None for edits, channel posts, callbacks...)."""
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat") or {}
    sender = message.get("from") or {}
    if "id" not in chat or "message_id" not in message:
        raise InvalidInput("a Telegram message needs chat.id and message_id", field="message")
    attachments: list[Attachment] = []
    photos = message.get("photo") or []
    if photos:
        # Sizes of one photo, smallest first: the largest is the photo.
        largest = photos[-1]
        attachments.append(Attachment(kind="photo", ref=str(largest["file_id"])))
    for kind in _FILES:
        item = message.get(kind)
        if isinstance(item, dict) and item.get("file_id"):
            attachments.append(
                Attachment(
                    kind=kind,
                    ref=str(item["file_id"]),
                    name=item.get("file_name"),
                    mime_type=item.get("mime_type"),
                )
            )
    shared = message.get("contact") or {}
    own = (
        bool(shared)
        and shared.get("user_id") is not None
        and shared.get("user_id") == sender.get("id")
    )
    text = str(message.get("text") or message.get("caption") or "")
    try:
        at = dt.datetime.fromtimestamp(int(message.get("date", 0)), dt.UTC)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput("message.date is not a Unix time", field="message.date") from None
    chat_id = str(chat["id"])
    return InboundMessage(
        # Message ids count per chat: the chat makes them unique to the bot.
        message_id=f"{chat_id}:{message['message_id']}",
        chat_id=chat_id,
        at=at,
        text=text,
        attachments=tuple(attachments),
        shared_phone=str(shared["phone_number"]) if own and shared.get("phone_number") else None,
        sender_name=_name(sender),
    )


class TelegramAdapter:
    """One bot, as configured in ``[messengers.telegram]``."""

    channel = CHANNEL
    session_window: dt.timedelta | None = None

    def __init__(self, settings: TelegramSettings) -> None:
        self.settings = settings

    def _method(self, name: str) -> str:
        return f"{self.settings.api_url.rstrip('/')}/bot{self.settings.bot_token}/{name}"

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        given = headers.get(SECRET_HEADER) or ""
        expected = self.settings.secret_token
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())

    def challenge(self, query: Mapping[str, str]) -> str | None:
        # Telegram does not check the address by GET.
        return None

    def parse(self, body: bytes) -> Incoming:
        try:
            update = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise InvalidInput("the body is not JSON", field="body") from None
        if not isinstance(update, dict) or "update_id" not in update:
            raise InvalidInput("the body is not a Telegram Update", field="update_id")
        try:
            message = message_of(update)
        except (KeyError, TypeError, AttributeError):
            raise InvalidInput("the Telegram message is malformed", field="message") from None
        return Incoming(messages=(message,) if message is not None else ())

    async def _call(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        status, answer = await post_json(self._method(name), payload, what="Telegram")
        if status == 200 and answer.get("ok") is True:
            return answer
        reason = str(answer.get("description") or f"HTTP {status}")[:200]
        code = answer.get("error_code", status)
        raise MessengerError(f"Telegram refused {name}: {reason}", retry=code not in _FINAL)

    async def send(self, message: OutgoingMessage) -> str:
        if message.template is not None:
            raise MessengerError("Telegram has no message templates", retry=False)
        answer = await self._call("sendMessage", {"chat_id": message.chat_id, "text": message.text})
        result = answer.get("result") or {}
        return f"{message.chat_id}:{result.get('message_id', '')}"

    async def connect(self, webhook_url: str) -> str:
        await self._call(
            "setWebhook",
            {
                "url": webhook_url,
                "secret_token": self.settings.secret_token,
                "allowed_updates": ["message"],
            },
        )
        return f"Telegram sends the bot's updates to {webhook_url}"
