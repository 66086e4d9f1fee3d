"""Access and portability (Art. 15 and 20 GDPR): one ZIP with everything about one person.

The package holds one JSON document per source (``kith.json`` for Kith itself, one per plugin
that answers ``kith_subject_export``), CSV versions of every table (``csv/<source>/<table>.csv``),
``schema.json`` (a JSON Schema of the package: an object whose keys are the JSON file names)
and ``README.txt`` for the person: what each file is, the purposes, recipients, retention and
sources of the data (Art. 15(1)), and their rights.

It is written as a stream: rows are read a page at a time, each JSON document is written into
the ZIP as it is produced, and the CSV copies are spooled to temporary files (on disk past a
megabyte) and added after their document, so a subject with many thousands of interactions is
exported in flat memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import re
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec
from kith import __version__
from kith.actor import SYSTEM, Actor
from kith.errors import NotFound
from kith.events import utcnow
from kith.ids import new_id
from kith.privacy.rights import recipients as recipient_notices
from kith.privacy.rights import registry
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.consent import ConsentService
from kith.privacy.requests.service import CertificateEntry, PlannedAction, RequestJob
from kith.privacy.rights.restriction import RestrictionService
from kith.privacy.rights.ropa import LAWFUL_BASIS_TEXT
from kith.privacy.rights.settings import subject_settings
from kith.privacy.rights.tables import ExportPackage, LegalHold, RecipientNoticeRecord
from kith.privacy.requests.settings import workflow_settings
from kith.runtime import Kith
from kith.subjects import ExportSection
from kith.tables import Contact, ContactPoint, Interaction

FORMAT = "kith-export/1"
PAGE = 500
SPOOL_BYTES = 1 << 20
SOURCE = "kith"
_SAFE = re.compile(r"[^a-z0-9_.-]+")

TABLE_DESCRIPTIONS: dict[str, str] = {
    "contact": "Your contact record: name, kind, tags, where it came from, when it changed",
    "contact_points": "Your email addresses and phone numbers",
    "interactions": "Your timeline: calls, emails, meetings, notes, form submissions, orders, "
    "tasks",
    "consent_status": "Where your consent stands for each purpose, derived from your consent "
    "events (kith.privacy.json)",
    "audit_log": "Who read, exported, changed or erased your data, when and how",
    "restrictions": "Restrictions of processing you asked for (Art. 18)",
    "recipient_notices": "Recipients we told of a correction, restriction or erasure (Art. 19)",
    "legal_holds": "Records kept because a law requires it, and until when",
}


def _safe(name: str) -> str:
    return _SAFE.sub("_", name.lower()).strip("_") or "plugin"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


@dataclass
class TableShape:
    """What the rows of one table looked like, for its schema and its CSV header."""

    rows: int = 0
    types: dict[str, set[str]] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)

    def see(self, row: dict[str, Any]) -> None:
        self.rows += 1
        for key, value in row.items():
            self.types.setdefault(key, set()).add(_json_type(value))
            self.present[key] = self.present.get(key, 0) + 1

    def schema(self, description: str) -> dict[str, Any]:
        properties = {}
        for key, types in self.types.items():
            kinds = sorted(types)
            properties[key] = {"type": kinds[0] if len(kinds) == 1 else kinds}
        return {
            "type": "array",
            "description": description,
            "items": {
                "type": "object",
                "properties": properties,
                "required": sorted(k for k, n in self.present.items() if n == self.rows),
                "additionalProperties": False,
            },
        }


class _CsvSpool:
    """One table's CSV, written to a temporary file while its JSON document is streamed."""

    def __init__(self, columns: list[str] | None = None) -> None:
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self._text = io.TextIOWrapper(self.file, encoding="utf-8", newline="")  # type: ignore[type-var]
        self._writer = csv.writer(self._text)
        self.columns = columns

    def write(self, row: dict[str, Any]) -> None:
        if self.columns is None:
            self.columns = list(row)
            self._writer.writerow(self.columns)
        self._writer.writerow([_cell(row.get(column)) for column in self.columns])

    def finish(self) -> IO[bytes]:
        if self.columns is None:
            self._writer.writerow([])
        self._text.flush()
        self._text.detach()
        self.file.seek(0)
        return self.file


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return msgspec.json.encode(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class ExportSummary:
    """What a package holds: per file and table, how many rows."""

    files: dict[str, dict[str, int]] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    sha256: str = ""
    size: int = 0


Pages = Callable[[], AsyncIterator[list[dict[str, Any]]]]


class ExportBuilder:
    """Writes the package of one contact into a ZIP file."""

    def __init__(self, kith: Kith, contact_id: uuid.UUID) -> None:
        self.kith = kith
        self.contact_id = contact_id
        self.exported_at = utcnow()
        self.summary = ExportSummary()
        self.shapes: dict[str, dict[str, TableShape]] = {}
        self.descriptions: dict[str, str] = {}

    # -- Kith's own tables, a page at a time -------------------------------------------------

    async def _contact(self) -> AsyncIterator[list[dict[str, Any]]]:
        row = await Contact.select().where(Contact.id == self.contact_id).first().run()
        if row is None:
            return
        names = await self.kith.protector.reveal(
            self.contact_id,
            Contact._meta.tablename,
            self.contact_id,
            {c: row[c] for c in ("display_name", "given_name", "family_name")},
        )
        tags = row["tags"]
        if isinstance(tags, str):
            tags = msgspec.json.decode(tags)
        self.summary.sources[f"contact: {row['source']}"] = 1
        yield [
            {
                "id": str(row["id"]),
                "kind": row["kind"],
                "name": names["display_name"],
                "given_name": names["given_name"],
                "family_name": names["family_name"],
                "organization_id": str(row["organization"]) if row["organization"] else None,
                "tags": list(tags or []),
                "source": row["source"],
                "archived": bool(row["archived"]),
                "created_at": row["created_at"],
                "updated_at": row["updated_at"],
            }
        ]

    async def _points(self) -> AsyncIterator[list[dict[str, Any]]]:
        rows = await (
            ContactPoint.select()
            .where(ContactPoint.contact == self.contact_id)
            .order_by(ContactPoint.position)
            .run()
        )
        out = []
        for row in rows:
            value = (
                await self.kith.protector.reveal(
                    self.contact_id,
                    ContactPoint._meta.tablename,
                    row["id"],
                    {"value": row["value"]},
                )
            )["value"]
            out.append(
                {
                    "kind": row["kind"],
                    "value": value,
                    "label": row["label"],
                    "primary": bool(row["is_primary"]),
                }
            )
        yield out

    async def _interactions(self) -> AsyncIterator[list[dict[str, Any]]]:
        table = Interaction._meta.tablename
        after: uuid.UUID | None = None
        while True:
            query = Interaction.select().where(Interaction.contact == self.contact_id)
            if after is not None:
                query = query.where(Interaction.id > after)
            rows = await query.order_by(Interaction.id).limit(PAGE).run()
            if not rows:
                return
            page = []
            for row in rows:
                text = await self.kith.protector.reveal(
                    row["contact"],
                    table,
                    row["id"],
                    {"summary": row["summary"], "body": row["body"]},
                )
                source = f"interaction: {row['source']}"
                self.summary.sources[source] = self.summary.sources.get(source, 0) + 1
                page.append(
                    {
                        "id": str(row["id"]),
                        "kind": row["kind"],
                        "direction": row["direction"],
                        "occurred_at": row["occurred_at"],
                        "summary": text["summary"],
                        "body": text["body"],
                        "channel": row["channel"],
                        "duration_s": row["duration_s"],
                        "amount": None if row["amount"] is None else str(row["amount"]),
                        "source": row["source"],
                        "external_id": row["external_id"],
                        "due_at": row["due_at"],
                        "done_at": row["done_at"],
                        "created_at": row["created_at"],
                    }
                )
            yield page
            after = rows[-1]["id"]
            if len(rows) < PAGE:
                return

    async def _consent_status(self) -> AsyncIterator[list[dict[str, Any]]]:
        service = ConsentService(self.kith)
        yield [msgspec.to_builtins(s) for s in await service.current(self.contact_id)]

    async def _audit(self) -> AsyncIterator[list[dict[str, Any]]]:
        log = AuditLog(self.kith)
        before: uuid.UUID | None = None
        while True:
            entries = await log.entries(self.contact_id, limit=PAGE, before=before)
            if not entries:
                return
            yield [
                {
                    "at": e.at,
                    "actor": e.actor,
                    "channel": e.channel,
                    "action": e.action,
                    "details": e.details,
                }
                for e in entries
            ]
            before = entries[-1].id
            if len(entries) < PAGE:
                return

    async def _restrictions(self) -> AsyncIterator[list[dict[str, Any]]]:
        found = await RestrictionService(self.kith).history(self.contact_id)
        yield [
            {
                "ground": r.ground_text,
                "started_at": r.started_at,
                "lifted_at": r.lifted_at,
                "lift_notice": r.lift_notice,
            }
            for r in found
        ]

    async def _notices(self) -> AsyncIterator[list[dict[str, Any]]]:
        yield [
            {
                "recipient": row["recipient"],
                "action": row["action"],
                "outcome": row["outcome"],
                "detail": row["detail"],
                "at": row["at"],
            }
            for row in await recipient_notices.history(self.kith, self.contact_id)
        ]

    async def _holds(self) -> AsyncIterator[list[dict[str, Any]]]:
        rows = await LegalHold.select().where(LegalHold.contact_id == self.contact_id).run()
        yield [
            {
                "ground": row["ground"],
                "records": row["held_count"],
                "held_until": row["held_until"],
                "released_at": row["released_at"],
            }
            for row in rows
        ]

    def kith_tables(self) -> dict[str, Pages]:
        return {
            "contact": self._contact,
            "contact_points": self._points,
            "interactions": self._interactions,
            "consent_status": self._consent_status,
            "audit_log": self._audit,
            "restrictions": self._restrictions,
            "recipient_notices": self._notices,
            "legal_holds": self._holds,
        }

    # -- plugins -----------------------------------------------------------------------------

    async def plugin_sections(self) -> list[ExportSection]:
        plugins = self.kith.plugins
        if plugins is None:
            return []
        results = await plugins.call_async(
            "kith_subject_export", kith=self.kith, contact_id=self.contact_id
        )
        sections = []
        for result in results:
            if isinstance(result.value, ExportSection):
                sections.append(result.value)
        return sections

    # -- writing -----------------------------------------------------------------------------

    async def _document(
        self,
        archive: zipfile.ZipFile,
        source: str,
        description: str,
        tables: dict[str, Pages],
        descriptions: dict[str, str],
    ) -> None:
        """Write ``<source>.json`` page by page, then its CSVs."""
        name = f"{_safe(source)}.json" if source != SOURCE else "kith.json"
        self.shapes[name] = {}
        self.descriptions[name] = description
        spools: dict[str, _CsvSpool] = {}
        counts: dict[str, int] = {}
        header = {
            "format": FORMAT,
            "source": source,
            "description": description,
            "exported_at": self.exported_at,
            "subject": {"contact_id": str(self.contact_id)},
        }
        with archive.open(name, "w", force_zip64=True) as out:
            head = msgspec.json.encode(header)
            out.write(head[:-1] + b',"tables":{')
            for index, (table, pages) in enumerate(tables.items()):
                shape = TableShape()
                spool = _CsvSpool()
                out.write((b"," if index else b"") + msgspec.json.encode(table) + b":[")
                first = True
                async for page in pages():
                    for row in page:
                        plain = msgspec.to_builtins(row)
                        shape.see(plain)
                        spool.write(plain)
                        out.write((b"" if first else b",") + msgspec.json.encode(plain))
                        first = False
                out.write(b"]")
                self.shapes[name][table] = shape
                spools[table] = spool
                counts[table] = shape.rows
                self.descriptions[f"{name}#{table}"] = descriptions.get(
                    table, f"{table.replace('_', ' ').capitalize()} ({source})"
                )
            out.write(b"}}")
        self.summary.files[name] = counts
        for table, spool in spools.items():
            csv_name = f"csv/{_safe(source)}/{_safe(table)}.csv"
            with spool.finish() as data, archive.open(csv_name, "w", force_zip64=True) as out:
                while chunk := data.read(1 << 16):
                    out.write(chunk)

    async def write(self, target: Path | IO[bytes]) -> ExportSummary:
        """Write the whole package to ``target`` (a path or a binary file)."""
        if not await Contact.exists().where(Contact.id == self.contact_id):
            raise NotFound(f"contact {self.contact_id} does not exist")
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            await self._document(
                archive,
                SOURCE,
                "What Kith itself holds about you: your contact record, emails and phones, "
                "timeline, where your consent stands, the audit log of your data, restrictions, "
                "notices to recipients and records kept under a legal hold",
                self.kith_tables(),
                TABLE_DESCRIPTIONS,
            )
            for section in await self.plugin_sections():
                tables = {table: _in_memory(rows) for table, rows in sorted(section.tables.items())}
                await self._document(archive, section.source, section.description, tables, {})
            archive.writestr("schema.json", msgspec.json.format(msgspec.json.encode(self.schema())))
            archive.writestr("README.txt", self.readme())
        return self.summary

    # -- the schema and the README -----------------------------------------------------------

    def schema(self) -> dict[str, Any]:
        """A JSON Schema (2020-12) of the package: an object whose keys are the JSON files."""
        documents: dict[str, Any] = {}
        for name, tables in self.shapes.items():
            documents[name] = {
                "type": "object",
                "description": self.descriptions[name],
                "properties": {
                    "format": {"const": FORMAT},
                    "source": {"type": "string"},
                    "description": {"type": "string"},
                    "exported_at": {"type": "string", "format": "date-time"},
                    "subject": {
                        "type": "object",
                        "properties": {"contact_id": {"type": "string", "format": "uuid"}},
                        "required": ["contact_id"],
                        "additionalProperties": False,
                    },
                    "tables": {
                        "type": "object",
                        "properties": {
                            table: shape.schema(self.descriptions[f"{name}#{table}"])
                            for table, shape in tables.items()
                        },
                        "required": sorted(tables),
                        "additionalProperties": False,
                    },
                },
                "required": ["format", "source", "exported_at", "subject", "tables"],
                "additionalProperties": False,
            }
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Kith personal data export",
            "description": "The JSON documents of one export package, by file name. Validate "
            "the package by loading every .json file except this one into an object keyed by "
            "file name.",
            "type": "object",
            "properties": documents,
            "required": sorted(documents),
            "additionalProperties": False,
        }

    def readme(self) -> str:
        settings = self.kith.settings
        workflow = workflow_settings(settings)
        controller = workflow.controller
        lines = [
            "YOUR PERSONAL DATA",
            "==================",
            "",
            f"Exported on {self.exported_at:%Y-%m-%d %H:%M} UTC for contact {self.contact_id}.",
        ]
        if controller.name:
            lines.append(
                f"Controller: {controller.name}"
                + (f", {controller.contact}" if controller.contact else "")
            )
        if controller.dpo:
            lines.append(f"Data protection officer: {controller.dpo}")
        lines += [
            "",
            "This package holds a copy of all personal data we hold about you (Art. 15 GDPR), in",
            "a structured, machine-readable form you may take to another service (Art. 20).",
            "",
            "FILES",
            "-----",
        ]
        for name, tables in self.shapes.items():
            lines.append(f"{name}: {self.descriptions[name]}")
            for table, shape in tables.items():
                rows = f"{shape.rows} row{'' if shape.rows == 1 else 's'}"
                lines.append(f"  - {table} ({rows}): {self.descriptions[f'{name}#{table}']}")
        lines += [
            "csv/<source>/<table>.csv: the same tables as CSV (UTF-8, one row per record; lists",
            "  and nested values as JSON text), for spreadsheets.",
            "schema.json: a JSON Schema (2020-12) describing every JSON file above.",
            "README.txt: this explanation.",
            "",
            "WHY WE PROCESS YOUR DATA (purposes and lawful bases)",
            "----------------------------------------------------",
        ]
        for purpose in registry.purposes(self.kith).values():
            basis = LAWFUL_BASIS_TEXT.get(purpose.lawful_basis, purpose.lawful_basis)
            lines.append(f"- {purpose.name}: {purpose.description} (lawful basis: {basis})")
        lines += ["", "WHO RECEIVES IT (recipients)", "----------------------------"]
        found = registry.recipients(self.kith)
        if not found:
            lines.append("- Nobody outside our organisation.")
        for recipient in found:
            where = (
                f" (in {recipient.country}, safeguards: {recipient.safeguards})"
                if recipient.country
                else ""
            )
            lines.append(f"- {recipient.name}: {recipient.description}{where}")
        lines += ["", "HOW LONG WE KEEP IT (retention)", "-------------------------------"]
        rules = workflow.retention
        if not rules:
            lines.append("- As long as we have a customer relationship with you, unless you ask us")
            lines.append("  to erase it earlier.")
        for rule in rules:
            text = rule.description or rule.target.replace("_", " ")
            lines.append(f"- {text}: {rule.keep}")
        for hold in subject_settings(settings).legal_holds:
            lines.append(
                f"- {', '.join(hold.kinds)} records: {hold.keep}, also after an erasure, because "
                f"the law requires it ({hold.ground})"
            )
        lines += ["", "WHERE IT CAME FROM (sources)", "----------------------------"]
        for source, count in sorted(self.summary.sources.items()):
            lines.append(f"- {source} ({count} record{'s' if count != 1 else ''})")
        lines += [
            "  (api: entered by our staff; cli: entered by an administrator; other names are the",
            "  systems that brought the data in, such as web forms, telephony or accounting.)",
            "",
            "YOUR RIGHTS",
            "-----------",
            "You may ask us to correct (Art. 16), erase (Art. 17) or restrict (Art. 18) your",
            "data, object to its use (Art. 21) and withdraw consent at any time, and you may",
            "complain to a data protection supervisory authority (Art. 77). We make no",
            "decisions about you by automated means alone (Art. 22).",
            "",
            f"Generated by Kith {__version__}.",
        ]
        return "\n".join(lines) + "\n"


