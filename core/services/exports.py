"""Exporting contacts as CSV: the contacts a list would show, read a page at a time and written
as they are read, so an export of a million contacts needs no more memory than one of ten."""

from __future__ import annotations

import collections
import csv
import io
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from kith.actor import SYSTEM, Actor
from kith.ids import new_id
from kith.pagination import MAX_LIMIT
from kith.runtime import Kith
from kith.schemas import ContactOut, FieldOut
from kith.services.contacts import (
    CONTACT_TABLE,
    ContactFilter,
    ContactService,
    Selection,
)
from kith.services.fields import FieldService
from kith.subject_checks import refused_among
from kith.tables import Contact

# Contacts read (and audited) at a time: what an export holds in memory.
PAGE_SIZE = MAX_LIMIT
# What plugins are asked before a contact is exported (a restricted one is refused).
EXPORT_ACTIVITY = "contact.export"
# The audit log's action for each contact an export contains.
EXPORT_ACTION = "csv_export"
CORE_COLUMNS = (
    "id",
    "kind",
    "name",
    "given_name",
    "family_name",
    "organization_id",
    "organization",
    "email",
    "other_emails",
    "phone",
    "other_phones",
    "tags",
    "owner_id",
    "source",
    "created_at",
    "updated_at",
    "archived",
)
# Several values in one cell (other emails, tags, the choices of a multi_choice field).
JOIN = ", "
# Organizations whose names one export keeps at hand: enough for most exports to read each
# organization's name once, and a bound on memory for those with more.
ORGANIZATION_CACHE = 10_000
# What a spreadsheet could take for a formula at the start of a cell (see _neutralised).
FORMULA_STARTS = ("=", "@", "+", "-", "\t", "\r")
BOM = "\ufeff"


