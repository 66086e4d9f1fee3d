"""The WhatsApp Business Cloud API: webhook verification (hub.challenge), payloads signed
with X-Hub-Signature-256, messages and status callbacks; replies through the messages
endpoint, free text inside the 24-hour customer service window and a template outside it."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import msgspec
from kith import InvalidInput
from kith.plugins.messengers._http import post_json
from kith.plugins.messengers.adapters import (
    Attachment,
    DeliveryStatus,
    InboundMessage,
    Incoming,
    MessengerError,
    OutgoingMessage,
    StatusUpdate,
)
from kith.plugins.messengers.settings import WhatsAppSettings

CHANNEL = "whatsapp"
SIGNATURE_HEADER = "x-hub-signature-256"
WINDOW = dt.timedelta(hours=24)
_MEDIA = ("image", "document", "audio", "video", "sticker")
_STATUSES: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}


def signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 header Meta sends with ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _at(value: Any) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput("a timestamp is not a Unix time", field="timestamp") from None


def _text(message: Mapping[str, Any]) -> str:
    kind = message.get("type")
    if kind == "text":
        return str((message.get("text") or {}).get("body") or "")
    if kind in _MEDIA:
        return str((message.get(kind) or {}).get("caption") or "")
    if kind == "button":
        return str((message.get("button") or {}).get("text") or "")
    if kind == "interactive":
        reply = message.get("interactive") or {}
        chosen = reply.get("button_reply") or reply.get("list_reply") or {}
        return str(chosen.get("title") or "")
    return ""


def _message(item: Mapping[str, Any], names: Mapping[str, str]) -> InboundMessage:
    sender = str(item["from"])
    kind = item.get("type")
    attachments: tuple[Attachment, ...] = ()
    if kind in _MEDIA and isinstance(item.get(kind), dict):
        media = item[kind]
        attachments = (
            Attachment(
                kind=str(kind),
                ref=str(media["id"]),
                name=media.get("filename"),
                mime_type=media.get("mime_type"),
            ),
        )
    return InboundMessage(
        message_id=str(item["id"]),
        chat_id=sender,
        at=_at(item.get("timestamp")),
        text=_text(item),
        attachments=attachments,
        # wa_id is the number in international form without its plus.
        phone="+" + sender.lstrip("+"),
        sender_name=names.get(sender),
    )


def _status(item: Mapping[str, Any]) -> StatusUpdate | None:
    status = _STATUSES.get(str(item.get("status")))
    if status is None:
        return None
    errors = item.get("errors") or []
    error = None
    if errors and isinstance(errors[0], dict):
        first = errors[0]
        error = f"{first.get('code', '')} {first.get('title', '')}".strip()[:300] or None
    return StatusUpdate(
        message_id=str(item["id"]), status=status, at=_at(item.get("timestamp")), error=error
    )


def parse_payload(payload: Mapping[str, Any]) -> Incoming:
    """The messages and statuses of a webhook payload (``object: whatsapp_business_account``)."""
    if payload.get("object") != "whatsapp_business_account":
        raise InvalidInput("the body is not a WhatsApp Business webhook", field="object")
    messages: list[InboundMessage] = []
    statuses: list[StatusUpdate] = []
    try:
        for entry in payload.get("entry") or []:
            for change in entry.get("changes") or []:
                if change.get("field") != "messages":
                    continue
                value = change.get("value") or {}
                names = {
                    str(c.get("wa_id")): str((c.get("profile") or {}).get("name") or "")
                    for c in value.get("contacts") or []
                }
                names = {k: v for k, v in names.items() if v}
                messages.extend(_message(item, names) for item in value.get("messages") or [])
                for item in value.get("statuses") or []:
                    status = _status(item)
                    if status is not None:
                        statuses.append(status)
    except (KeyError, TypeError, AttributeError):
        raise InvalidInput("the WhatsApp payload is malformed", field="entry") from None
    return Incoming(messages=tuple(messages), statuses=tuple(statuses))


class WhatsAppAdapter:
    """One business phone number, as configured in ``[messengers.whatsapp]``."""

    channel = CHANNEL
    session_window: dt.timedelta | None = WINDOW

    def __init__(self, settings: WhatsAppSettings) -> None:
        self.settings = settings

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        given = headers.get(SIGNATURE_HEADER) or ""
        secret = self.settings.app_secret
        return bool(secret) and hmac.compare_digest(
            given.encode(), signature(secret, body).encode()
        )

    def challenge(self, query: Mapping[str, str]) -> str | None:
        expected = self.settings.verify_token
        given = query.get("hub.verify_token", "")
        if (
            query.get("hub.mode") == "subscribe"
            and expected
            and hmac.compare_digest(given.encode(), expected.encode())
        ):
            return query.get("hub.challenge", "")[:200]
        return None

    def parse(self, body: bytes) -> Incoming:
        try:
            payload = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise InvalidInput("the body is not JSON", field="body") from None
        if not isinstance(payload, dict):
            raise InvalidInput("the body is not a WhatsApp Business webhook", field="object")
        return parse_payload(payload)

    async def send(self, message: OutgoingMessage) -> str:
        settings = self.settings
        url = (
            f"{settings.api_url.rstrip('/')}/{settings.api_version}/"
            f"{settings.phone_number_id}/messages"
        )
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.chat_id,
        }
        if message.template is not None:
            template: dict[str, Any] = {
                "name": message.template.name,
                "language": {"code": message.template.language},
            }
            if message.template.params:
                template["components"] = [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": p} for p in message.template.params
                        ],
                    }
                ]
            payload |= {"type": "template", "template": template}
        else:
            payload |= {"type": "text", "text": {"preview_url": False, "body": message.text}}
        status, answer = await post_json(
            url,
            payload,
            what="WhatsApp",
            headers={"Authorization": f"Bearer {settings.access_token}"},
        )
        sent = answer.get("messages") or []
        if 200 <= status < 300 and sent and isinstance(sent[0], dict) and sent[0].get("id"):
            return str(sent[0]["id"])
        error = answer.get("error") or {}
        reason = str(error.get("message") or f"HTTP {status}")[:200]
        # Meta's 4xx but rate limits (429, code 130429/131056...) will not change on retry.
        raise MessengerError(
            f"WhatsApp refused the message: {reason}", retry=status >= 500 or status == 429
        )

    async def connect(self, webhook_url: str) -> str:
        # Meta sets the callback URL in the app's dashboard only; say what to enter there.
        return (
            f"In the Meta app's WhatsApp configuration, set the callback URL to {webhook_url} "
            "and the verify token to [messengers.whatsapp] verify_token, and subscribe to "
            "the messages field"
        )
