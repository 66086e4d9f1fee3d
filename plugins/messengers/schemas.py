"""What goes in and out of the message service."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

Name = Annotated[str, Meta(min_length=1, max_length=200)]


class TemplateIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """An approved message template: needed on WhatsApp outside the 24-hour window."""

    name: Name
    language: Annotated[str, Meta(min_length=2, max_length=15)] = "en"
    params: Annotated[list[Annotated[str, Meta(max_length=1024)]], Meta(max_length=20)] = (
        msgspec.field(default_factory=list)
    )


class MessageIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """A message to a contact: free ``text`` or a ``template``. ``channel`` picks the
    conversation when the contact has several (default: the one they wrote in last).
    ``purpose`` names what a marketing message is for (``marketing``): it is sent only with
    the contact's consent to it."""

    text: Annotated[str, Meta(max_length=4096)] = ""
    template: TemplateIn | None = None
    channel: Annotated[str, Meta(min_length=1, max_length=50)] | None = None
    purpose: Annotated[str, Meta(min_length=1, max_length=50)] | None = None


class AttachmentOut(Struct, kw_only=True):
    kind: str
    ref: str
    name: str | None = None
    mime_type: str | None = None


class MessageOut(Struct, kw_only=True):
    """One message. ``text`` and ``attachments`` are there when the reader may see them
    (the contact's card, an access request); the lists of the API leave them out."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    contact_id: uuid.UUID | None
    channel: str
    external_id: str | None
    direction: str
    status: str
    interaction_id: uuid.UUID | None
    created_at: dt.datetime
    sent_at: dt.datetime | None = None
    template: str | None = None
    error: str | None = None
    attachment_count: int = 0
    text: str | None = None
    attachments: list[AttachmentOut] | None = None


class Taken(Struct, kw_only=True):
    """What a webhook did: messages and statuses it carried, and how many were new."""

    messages: int
    statuses: int
    new: int
