"""Looking for a contact's data stored readable outside the encrypted fields, in every table.

The registry of personal fields says which columns hold personal data, and
:func:`kith.privacy.encryption.plaintext_migration.leftover` checks that those are encrypted.
Neither can see a column nobody declared: the text another system answered, a note a client
typed into a field that is not personal by design, a plugin's column that should have been
declared. So ``kith privacy verify`` also reads every other text and JSON column of every table
of every registered app, and looks there for the contacts' own values in readable form:

- an email address or phone number that is a contact's, recognised by its blind index (no
  contact point is decrypted for this);
- a person's name of at least two words (display name, or given and family name), compared
  word by word, case and punctuation aside. One-word names are left out: they are ordinary
  words too often, and organisations' names are not personal data.

The report names tables, columns, what was found and how many rows, never a value. The names
are decrypted for the comparison only, as the re-index decrypts contact points: nothing is
shown to anyone, so no access is recorded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import msgspec
from kith.errors import InvalidInput
from kith.normalize import normalize_email, normalize_phone
from kith.personal import SUBJECT_TABLE
from kith.privacy.encryption.field_registry import FieldRegistry, all_tables
from kith.privacy.encryption.protector import ERASED_MARKER, PrivacyProtector, protector_of
from kith.runtime import Kith
from piccolo.columns import JSON, Column, Text, Varchar
from piccolo.table import Table

BATCH = 1000
NAME = "name"
EMAIL = "email address"
PHONE = "phone number"
PERSON = "person"
MIN_NAME_WORDS = 2
# Full names longer than this are not looked for (a display name that is a whole sentence).
MAX_NAME_WORDS = 8

_WORD = re.compile(r"\w+")
_EMAIL = re.compile(r"[\w.!#$%&'*+^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s\-().\/\u00a0]{5,}\d(?!\w)")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Exposure:
    """Rows of one column holding one kind of a contact's data in readable form."""

    column: str
    found: str
    rows: int


@dataclass
class ScanReport:
    tables: int = 0
    columns: int = 0
    rows: int = 0
    exposures: list[Exposure] = field(default_factory=list)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


class KnownValues:
    """The contacts' own values, in the forms the scan compares text with."""

    def __init__(self, protector: PrivacyProtector, region: str) -> None:
        self.protector = protector
        self.region = region
        self.names: set[str] = set()
        self.name_lengths: set[int] = set()
        self.lookups: set[str] = set()

    def add_name(self, *parts: str | None) -> None:
        words = [word for part in parts if part and part != ERASED_MARKER for word in _words(part)]
        if MIN_NAME_WORDS <= len(words) <= MAX_NAME_WORDS:
            self.names.add(" ".join(words))
            self.name_lengths.add(len(words))

    def _names_in(self, text: str) -> bool:
        words = _words(text)
        for length in self.name_lengths:
            for start in range(len(words) - length + 1):
                if " ".join(words[start : start + length]) in self.names:
                    return True
        return False

    def _known(self, kind: str, normalized: str) -> bool:
        return self.protector.lookup_key(kind, normalized) in self.lookups

    def _emails_in(self, text: str) -> bool:
        for match in _EMAIL.finditer(text):
            try:
                if self._known("email", normalize_email(match.group(0))):
                    return True
            except InvalidInput:
                continue
        return False

    def _phones_in(self, text: str) -> bool:
        for match in _PHONE.finditer(text):
            if not 7 <= len(_DIGIT.findall(match.group(0))) <= 15:
                continue
            try:
                if self._known("phone", normalize_phone(match.group(0), self.region)):
                    return True
            except InvalidInput:
                continue
        return False

    def found_in(self, text: str) -> set[str]:
        """Which kinds of a contact's values ``text`` holds readable."""
        variants = {text}
        if "%" in text:
            # An address or number inside a URL is percent-encoded.
            variants.add(unquote_plus(text))
        found: set[str] = set()
        for variant in variants:
            if self.names and self._names_in(variant):
                found.add(NAME)
            if self.lookups and "@" in variant and self._emails_in(variant):
                found.add(EMAIL)
            if self.lookups and self._phones_in(variant):
                found.add(PHONE)
        return found


async def _rows(
    table: type[Table], columns: Sequence[Column], batch: int
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every row of ``table`` (its primary key and ``columns``), a batch at a time."""
    pk = table._meta.primary_key
    last: Any = None
    while True:
        query = table.select(pk, *columns)
        if last is not None:
            query = query.where(pk > last)
        rows = await query.order_by(pk).limit(batch).run()
        if not rows:
            return
        yield rows
        last = rows[-1][pk._meta.name]


async def known_values(kith: Kith, registry: FieldRegistry, batch: int = BATCH) -> KnownValues:
    """The blind indexes of every contact point and the full names of every person."""
    protector = protector_of(kith)
    known = KnownValues(protector, kith.settings.default_region)
    for personal in registry.tables.values():
        if not any(f.searchable for f in personal.fields):
            continue
        lookup = _column(personal.table, "lookup")
        if lookup is None:
            continue
        async for rows in _rows(personal.table, [lookup], batch):
            known.lookups.update(str(row["lookup"]) for row in rows if row["lookup"])
    subjects = registry.tables.get(SUBJECT_TABLE)
    kind = _column(subjects.table, "kind") if subjects else None
    if subjects is None or kind is None:
        return known
    identity = [f.column for f in subjects.fields if f.category == "identity"]
    columns = [c for c in (_column(subjects.table, name) for name in identity) if c is not None]
    async for rows in _rows(subjects.table, [kind, *columns], batch):
        for row in rows:
            if row["kind"] != PERSON:
                continue
            names = await protector.reveal(
                row["id"], SUBJECT_TABLE, row["id"], {name: row[name] for name in identity}
            )
            known.add_name(names.get("display_name"))
            known.add_name(names.get("given_name"), names.get("family_name"))
    return known


def _column(table: type[Table], name: str) -> Column | None:
    for candidate in table._meta.columns:
        if candidate._meta.name == name:
            return candidate
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return msgspec.json.encode(value).decode("utf-8")


async def scan(kith: Kith, batch: int = BATCH) -> ScanReport:
    """Every text and JSON column of every table that is not a declared personal field,
    searched for the contacts' own values in readable form."""
    registry: FieldRegistry = protector_of(kith).context["registry"]
    known = await known_values(kith, registry, batch)
    report = ScanReport()
    counts: Counter[tuple[str, str]] = Counter()
    for name, table in sorted(all_tables(kith.database.apps).items()):
        personal = registry.tables.get(name)
        declared = set(personal.columns) if personal else set()
        columns = [
            column
            for column in table._meta.columns
            if isinstance(column, Text | Varchar | JSON)
            and column._meta.name not in declared
            and column is not table._meta.primary_key
        ]
        report.tables += 1
        report.columns += len(columns)
        if not columns:
            continue
        async for rows in _rows(table, columns, batch):
            report.rows += len(rows)
            for row in rows:
                for column in columns:
                    text = _text(row[column._meta.name])
                    if not text:
                        continue
                    for found in known.found_in(text):
                        counts[(f"{name}.{column._meta.name}", found)] += 1
    report.exposures = [
        Exposure(column=column, found=found, rows=rows)
        for (column, found), rows in sorted(counts.items())
    ]
    return report