def _in_memory(rows: list[dict[str, Any]]) -> Pages:
    async def pages() -> AsyncIterator[list[dict[str, Any]]]:
        yield rows

    return pages


# -- the service and the request executor ----------------------------------------------------


class ExportOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    contact_id: uuid.UUID
    request_id: uuid.UUID | None
    file_name: str
    path: str
    sha256: str
    size: int
    files: dict[str, dict[str, int]]
    created_at: dt.datetime


def exports_folder(kith: Kith) -> Path:
    folder = kith.settings.home / "exports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


class ExportService:
    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    async def export(
        self,
        contact_id: uuid.UUID,
        *,
        actor: Actor = SYSTEM,
        channel: str = "cli",
        request_id: uuid.UUID | None = None,
    ) -> ExportOut:
        """Write a package to KITH_HOME/exports (mode 0600) and record it."""
        export_id = new_id()
        folder = exports_folder(self.kith)
        file_name = f"kith-export-{contact_id}-{export_id.hex[:12]}.zip"
        path = folder / file_name
        partial = path.with_suffix(".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                summary = await ExportBuilder(self.kith, contact_id).write(handle)
            digest = hashlib.sha256()
            with partial.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        size = path.stat().st_size
        now = utcnow()
        async with self.kith.unit_of_work(actor):
            await ExportPackage.insert(
                ExportPackage(
                    id=export_id,
                    contact_id=contact_id,
                    request_id=request_id,
                    file_name=file_name,
                    sha256=digest.hexdigest(),
                    size=size,
                    created_by=actor.ref,
                    created_at=now,
                )
            ).run()
            await AuditLog(self.kith).record(
                contact_id,
                "export",
                actor=actor,
                channel=channel,
                request_id=request_id,
                details={"file": file_name, "tables": summary.files},
            )
        return ExportOut(
            id=export_id,
            contact_id=contact_id,
            request_id=request_id,
            file_name=file_name,
            path=str(path),
            sha256=digest.hexdigest(),
            size=size,
            files=summary.files,
            created_at=now,
        )

    async def for_request(self, request_id: uuid.UUID) -> ExportOut | None:
        row = (
            await ExportPackage.select()
            .where((ExportPackage.request_id == request_id) & ExportPackage.deleted_at.is_null())
            .order_by(ExportPackage.created_at, ascending=False)
            .first()
            .run()
        )
        if row is None:
            return None
        path = exports_folder(self.kith) / row["file_name"]
        if not path.exists():
            return None
        return ExportOut(
            id=row["id"],
            contact_id=row["contact_id"],
            request_id=row["request_id"],
            file_name=row["file_name"],
            path=str(path),
            sha256=row["sha256"],
            size=int(row["size"]),
            files={},
            created_at=row["created_at"],
        )

    async def prune(self, now: dt.datetime | None = None) -> int:
        """Delete packages older than ``exports_kept_days``; returns how many."""
        days = subject_settings(self.kith.settings).exports_kept_days
        before = (now or utcnow()) - dt.timedelta(days=days)
        rows = await ExportPackage.select(ExportPackage.id, ExportPackage.file_name).where(
            (ExportPackage.created_at < before) & ExportPackage.deleted_at.is_null()
        )
        folder = exports_folder(self.kith)
        for row in rows:
            (folder / row["file_name"]).unlink(missing_ok=True)
        if rows:
            await ExportPackage.update({ExportPackage.deleted_at: utcnow()}).where(
                ExportPackage.id.is_in([row["id"] for row in rows])
            )
        return len(rows)

    async def preview(self, contact_id: uuid.UUID) -> list[PlannedAction]:
        """The files and row counts a package would hold now."""
        builder = ExportBuilder(self.kith, contact_id)
        counts = {
            "contact": await Contact.count().where(Contact.id == contact_id),
            "contact_points": await ContactPoint.count().where(ContactPoint.contact == contact_id),
            "interactions": await Interaction.count().where(Interaction.contact == contact_id),
            "audit_log": await AuditLog(self.kith).count(contact_id),
            "recipient_notices": await RecipientNoticeRecord.count().where(
                RecipientNoticeRecord.contact_id == contact_id
            ),
        }
        planned = [
            PlannedAction(
                source=SOURCE, location=f"kith.json#{table}", method="exported", count=int(count)
            )
            for table, count in counts.items()
        ]
        for section in await builder.plugin_sections():
            for table, rows in sorted(section.tables.items()):
                planned.append(
                    PlannedAction(
                        source=section.source,
                        location=f"{_safe(section.source)}.json#{table}",
                        method="exported",
                        count=len(rows),
                    )
                )
        return planned


class AccessExecutor:
    """The request workflow's executor for access and portability requests: one package."""

    async def preview(self, job: RequestJob) -> list[PlannedAction]:
        if job.contact_id is None:
            return [
                PlannedAction(
                    source=SOURCE,
                    location="(no contact holds this email or phone)",
                    method="nothing_held",
                )
            ]
        return await ExportService(job.kith).preview(job.contact_id)

    async def execute(self, job: RequestJob) -> list[CertificateEntry]:
        if job.contact_id is None:
            return [
                CertificateEntry(
                    source=SOURCE,
                    location="(no contact holds this email or phone)",
                    method="nothing_held",
                    outcome="not_applicable",
                    detail="we hold no personal data under this email or phone",
                )
            ]
        service = ExportService(job.kith)
        done = await service.for_request(job.request.id)
        if done is None:
            done = await service.export(
                job.contact_id,
                actor=job.actor,
                channel="request",
                request_id=job.request.id,
            )
            await job.checkpoint(export_file=done.file_name, export_files=done.files)
        else:
            # Resumed after the package was written: its contents are in the checkpoint.
            done.files = dict(job.progress.get("export_files") or {})
        entries = [
            CertificateEntry(
                source=SOURCE if name == "kith.json" else name.removesuffix(".json"),
                location=f"{name}#{table}",
                method="exported",
                count=count,
            )
            for name, tables in done.files.items()
            for table, count in tables.items()
        ]
        entries.append(
            CertificateEntry(
                source=SOURCE,
                location=done.file_name,
                method="export_package",
                count=done.size,
                detail=f"sha256 {done.sha256}",
            )
        )
        return entries
