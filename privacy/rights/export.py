"""Access and portability (Art. 15 and 20 GDPR): one ZIP with everything about one person.

The package holds one JSON document per source (``kith.json`` for Kith itself, one per plugin
that answers ``kith_subject_export``), CSV versions of every table (``csv/<source>/<table>.csv``),
``schema.json`` (a JSON Schema of the package: an object whose keys are the JSON file names)
and ``README.txt`` for the person: what each file is, the purposes, recipients, retention and
sources of the data (Art. 15(1)), and their rights.

It is written as a stream: rows are read a page at a time, each JSON document is written into
the ZIP as it is produced, and the CSV copies are spooled (past a megabyte, to a temporary file
inside ``KITH_HOME/tmp``, encrypted under a key held only in memory) and added after their
document, so a subject with many thousands of interactions is exported in flat memory.

The package is stored sealed (``.zip.sealed``): the ZIP encrypted in 64 KiB chunks under a
random package key, which is stored in the file's header encrypted under the subject's data
key. Erasure destroys that key, so a copy of the package left anywhere (a backup, a file
restored later) can no longer be opened. Kith opens it only to hand it to an authorised
caller, and audits that.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import re
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec
from cryptography.exceptions import InvalidTag
from kith import (
    SYSTEM,
    Actor,
    Conflict,
    ContactService,
    ExportSection,
    Kith,
    NotFound,
    Row,
    RowPages,
    __version__,
    new_id,
    utcnow,
)
from kith.privacy.encryption.keys import LoadedKey
from kith.privacy.encryption.primitives import NONCE_BYTES, TAG_BYTES, random_key, random_nonce
from kith.privacy.encryption.protector import protector_of
from kith.privacy.encryption.sealed_stream import SealedFileError, SealedWriter, read_sealed
from kith.privacy.rights import recipients as recipient_notices
from kith.privacy.rights import registry
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.consent import ConsentService
from kith.privacy.rights.outcomes import PlannedAction
from kith.privacy.rights.restriction import RestrictionService
from kith.privacy.rights.ropa import LAWFUL_BASIS_TEXT
from kith.privacy.rights.settings import rights_settings
from kith.privacy.rights.tables import ExportPackage, LegalHold

FORMAT = "kith-export/1"
PAGE = 500
SPOOL_BYTES = 1 << 20
SOURCE = "kith"
_SAFE = re.compile(r"[^a-z0-9_.-]+")

SOURCE_PRIVACY = "kith.privacy"
RIGHTS_DESCRIPTIONS: dict[str, str] = {
    "consent_events": "Consent you gave or withdrew, event by event",
    "consent_status": "Where your consent stands for each purpose, derived from your consent "
    "events",
    "audit_log": "Who read, exported, changed or erased your data, when and how",
    "restrictions": "Restrictions of processing you asked for (Art. 18)",
    "recipient_notices": "Recipients we told of a correction, restriction or erasure (Art. 19)",
    "legal_holds": "Records kept because a law requires it, and until when",
}


def _safe(name: str) -> str:
    return _SAFE.sub("_", name.lower()).strip("_") or "plugin"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def document_name(source: str) -> str:
    """The JSON file of one source in the package (``kith.json`` for core)."""
    return "kith.json" if source == SOURCE else f"{_safe(source)}.json"


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


_SPOOL_HEADER = b"kith-spool/1\n"


def home_tmp(kith: Kith) -> Path:
    """``KITH_HOME/tmp``: temporary files stay beside the data they come from, never in the
    system's shared temporary folder."""
    folder = kith.settings.home / "tmp"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


class _CsvSpool:
    """One table's CSV while its JSON document is streamed: in memory up to ``SPOOL_BYTES``,
    then in an unnamed temporary file inside ``folder``, encrypted under a key that lives only
    in this object (a crash leaves nothing readable behind)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._memory = bytearray()
        self._file: IO[bytes] | None = None
        self._sealed: SealedWriter | None = None
        self._key = b""
        self._writer = csv.writer(self)
        self.columns: list[str] | None = None

    def write(self, text: str) -> None:
        """The csv writer's sink."""
        data = text.encode("utf-8")
        if self._sealed is not None:
            self._sealed.write(data)
            return
        self._memory += data
        if len(self._memory) > SPOOL_BYTES:
            self._file = tempfile.TemporaryFile(dir=self._folder)  # noqa: SIM115
            self._key = random_key()
            self._sealed = SealedWriter(self._file, self._key, _SPOOL_HEADER)
            self._sealed.write(self._memory)
            self._memory.clear()

    def add(self, row: dict[str, Any]) -> None:
        if self.columns is None:
            self.columns = list(row)
            self._writer.writerow(self.columns)
        self._writer.writerow([_cell(row.get(column)) for column in self.columns])

    def chunks(self) -> Iterator[bytes]:
        """The CSV, once every row is in; the temporary file is gone afterwards."""
        if self.columns is None:
            self._writer.writerow([])
        if self._sealed is None or self._file is None:
            yield bytes(self._memory)
            return
        self._sealed.close()
        try:
            self._file.seek(len(_SPOOL_HEADER))
            yield from read_sealed(self._file, self._key, _SPOOL_HEADER)
        finally:
            self._file.close()


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


