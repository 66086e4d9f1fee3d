"""The provider adapter interface: what another package implements to bring a messenger to Kith.

An adapter speaks one provider's protocol and nothing else: it checks that a webhook request
really comes from the provider, turns its payload into provider-neutral
:class:`InboundMessage` and :class:`StatusUpdate` values, and sends an
:class:`OutgoingMessage`. The message service does the rest (matching, leads, storage,
interactions, events, privacy), the same for every channel. Adapters are offered through the
``kith_messenger_adapters`` hook (see :mod:`kith.plugins.messengers.hookspecs`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Literal, Protocol, runtime_checkable

import msgspec

Direction = Literal["inbound", "outbound"]
# Outbound: queued (Kith holds it), sent (the provider took it), delivered, read, failed.
Status = Literal["queued", "sent", "delivered", "read", "failed", "received"]
DeliveryStatus = Literal["sent", "delivered", "read", "failed"]


class MessengerError(Exception):
    """The provider refused or could not be reached. ``detail`` is the provider's reason in
    words without personal data (kept on the message and logged); ``retry`` is False when
    sending again cannot help (a blocked bot, an unknown chat)."""

    def __init__(self, detail: str, *, retry: bool = True) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry = retry


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    """A file in a message, by reference only: the provider keeps the file (Telegram's
    ``file_id``, WhatsApp's media id); Kith keeps the reference to fetch it on demand."""

    kind: str
    ref: str
    name: str | None = None
    mime_type: str | None = None


class InboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message a person sent. ``chat_id`` is the provider's id of the conversation with
    them (Telegram's chat id, WhatsApp's wa_id); ``message_id`` is unique per channel, so the
    same message delivered twice has the same one."""

    message_id: str
    chat_id: str
    at: dt.datetime
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    # The sender's phone number when the provider gives it with every message (WhatsApp).
    phone: str | None = None
    # A phone number the sender shared as their own (Telegram's contact sharing).
    shared_phone: str | None = None
    # The sender's display name, for a new lead's name.
    sender_name: str | None = None


class StatusUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """What became of a message Kith sent, by the provider's message id."""

    message_id: str
    status: DeliveryStatus
    at: dt.datetime
    # The provider's reason of a failure (an error code and title, no personal data).
    error: str | None = None


class Incoming(msgspec.Struct, frozen=True, kw_only=True):
    """What one webhook request carried."""

    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()


class Template(msgspec.Struct, frozen=True, kw_only=True):
    """A message template the provider approved (needed outside a session window)."""

    name: str
    language: str = "en"
    params: tuple[str, ...] = ()


class OutgoingMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message to send to ``chat_id``: free ``text``, or a ``template``."""

    chat_id: str
    text: str = ""
    template: Template | None = None


@runtime_checkable
class MessengerAdapter(Protocol):
    """One messenger channel (``telegram``, ``whatsapp``, or a third party's)."""

    # The channel's name: the webhook's path (/api/messengers/<channel>) and the source of
    # the leads and interactions it makes (messengers.<channel>).
    channel: str
    # How long after the person's last message free text may be sent (WhatsApp's 24-hour
    # customer service window); None: no limit.
    session_window: dt.timedelta | None

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether a webhook request comes from the provider (a secret token or a
        signature over ``body``, compared in constant time)."""
        ...

    def challenge(self, query: Mapping[str, str]) -> str | None:
        """The answer to the provider's check of the webhook address (a GET), or None to
        refuse it."""
        ...

    def parse(self, body: bytes) -> Incoming:
        """The messages and status updates of a verified request. Raises
        :class:`kith.InvalidInput` when the body is not the provider's payload."""
        ...

    async def send(self, message: OutgoingMessage) -> str:
        """Send one message; returns the provider's id of it. Raises :class:`MessengerError`."""
        ...

    async def connect(self, webhook_url: str) -> str:
        """Point the provider at ``webhook_url`` where its API allows it; returns what was
        done, in words. Raises :class:`MessengerError`."""
        ...