class ContactExport:
    """One export of contacts: the CSV's columns and its rows, chunk by chunk.

    ``excel``: UTF-8 with a byte order mark and ``;`` between values, as spreadsheet programs
    set to a European locale open by double-click; a text starting like a formula is written
    with a leading ``'`` there, so a spreadsheet shows it rather than runs it."""

    def __init__(
        self,
        kith: Kith,
        selection: Selection,
        fields: Sequence[FieldOut],
        *,
        excel: bool,
        actor: Actor,
        channel: str | None,
        context: dict[str, Any],
    ) -> None:
        self.kith = kith
        self.selection = selection
        self.fields = list(fields)
        self.excel = excel
        self.actor = actor
        self.contacts = ContactService(kith, channel, context)
        # Ties the audit entries of one export together.
        self.id = new_id()
        self.count = 0
        self.skipped = 0
        self._organizations: collections.OrderedDict[uuid.UUID, str] = collections.OrderedDict()
        self._buffer = io.StringIO()
        self._writer = csv.writer(
            self._buffer, delimiter=";" if excel else ",", lineterminator="\r\n"
        )

    @property
    def header(self) -> list[str]:
        taken = set(CORE_COLUMNS)
        return [
            *CORE_COLUMNS,
            *(f"field.{f.name}" if f.name in taken else f.name for f in self.fields),
        ]

    async def chunks(self) -> AsyncIterator[bytes]:
        """The CSV as UTF-8 bytes: the header, then one chunk per page of contacts. Each
        page's contacts are in the audit log before the page is handed over; contacts a
        plugin refuses an export for (restricted ones) are left out and counted in
        ``skipped``."""
        self._writer.writerow(self.header)
        yield ((BOM if self.excel else "") + self._take()).encode()
        after: uuid.UUID | None = None
        more = True
        while more:
            page, more = await self.contacts.page(self.selection, after, PAGE_SIZE)
            if not page:
                break
            after = page[-1].id
            refused = await refused_among(self.kith, [c.id for c in page], EXPORT_ACTIVITY)
            kept = [contact for contact in page if contact.id not in refused]
            self.skipped += len(refused)
            names = await self._organization_names(c.organization_id for c in kept)
            await self._report([c.id for c in kept])
            for contact in kept:
                self._writer.writerow(self._row(contact, names))
            self.count += len(kept)
            yield self._take().encode()

    async def _report(self, contact_ids: list[uuid.UUID]) -> None:
        await self.contacts.report_each(contact_ids, EXPORT_ACTION, self.actor, export=str(self.id))

    def _take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text

    def _row(self, contact: ContactOut, organizations: dict[uuid.UUID, str]) -> list[str]:
        emails = _primary_first([(e.address, e.primary) for e in contact.emails])
        phones = _primary_first([(p.number, p.primary) for p in contact.phones])
        organization = contact.organization_id
        row = [
            str(contact.id),
            contact.kind,
            self._text(contact.name),
            self._text(contact.given_name),
            self._text(contact.family_name),
            "" if organization is None else str(organization),
            self._text(organizations.get(organization) if organization else None),
            self._text(emails[0] if emails else None),
            self._text(JOIN.join(emails[1:])),
            phones[0] if phones else "",
            JOIN.join(phones[1:]),
            self._text(JOIN.join(contact.tags)),
            "" if contact.owner_id is None else str(contact.owner_id),
            self._text(contact.source),
            contact.created_at.isoformat(),
            contact.updated_at.isoformat(),
            "true" if contact.archived else "false",
        ]
        for declared in self.fields:
            row.append(self._value(declared, contact.fields.get(declared.name)))
        return row

    def _value(self, declared: FieldOut, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return self._text(JOIN.join(value))
        if declared.type in ("number", "decimal"):
            return str(value)
        return self._text(str(value))

    def _text(self, value: str | None) -> str:
        if not value:
            return ""
        return _neutralised(value) if self.excel else value

    async def _organization_names(self, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
        """The names of these organizations, read (and reported as exported) once per export
        while they stay in its cache."""
        wanted = {i for i in ids if i is not None}
        missing = [i for i in wanted if i not in self._organizations]
        if missing:
            refused = await refused_among(self.kith, missing, EXPORT_ACTIVITY)
            rows = await Contact.select(Contact.id, Contact.display_name).where(
                Contact.id.is_in(missing)
            )
            shown = []
            for row in rows:
                if row["id"] in refused:
                    # Its people are exported; its name, which may only be stored, is not.
                    self._organizations[row["id"]] = ""
                    continue
                name = await self.kith.protector.reveal(
                    row["id"], CONTACT_TABLE, row["id"], {"display_name": row["display_name"]}
                )
                self._organizations[row["id"]] = name["display_name"] or ""
                shown.append(row["id"])
            await self._report(shown)
        for organization in wanted:
            if organization in self._organizations:
                self._organizations.move_to_end(organization)
        while len(self._organizations) > ORGANIZATION_CACHE:
            self._organizations.popitem(last=False)
        return {i: self._organizations[i] for i in wanted if i in self._organizations}


class ExportService:
    """CSV exports of contacts for one channel (``api``, ``cli``...): the same filters as a
    contacts list, every active custom field as a column, every contact exported recorded in
    the audit log (``csv_export``, with the export's id)."""

    def __init__(
        self, kith: Kith, channel: str | None = None, context: dict[str, Any] | None = None
    ) -> None:
        self.kith = kith
        self.channel = channel
        self.context = dict(context or {})

    async def contacts(
        self, filters: ContactFilter, *, excel: bool = False, actor: Actor = SYSTEM
    ) -> ContactExport:
        """An export of the contacts ``filters`` keep. The filters are checked here (a bad
        one raises :class:`kith.errors.InvalidInput` before anything is written); the rows
        are read as :meth:`ContactExport.chunks` is iterated."""
        contacts = ContactService(self.kith, self.channel, self.context)
        selection = await contacts.select(filters)
        declared = await FieldService(self.kith).declared()
        return ContactExport(
            self.kith,
            selection,
            declared,
            excel=excel,
            actor=actor,
            channel=self.channel,
            context=self.context,
        )


def _primary_first(values: list[tuple[str, bool]]) -> list[str]:
    return [value for value, primary in values if primary] + [
        value for value, primary in values if not primary
    ]


def _neutralised(text: str) -> str:
    """``text`` as a spreadsheet shows it rather than computes it: a leading ``'`` before
    what would start a formula. Numbers (``+44...``, ``-12``) are left as they are."""
    if not text.startswith(FORMULA_STARTS):
        return text
    if text[0] in "+-" and text[1:].replace(".", "", 1).isdigit():
        return text
    return "'" + text