class ExportBuilder:
    """Writes the package of one contact into a ZIP file."""

    def __init__(self, kith: Kith, contact_id: uuid.UUID) -> None:
        self.kith = kith
        self.contact_id = contact_id
        self.exported_at = utcnow()
        self.summary = ExportSummary()
        self.shapes: dict[str, dict[str, TableShape]] = {}
        self.descriptions: dict[str, str] = {}

    # -- every source's section ------------------------------------------------------------

    async def sections(self) -> list[ExportSection]:
        """What core and every plugin answer through ``kith_subject_export``, sections of
        one source joined into one (core's first)."""
        plugins = self.kith.plugins
        if plugins is None:
            return []
        joined: dict[str, ExportSection] = {}
        for result in await plugins.call_async(
            "kith_subject_export", kith=self.kith, contact_id=self.contact_id
        ):
            section = result.value
            if not isinstance(section, ExportSection):
                continue
            into = joined.get(section.source)
            if into is None:
                joined[section.source] = msgspec.structs.replace(
                    section, tables=dict(section.tables), descriptions=dict(section.descriptions)
                )
                continue
            into.tables.update(section.tables)
            into.descriptions.update(section.descriptions)
            into.description = (
                f"{into.description.rstrip('.')}; {_lower_first(section.description)}"
            )
        return sorted(joined.values(), key=lambda section: section.source != SOURCE)

    def _see_source(self, source: str, table: str, row: Row) -> None:
        """Where the data came from, for the README: the contact's and timeline's sources."""
        kind = _SOURCED_TABLES.get(table) if source == SOURCE else None
        if kind is not None and row.get("source"):
            key = f"{kind}: {row['source']}"
            self.summary.sources[key] = self.summary.sources.get(key, 0) + 1

    # -- writing -----------------------------------------------------------------------------

    async def _document(
        self,
        archive: zipfile.ZipFile,
        source: str,
        description: str,
        tables: dict[str, list[Row] | RowPages],
        descriptions: dict[str, str],
    ) -> None:
        """Write ``<source>.json`` page by page, then its CSVs."""
        name = document_name(source)
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
            for index, (table, rows) in enumerate(tables.items()):
                shape = TableShape()
                spool = _CsvSpool(home_tmp(self.kith))
                out.write((b"," if index else b"") + msgspec.json.encode(table) + b":[")
                first = True
                async for page in _pages(rows):
                    for row in page:
                        self._see_source(source, table, row)
                        plain = msgspec.to_builtins(row)
                        shape.see(plain)
                        spool.add(plain)
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
            with archive.open(csv_name, "w", force_zip64=True) as out:
                for chunk in spool.chunks():
                    out.write(chunk)

    async def write(self, target: Path | IO[bytes] | _Counting) -> ExportSummary:
        """Write the whole package to ``target`` (a path or a binary file)."""
        if not await ContactService(self.kith).exists(self.contact_id):
            raise NotFound(f"contact {self.contact_id} does not exist")
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for section in await self.sections():
                await self._document(
                    archive,
                    section.source,
                    section.description,
                    section.tables,
                    section.descriptions,
                )
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
        rights = rights_settings(settings)
        controller = rights.controller
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
        rules = rights.retention_rules()
        if not rules:
            lines.append("- As long as we have a customer relationship with you, unless you ask us")
            lines.append("  to erase it earlier.")
        for rule in rules:
            text = rule.description or rule.target.replace("_", " ")
            lines.append(f"- {text}: {rule.keep}")
        for hold in rights.holds():
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


# Tables whose rows name the system they came from (for the README), by source kith's table.
_SOURCED_TABLES = {"contact": "contact", "interactions": "interaction"}


async def _pages(rows: list[Row] | RowPages) -> AsyncIterator[list[Row]]:
    if isinstance(rows, RowPages):
        async for page in rows.pages():
            yield page
    else:
        yield rows


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


@dataclass
class PackageDownload:
    """A package being handed out: its readable chunks, the ZIP's name and size."""

    chunks: Iterator[bytes]
    file_name: str
    size: int


