"""What plugins answer for one data subject: export sections, erasure outcomes, subscribers."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from kith.events import Event

if TYPE_CHECKING:
    from kith.runtime import Kith

Row = dict[str, Any]


@dataclass(frozen=True)
class RowPages:
    """A table too large to hold in memory (a long timeline): how many rows it has now, and a
    function that yields them a page at a time. Exports write it page by page."""

    count: int
    pages: Callable[[], AsyncIterator[list[Row]]]


class ExportSection(msgspec.Struct, kw_only=True):
    """Everything one source (core or a plugin) holds about a subject. ``tables`` maps a table
    name to its rows (a list of plain dicts, or :class:`RowPages`), which exports also write as
    CSV; ``descriptions`` says in a sentence for the person what a table holds. Sections of the
    same ``source`` go into one document of the export."""

    source: str
    description: str
    tables: dict[str, list[Row] | RowPages] = msgspec.field(default_factory=dict)
    descriptions: dict[str, str] = msgspec.field(default_factory=dict)

    def rows(self, table: str) -> int:
        """How many rows ``table`` holds."""
        value = self.tables[table]
        return value.count if isinstance(value, RowPages) else len(value)


ErasureMethod = Literal["deleted", "crypto_shredded", "anonymised", "legal_hold", "not_present"]


class ErasureOutcome(msgspec.Struct, kw_only=True):
    """What an erasure did at one location."""

    source: str
    location: str
    method: ErasureMethod
    count: int = 0
    ground: str | None = None


class ConsentGiven(msgspec.Struct, frozen=True, kw_only=True):
    """Consent a person gave through a plugin's channel (a web form's ticked box), for
    :func:`kith.record_consent`: the purpose, the exact notice text shown, the channel, the
    interaction that documents it (time, address, user agent of a form submission) and when.
    ``created_in_transaction``: the caller made the contact and that interaction in the
    transaction it records the consent in, so the ledger does not look them up again (they
    may still be waiting to be written at the commit)."""

    purpose: str
    notice_text: str
    channel: str
    source_interaction_id: uuid.UUID | None = None
    occurred_at: dt.datetime | None = None
    created_in_transaction: bool = False


class ConsentReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What the consent ledger recorded: its event, and the notice version and SHA-256 the
    consent refers to."""

    event_id: uuid.UUID
    purpose: str
    notice_version: int | None
    notice_sha256: str | None


class ConsentLine(msgspec.Struct, frozen=True, kw_only=True):
    """Where a person stands for one purpose, as a consent ledger answers
    ``kith_subject_consents``: ``status`` is ``given``, ``withdrawn`` or ``none``; ``since``
    when, ``channel`` where (a form, the phone, the web UI) and ``notice_version`` which notice
    the latest event refers to."""

    purpose: str
    lawful_basis: str
    status: str
    since: dt.datetime | None = None
    channel: str | None = None
    notice_version: int | None = None


class SubjectHold(msgspec.Struct, frozen=True, kw_only=True):
    """Interactions an erasure must keep because a law requires them (a legal hold): those of
    ``kinds`` that happened at or after ``since`` (all of them when None). They are
    re-encrypted under the data key of ``seal_for`` (the hold's own subject id), so that the
    person's key can be destroyed while the records stay readable until the hold ends."""

    kinds: tuple[str, ...]
    since: dt.datetime | None
    seal_for: uuid.UUID


# Called with the Kith that dispatches the event, so a plugin needs no global to reach it.
Handler = Callable[["Kith", Event], Awaitable[None] | None]


class Subscriber(msgspec.Struct, frozen=True, kw_only=True):
    """A named event handler, called as ``handler(kith, event)``. ``events`` holds names or
    patterns like ``contact.*`` or ``*``; the name identifies the subscriber in the outbox, so
    keep it stable."""

    name: str
    events: tuple[str, ...]
    handler: Handler
    max_attempts: int = 8


LawfulBasis = Literal[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
]
LAWFUL_BASES: tuple[str, ...] = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)


class Purpose(msgspec.Struct, frozen=True, kw_only=True):
    """A purpose of processing personal data (Art. 6 GDPR), declared by settings or a plugin.

    Processing under ``consent`` needs a current "given" consent; under
    ``legitimate_interests`` or ``public_task`` a withdrawal counts as an objection (Art. 21).
    """

    name: str
    description: str
    lawful_basis: LawfulBasis
    owner: str = "kith"


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    """Somewhere personal data is sent (Art. 19 and Art. 30(1)(d) GDPR): a telephony provider,
    an accounting system, a webhook consumer. ``country`` is set for transfers outside the EEA,
    with ``safeguards`` naming the transfer mechanism (e.g. standard contractual clauses)."""

    name: str
    description: str
    categories: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    country: str | None = None
    safeguards: str | None = None
    owner: str = "kith"


RecipientAction = Literal["rectification", "restriction", "restriction_lifted", "erasure"]
NoticeOutcome = Literal["done", "failed", "not_applicable"]


class RecipientNotice(msgspec.Struct, frozen=True, kw_only=True):
    """How telling one recipient of a rectification, restriction or erasure went (Art. 19).

    ``done``: the recipient was told (or the notice is queued for sure delivery);
    ``failed``: it could not be told, ``detail`` says why; ``not_applicable``: this subject's
    data never reached the recipient. ``count``: how many of the recipient's endpoints
    (webhook subscriptions, accounts...) were told. ``detail`` and ``count`` go into
    certificates: no personal data."""

    outcome: NoticeOutcome
    detail: str = ""
    count: int = 0


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """One access to a data subject's personal data, for the audit log: who (``actor``, an
    actor reference like ``user:<id>``), what (``action``: read, create, update, archive,
    export, erase...), through which ``channel`` (api, cli, worker...) and ``details`` (which
    fields or items; they may name the person, so the audit log stores them encrypted)."""

    contact_id: uuid.UUID
    action: str
    actor: str
    channel: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)
