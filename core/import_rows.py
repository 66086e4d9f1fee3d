"""One CSV record of an import turned into what the services take: a contact to create (its
emails and phones normalised) or an interaction to log with the keys that find its contact.

Pure functions of the record and the mapping, so that a process pool can run them; a record
that does not fit raises :class:`RowError` with a reason for the error file."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import msgspec
from kith.errors import InvalidInput
from kith.import_mapping import FIELD_PREFIX
from kith.normalize import normalize_email, normalize_phone
from kith.schemas import ContactCreate, InteractionCreate

if TYPE_CHECKING:
    from kith.import_digests import RowDigests

T = TypeVar("T")
# Several emails in one cell: separated by commas, semicolons or spaces.
_EMAILS = re.compile(r"[,;\s]+")
# Several phones in one cell: separated by commas or semicolons (a number holds spaces).
_PHONES = re.compile(r"[,;]+")
_TAGS = re.compile(r"[,;|]+")
_KINDS = {
    "person": "person",
    "people": "person",
    "individual": "person",
    "физлицо": "person",
    "физическоелицо": "person",
    "персона": "person",
    "контакт": "person",
    "organization": "organization",
    "organisation": "organization",
    "company": "organization",
    "юрлицо": "organization",
    "юридическоелицо": "organization",
    "организация": "organization",
    "компания": "organization",
}
_INTERACTION_KINDS = {
    "note": "note",
    "call": "call",
    "email": "email",
    "meeting": "meeting",
    "form_submission": "form_submission",
    "form": "form_submission",
    "order": "order",
    "task": "task",
    "заметка": "note",
    "примечание": "note",
    "звонок": "call",
    "письмо": "email",
    "встреча": "meeting",
    "заявка": "form_submission",
    "форма": "form_submission",
    "заказ": "order",
    "задача": "task",
}
_DIRECTIONS = {
    "inbound": "inbound",
    "in": "inbound",
    "incoming": "inbound",
    "входящий": "inbound",
    "входящее": "inbound",
    "вх": "inbound",
    "outbound": "outbound",
    "out": "outbound",
    "outgoing": "outbound",
    "исходящий": "outbound",
    "исходящее": "outbound",
    "исх": "outbound",
}
# Day-first forms, as Russian (and most European) exports write dates.
_TIME_FORMATS = (
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
)


class RowError(Exception):
    """Why a record was not imported (the error file's ``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RowSpec:
    """What the parsing of a record needs besides the record: picklable."""

    columns: Mapping[int, str]
    region: str
    source: str
    tags: Sequence[str] = ()
    match_field: str | None = None
    # Names the file in the external ids of interactions whose row has none (so the same
    # file imported again finds them).
    file_key: str = ""


@dataclass
class ContactRow:
    line: int
    data: ContactCreate
    organization: str | None
    # (kind, normalised value) of every email and phone, for dedupe and suppression.
    keys: list[tuple[str, str]] = field(default_factory=list)
    # Its keyed hashes, when computed with the parsing (see kith.import_digests).
    digests: RowDigests | None = None


@dataclass
class InteractionRow:
    line: int
    data: InteractionCreate
    contact_id: uuid.UUID | None
    keys: list[tuple[str, str]]
    contact_key: str | None


def _cells(cells: Sequence[str], spec: RowSpec) -> dict[str, list[str]]:
    """The non-empty values of each target, in column order."""
    found: dict[str, list[str]] = {}
    if any("\x00" in cell for cell in cells):
        # No database text column takes it (PostgreSQL refuses it outright).
        raise RowError("the row holds a NUL character")
    for index, target in spec.columns.items():
        if index < len(cells):
            value = cells[index].strip()
            if value:
                found.setdefault(target, []).append(value)
    return found


def _first(values: dict[str, list[str]], target: str) -> str | None:
    held = values.get(target)
    return held[0] if held else None


def _fold(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold().replace("ё", "\u0435"))


def _normalised(values: dict[str, list[str]], region: str) -> tuple[list[str], list[str]]:
    emails: dict[str, None] = {}
    phones: dict[str, None] = {}
    try:
        for cell in values.get("email", ()):
            for part in _EMAILS.split(cell):
                if part:
                    emails.setdefault(normalize_email(part), None)
        for cell in values.get("phone", ()):
            for part in _PHONES.split(cell):
                if part.strip():
                    phones.setdefault(normalize_phone(part, region), None)
    except InvalidInput as exc:
        raise RowError(exc.detail) from None
    return list(emails), list(phones)


def contact_row(line: int, cells: Sequence[str], spec: RowSpec) -> ContactRow:
    """The contact a record describes; :class:`RowError` when it does not make one."""
    values = _cells(cells, spec)
    kind = "person"
    given_kind = _first(values, "kind")
    if given_kind is not None:
        if _fold(given_kind) not in _KINDS:
            raise RowError(f"kind {given_kind!r} is neither a person nor an organization")
        kind = _KINDS[_fold(given_kind)]
    organization = _first(values, "organization")
    given, middle, family = (
        _first(values, t) for t in ("given_name", "middle_name", "family_name")
    )
    name = _first(values, "name")
    if name is None and middle is not None:
        # The patronymic goes between the given and family names in the displayed name.
        name = " ".join(part for part in (given, middle, family) if part)
    if kind == "organization":
        name = name or organization
        organization = None
    emails, phones = _normalised(values, spec.region)
    tags = [tag for cell in values.get("tags", ()) for tag in _TAGS.split(cell) if tag.strip()]
    fields = {
        target.removeprefix(FIELD_PREFIX): ", ".join(held)
        for target, held in values.items()
        if target.startswith(FIELD_PREFIX)
    }
    raw = {
        "kind": kind,
        "name": name,
        "given_name": given,
        "family_name": family,
        "emails": [{"address": email} for email in emails],
        "phones": [{"number": phone} for phone in phones],
        "tags": [tag.strip() for tag in [*tags, *spec.tags]],
        "source": spec.source,
        "fields": fields,
    }
    if not (name or given or family):
        raise RowError(
            "an organization needs a name"
            if kind == "organization"
            else "a person needs a name, or a given or family name"
        )
    data = _convert(raw, ContactCreate)
    keys = [("email", e) for e in emails] + [("phone", p) for p in phones]
    return ContactRow(line, data, organization, keys)


def interaction_row(line: int, cells: Sequence[str], spec: RowSpec) -> InteractionRow:
    """The interaction a record describes and how to find its contact."""
    values = _cells(cells, spec)
    contact_id = None
    if (text := _first(values, "contact_id")) is not None:
        try:
            contact_id = uuid.UUID(text)
        except ValueError:
            raise RowError(f"contact id {text!r} is not a Kith contact id") from None
    emails, phones = _normalised(values, spec.region)
    keys = [("email", e) for e in emails] + [("phone", p) for p in phones]
    contact_key = _first(values, "contact_key")
    if contact_id is None and not keys and contact_key is None:
        raise RowError("the row names no contact (a contact id, email, phone or contact key)")
    given_kind = _first(values, "kind") or "note"
    kind = _INTERACTION_KINDS.get(_fold(given_kind), _INTERACTION_KINDS.get(given_kind.lower()))
    if kind is None:
        raise RowError(
            f"kind {given_kind!r} is not one of "
            + ", ".join(sorted(set(_INTERACTION_KINDS.values())))
        )
    direction = None
    if (text := _first(values, "direction")) is not None:
        direction = _DIRECTIONS.get(_fold(text))
        if direction is None:
            raise RowError(f"direction {text!r} is neither inbound nor outbound")
    raw: dict[str, object] = {
        "kind": kind,
        "direction": direction,
        "summary": _first(values, "summary") or "",
        "body": "\n".join(values.get("body", ())),
        "channel": _first(values, "channel"),
        "source": _first(values, "source") or spec.source,
        "external_id": _first(values, "external_id") or f"row:{spec.file_key}:{line}",
    }
    if (text := _first(values, "occurred_at")) is not None:
        raw["occurred_at"] = _time(text)
    if (text := _first(values, "duration_s")) is not None:
        raw["duration_s"] = _duration(text)
    if (text := _first(values, "amount")) is not None:
        raw["amount"] = _amount(text)
    data = _convert(raw, InteractionCreate)
    return InteractionRow(line, data, contact_id, keys, contact_key)


def _convert(raw: Mapping[str, object], kind: type[T]) -> T:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        where = where.rstrip("`").lstrip(".")
        raise RowError(f"{where}: {message}" if where else message) from None


def _time(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in _TIME_FORMATS:
        try:
            return dt.datetime.strptime(text, pattern)
        except ValueError:
            continue
    raise RowError(f"{text!r} is not a date and time (like 2026-12-31 14:30 or 31.12.2026 14:30)")


def _duration(text: str) -> int:
    """Seconds, from ``95`` or ``1:35`` or ``0:01:35``."""
    parts = text.split(":")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise RowError(f"duration {text!r} is not seconds or h:mm:ss") from None
    seconds = 0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds


def _amount(text: str) -> decimal.Decimal:
    cleaned = text.replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        return decimal.Decimal(cleaned)
    except decimal.InvalidOperation:
        raise RowError(f"amount {text!r} is not a number") from None