# -- sealed packages ---------------------------------------------------------------------------

PACKAGE_MAGIC = b"kith-export-sealed/1\n"
SEALED_SUFFIX = ".zip.sealed"
_ID = 16
# magic, contact id, export id, data key id, nonce, the package key sealed under the data key.
_HEADER_BYTES = len(PACKAGE_MAGIC) + 3 * _ID + NONCE_BYTES + 32 + TAG_BYTES


class PackageUnreadable(Conflict):
    """An export package that cannot be opened: the person was erased, or the file is not
    one of this installation's packages, or it was changed."""


def _package_context(contact_id: uuid.UUID, export_id: uuid.UUID, key_id: uuid.UUID) -> bytes:
    # Binds the package key to its package and subject, apart from every field the data key
    # encrypts (whose associated data names a table and a column).
    return b"kith/export-package|" + contact_id.bytes + export_id.bytes + key_id.bytes


def _package_header(key: LoadedKey, export_id: uuid.UUID, package_key: bytes) -> bytes:
    nonce = random_nonce()
    wrapped = key.cipher.encrypt(
        nonce, package_key, _package_context(key.subject, export_id, key.key_id)
    )
    return PACKAGE_MAGIC + key.subject.bytes + export_id.bytes + key.key_id.bytes + nonce + wrapped


class _Counting:
    """What the ZIP writer writes to: counts and hashes the plaintext on its way to the
    sealed file (the size and checksum the person can check their copy against)."""

    def __init__(self, sink: SealedWriter) -> None:
        self._sink = sink
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self._sink.write(data)

    def tell(self) -> int:
        return self._sink.tell()

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        """The ZIP is finished; the sealed file is closed by whoever opened it."""


async def open_package(kith: Kith, path: Path, contact_id: uuid.UUID) -> Iterator[bytes]:
    """The ZIP inside the sealed package at ``path`` of contact ``contact_id``, chunk by chunk;
    :class:`PackageUnreadable` when it cannot be opened (the person was erased: their key, and
    with it the package key, is destroyed)."""
    if not path.name.endswith(SEALED_SUFFIX):
        # A package written before packages were sealed.
        return _plain_chunks(path)
    handle = path.open("rb")
    try:
        header = handle.read(_HEADER_BYTES)
        package_key = await _package_key(kith, header, contact_id, path)
    except BaseException:
        handle.close()
        raise
    return _sealed_chunks(handle, package_key, header)


async def _package_key(kith: Kith, header: bytes, contact_id: uuid.UUID, path: Path) -> bytes:
    if len(header) != _HEADER_BYTES or not header.startswith(PACKAGE_MAGIC):
        raise PackageUnreadable(f"{path.name} is not a sealed export package")
    at = len(PACKAGE_MAGIC)
    subject, export_id, key_id = (
        uuid.UUID(bytes=header[at + i * _ID : at + (i + 1) * _ID]) for i in range(3)
    )
    at += 3 * _ID
    if subject != contact_id:
        raise PackageUnreadable(f"{path.name} is the package of another contact")
    key = await protector_of(kith).keys.by_id(key_id, subject)
    if not isinstance(key, LoadedKey):
        raise PackageUnreadable(
            f"{path.name} can no longer be opened: contact {subject} was erased and its data "
            "key destroyed"
        )
    if key.subject != subject:
        raise PackageUnreadable(f"{path.name} is sealed under another contact's key")
    nonce, wrapped = header[at : at + NONCE_BYTES], header[at + NONCE_BYTES :]
    try:
        return key.cipher.decrypt(nonce, wrapped, _package_context(subject, export_id, key_id))
    except InvalidTag:
        raise PackageUnreadable(f"{path.name} was changed: its package key does not open") from None


def _sealed_chunks(handle: IO[bytes], package_key: bytes, header: bytes) -> Iterator[bytes]:
    with handle:
        try:
            yield from read_sealed(handle, package_key, header)
        except SealedFileError as exc:
            raise PackageUnreadable(str(exc)) from None


