"""What plugins answer for one data subject: export sections, erasure outcomes, subscribers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec

from kith.events import Event


class ExportSection(msgspec.Struct, kw_only=True):
    """Everything one source (core or a plugin) holds about a subject. ``tables`` maps a table
    name to its rows (lists of plain dicts), which exports also write as CSV."""

    source: str
    description: str
    tables: dict[str, list[dict[str, Any]]] = msgspec.field(default_factory=dict)


ErasureMethod = Literal["deleted", "crypto_shredded", "anonymised", "legal_hold", "not_present"]


class ErasureOutcome(msgspec.Struct, kw_only=True):
    """What an erasure did at one location."""

    source: str
    location: str
    method: ErasureMethod
    count: int = 0
    ground: str | None = None


Handler = Callable[[Event], Awaitable[None] | None]


class Subscriber(msgspec.Struct, frozen=True, kw_only=True):
    """A named event handler. ``events`` holds names or patterns like ``contact.*`` or ``*``;
    the name identifies the subscriber in the outbox, so keep it stable."""

    name: str
    events: tuple[str, ...]
    handler: Handler
    max_attempts: int = 8