def _plain_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            yield chunk


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
        """Write a sealed package to KITH_HOME/exports (mode 0600) and record it. Its size
        and checksum are those of the ZIP inside, the file the person is handed."""
        export_id = new_id()
        folder = exports_folder(self.kith)
        file_name = f"kith-export-{contact_id}-{export_id.hex[:12]}{SEALED_SUFFIX}"
        path = folder / file_name
        partial = folder / f"{file_name}.partial"
        if not await ContactService(self.kith).exists(contact_id):
            raise NotFound(f"contact {contact_id} does not exist")
        key = await protector_of(self.kith).keys.for_subject(contact_id)
        package_key = random_key()
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                sealed = SealedWriter(
                    handle, package_key, _package_header(key, export_id, package_key)
                )
                counting = _Counting(sealed)
                summary = await ExportBuilder(self.kith, contact_id).write(counting)
                sealed.close()
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        digest = counting.digest
        size = sealed.tell()
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

    async def hand_out(
        self, package: ExportOut, *, actor: Actor = SYSTEM, channel: str = "cli"
    ) -> Iterator[bytes]:
        """The readable ZIP of ``package``, for a caller allowed to have it; the hand-out is
        audited (it is a read of the person's data)."""
        chunks = await open_package(self.kith, Path(package.path), package.contact_id)
        await AuditLog(self.kith).record(
            package.contact_id,
            "export_handed_out",
            actor=actor,
            channel=channel,
            request_id=package.request_id,
            details={"file": package.file_name},
        )
        return chunks

    async def request_download(
        self, request_id: uuid.UUID, *, actor: Actor = SYSTEM, channel: str = "api"
    ) -> PackageDownload:
        """The ZIP of a finished access or portability request as it is handed to the person
        (opened for this caller, the hand-out audited); NotFound when there is none."""
        found = await self.for_request(request_id)
        if found is None:
            raise NotFound(
                f"request {request_id} has no export package (it has not run, or the package "
                "was deleted after exports_kept_days)"
            )
        chunks = await self.hand_out(found, actor=actor, channel=channel)
        return PackageDownload(
            chunks=chunks, file_name=found.file_name.removesuffix(".sealed"), size=found.size
        )

    async def save(
        self, package: ExportOut, target: Path, *, actor: Actor = SYSTEM, channel: str = "cli"
    ) -> None:
        """Write the readable ZIP of ``package`` to ``target`` (mode 0600), for the person."""
        chunks = await self.hand_out(package, actor=actor, channel=channel)
        partial = target.with_name(f"{target.name}.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        target.chmod(0o600)

    async def prune(self, now: dt.datetime | None = None) -> int:
        """Delete packages older than ``exports_kept_days``; returns how many."""
        days = rights_settings(self.kith.settings).exports_kept_days
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
        return [
            PlannedAction(
                source=section.source,
                location=f"{document_name(section.source)}#{table}",
                method="exported",
                count=section.rows(table),
            )
            for section in await ExportBuilder(self.kith, contact_id).sections()
            for table in section.tables
        ]


# -- this plugin's part of the package ----------------------------------------------------------


async def rights_section(kith: Kith, contact_id: uuid.UUID) -> ExportSection:
    """``kith_subject_export``: consent, the audit log of the person's data, restrictions,
    notices to recipients and records kept under a legal hold."""
    consent = ConsentService(kith)
    try:
        events = await consent.export_subject(contact_id)
        standing = [msgspec.to_builtins(s) for s in await consent.current(contact_id)]
    except NotFound:
        # The contact is gone (erased): its ledger events are linked to nobody any more.
        events, standing = [], []
    restrictions = await RestrictionService(kith).history(contact_id)
    holds = await LegalHold.select().where(LegalHold.contact_id == contact_id).run()
    return ExportSection(
        source=SOURCE_PRIVACY,
        description="Consent you gave or withdrew, the log of who accessed your data, "
        "restrictions, notices to recipients and records kept because a law requires it",
        tables={
            "consent_events": events,
            "consent_status": standing,
            "audit_log": await _audit_pages(kith, contact_id),
            "restrictions": [
                {
                    "ground": r.ground_text,
                    "started_at": r.started_at,
                    "lifted_at": r.lifted_at,
                    "lift_notice": r.lift_notice,
                }
                for r in restrictions
            ],
            "recipient_notices": [
                {
                    "recipient": row["recipient"],
                    "action": row["action"],
                    "outcome": row["outcome"],
                    "detail": row["detail"],
                    "at": row["at"],
                }
                for row in await recipient_notices.history(kith, contact_id)
            ],
            "legal_holds": [
                {
                    "ground": row["ground"],
                    "records": row["held_count"],
                    "held_until": row["held_until"],
                    "released_at": row["released_at"],
                }
                for row in holds
            ],
        },
        descriptions=dict(RIGHTS_DESCRIPTIONS),
    )


async def _audit_pages(kith: Kith, contact_id: uuid.UUID) -> RowPages:
    log = AuditLog(kith)

    async def pages() -> AsyncIterator[list[Row]]:
        before: uuid.UUID | None = None
        while True:
            entries = await log.entries(contact_id, limit=PAGE, before=before)
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

    return RowPages(count=await log.count(contact_id), pages=pages)
