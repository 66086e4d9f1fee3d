"""CSV imports of contacts and interactions, run as resumable jobs.

An import is a row of ``kith_import_job``: its file (fingerprinted), how the file is read and
mapped, and how far it got. Records are handled in batches; each batch commits together with
the job's checkpoint (records done, counts, the error file's length), so an import killed at
any point and run again starts at the first record it had not committed, creating nothing
twice and losing nothing. Whoever runs a job holds its lease (renewed by each batch), so two
processes never run one job at once; a lease whose process died is taken over.

Records that are not imported go to the job's error file, a CSV with the line, the reason and
the record's own columns (in UTF-8 with a byte-order mark and the file's delimiter, so a
spreadsheet opens it and, corrected, it imports again).
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
from kith.actor import SYSTEM, Actor, Role
from kith.csv_reading import CsvError, CsvFormat, FileFacts, fingerprint, inspect, records
from kith.errors import Conflict, InvalidInput, NotFound
from kith.events import utcnow
from kith.ids import new_id
from kith.import_digests import digest_keys
from kith.import_errors import ErrorFile
from kith.import_mapping import MappingFile, resolve
from kith.import_parsing import POOL_MIN_RECORDS, BatchParser
from kith.import_rows import RowSpec
from kith.logs import get_logger
from kith.runtime import Kith
from kith.services.contacts import ContactService
from kith.services.fields import FieldService
from kith.services.import_batches import (
    OUTCOMES,
    ContactBatches,
    ContactChecks,
    InteractionBatches,
    Result,
)
from kith.services.interactions import InteractionService
from kith.tables import ImportJob, User

ImportKind = Literal["contacts", "interactions"]
KINDS: tuple[ImportKind, ...] = ("contacts", "interactions")
BATCH_SIZE = 500
# A batch renews the lease; one that has not been renewed for this long belongs to a process
# that stopped.
LEASE = dt.timedelta(seconds=120)
UNFINISHED = ("pending", "running", "failed")
NAME_TARGETS = frozenset({"name", "given_name", "family_name", "middle_name", "organization"})
CONTACT_REFERENCES = frozenset({"contact_id", "contact_key", "email", "phone"})

log = get_logger("kith.imports")

Progress = Callable[["ImportJobOut"], None]


class ImportOptions(msgspec.Struct, kw_only=True, frozen=True):
    """How a job's file is read and mapped, fixed when the job is created."""

    encoding: str
    delimiter: str
    header: list[str]
    # (column index, target) of every mapped column.
    columns: list[tuple[int, str]]
    tags: list[str] = []
    source: str | None = None
    match_field: str | None = None
    batch_size: int = BATCH_SIZE


class ImportJobOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: ImportKind
    state: Literal["pending", "running", "done", "failed"]
    file_name: str
    # Data records in the file, and those handled so far.
    total: int
    processed: int
    imported: int
    invalid: int
    duplicate: int
    suppressed: int
    # processed / total (1.0 for an empty file).
    progress: float
    last_line: int
    encoding: str
    delimiter: str
    # Header → what it maps to; columns not listed were ignored.
    columns: dict[str, str]
    ignored_columns: list[str]
    # Records not imported, listed in the error file.
    rejected: int
    message: str | None
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None


class DryRunReport(msgspec.Struct, kw_only=True):
    """What an import of the file would do; nothing was written."""

    kind: ImportKind
    file_name: str
    total: int
    valid: int
    invalid: int
    duplicate: int
    suppressed: int
    encoding: str
    delimiter: str
    columns: dict[str, str]
    ignored_columns: list[str]


class LeaseLost(Conflict):
    """Another process took the job over (this one was thought dead)."""


def imports_folder(kith: Kith) -> Path:
    """Where uploaded files and error files are kept: readable by Kith's account only."""
    folder = kith.settings.home / "imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(owner: str) -> bool:
    """Whether a lease owner is a process of this machine that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _column_names(options: ImportOptions) -> tuple[dict[str, str], list[str]]:
    mapped = dict(options.columns)
    columns = {options.header[i]: target for i, target in options.columns}
    ignored = [name for i, name in enumerate(options.header) if i not in mapped and name]
    return columns, ignored


def _out(row: dict[str, Any]) -> ImportJobOut:
    options = msgspec.json.decode(row["options"], type=ImportOptions)
    counts = {name: int(row[name]) for name in OUTCOMES}
    processed = sum(counts.values())
    total = int(row["total"])
    columns, ignored = _column_names(options)
    return ImportJobOut(
        id=row["id"],
        kind=row["kind"],
        state=row["state"],
        file_name=row["file_name"],
        total=total,
        processed=processed,
        **counts,
        progress=round(processed / total, 4) if total else 1.0,
        last_line=int(row["last_line"]),
        encoding=options.encoding,
        delimiter=options.delimiter,
        columns=columns,
        ignored_columns=ignored,
        rejected=processed - counts["imported"],
        message=row["message"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


class ImportService:
    """Creating, running, resuming and reading imports; the CLI and the API call it."""

    def __init__(
        self,
        kith: Kith,
        channel: str | None = None,
        context: dict[str, Any] | None = None,
        *,
        parallel: bool = False,
    ) -> None:
        """``parallel``: parse large files in a worker process (a second core). It starts
        the worker by re-running the main module, so only a program whose main module is
        guarded (``if __name__ == "__main__"``, as the ``kith`` command and servers are)
        may ask for it."""
        self.kith = kith
        self.channel = channel
        self.context = dict(context or {})
        self.parallel = parallel
        self.owner = _owner()

    # -- creating ------------------------------------------------------------------------------

    async def prepare(
        self,
        kind: str,
        path: Path,
        mapping: MappingFile | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> tuple[FileFacts, ImportOptions]:
        """Read the file once (fingerprint, format, records) and map its columns; an
        :class:`InvalidInput` says what cannot be imported."""
        if kind not in KINDS:
            raise InvalidInput(f"an import is of {' or '.join(KINDS)}, not {kind!r}", field="kind")
        mapping = mapping or MappingFile()
        try:
            facts = await asyncio.to_thread(inspect, path, mapping.encoding, mapping.delimiter)
        except CsvError as exc:
            raise InvalidInput(str(exc), field="file") from None
        except OSError as exc:
            raise InvalidInput(f"cannot read the file: {exc.strerror}", field="file") from None
        declared = [
            (d.name, d.label) for d in await FieldService(self.kith).declared() if not d.archived
        ]
        columns = resolve(facts.header, kind, declared, mapping.columns)
        targets = set(columns.values())
        if kind == "contacts" and not targets & NAME_TARGETS:
            raise InvalidInput(
                "no column of the file holds a name (columns: "
                f"{', '.join(facts.header)}); name them in a mapping file",
                field="mapping",
            )
        if kind == "interactions" and not targets & CONTACT_REFERENCES:
            raise InvalidInput(
                "no column of the file names the contact (a contact id, email, phone or "
                "contact key); name it in a mapping file",
                field="mapping",
            )
        if mapping.match_field is not None and mapping.match_field not in {n for n, _ in declared}:
            raise InvalidInput(
                f"match_field {mapping.match_field!r} is not a custom field", field="mapping"
            )
        options = ImportOptions(
            encoding=facts.format.encoding,
            delimiter=facts.format.delimiter,
            header=facts.header,
            columns=sorted(columns.items()),
            tags=mapping.tags,
            source=mapping.source,
            match_field=mapping.match_field,
            batch_size=batch_size,
        )
        return facts, options

    async def create(
        self,
        kind: str,
        path: Path,
        *,
        file_name: str | None = None,
        mapping: MappingFile | None = None,
        error_path: Path | None = None,
        actor: Actor = SYSTEM,
        batch_size: int = BATCH_SIZE,
    ) -> ImportJobOut:
        """A new job for the file at ``path`` (kept where it is until the job is done);
        ``batch_size`` records commit at a time."""
        facts, options = await self.prepare(kind, path, mapping, batch_size)
        job_id = new_id()
        now = utcnow()
        errors = error_path or imports_folder(self.kith) / f"{job_id}-errors.csv"
        await ImportJob.insert(
            ImportJob(
                id=job_id,
                kind=kind,
                state="pending",
                file_path=str(path.resolve()),
                file_name=(file_name or path.name)[:300],
                fingerprint=facts.fingerprint,
                file_size=facts.size,
                options=msgspec.json.encode(options).decode(),
                total=facts.records,
                error_path=str(errors.resolve()),
                created_by=actor.id if actor.kind == "user" else None,
                created_at=now,
                updated_at=now,
            )
        ).run()
        log.info("import.created", import_id=str(job_id), kind=kind, records=facts.records)
        return await self.get(job_id)

    async def unfinished(self, kind: str, path: Path) -> ImportJobOut | None:
        """The latest job of this kind for a file with the same content that has not
        finished (to resume it rather than start again)."""
        digest = await asyncio.to_thread(fingerprint, path)
        row = (
            await ImportJob.select()
            .where(
                (ImportJob.kind == kind)
                & (ImportJob.fingerprint == digest)
                & ImportJob.state.is_in(list(UNFINISHED))
            )
            .order_by(ImportJob.created_at, ascending=False)
            .first()
        )
        return _out(row) if row is not None else None

    # -- reading -------------------------------------------------------------------------------

    async def _row(self, job_id: uuid.UUID) -> dict[str, Any]:
        row = await ImportJob.select().where(ImportJob.id == job_id).first()
        if row is None:
            raise NotFound(f"import {job_id} does not exist")
        return dict(row)

    async def get(self, job_id: uuid.UUID) -> ImportJobOut:
        return _out(await self._row(job_id))

    async def list(self, limit: int = 20) -> list[ImportJobOut]:
        rows = await ImportJob.select().order_by(ImportJob.created_at, ascending=False).limit(limit)
        return [_out(row) for row in rows]

    async def error_file(self, job_id: uuid.UUID) -> Path:
        """The job's error file, as far as its committed batches wrote it."""
        row = await self._row(job_id)
        path = Path(row["error_path"]) if row["error_path"] else None
        if path is None or not path.exists():
            raise NotFound(f"import {job_id} has no error file (yet)")
        return path

    # -- running -------------------------------------------------------------------------------

    async def _take(self, job_id: uuid.UUID) -> dict[str, Any]:
        row = await self._row(job_id)
        if row["state"] == "done":
            raise Conflict(f"import {job_id} has finished already", import_id=str(job_id))
        now = utcnow()
        held = row["lease_owner"]
        if (
            held is not None
            and held != self.owner
            and row["lease_until"] is not None
            and row["lease_until"] > now
            and not _dead_here(held)
        ):
            raise Conflict(
                f"import {job_id} is running in another process; it resumes on its own if "
                "that process stops",
                import_id=str(job_id),
            )
        same_holder = (
            ImportJob.lease_owner.is_null() if held is None else ImportJob.lease_owner == held
        )
        taken = (
            await ImportJob.update(
                {
                    ImportJob.state: "running",
                    ImportJob.lease_owner: self.owner,
                    ImportJob.lease_until: now + LEASE,
                    ImportJob.message: None,
                    ImportJob.updated_at: now,
                }
            )
            .where((ImportJob.id == job_id) & same_holder)
            .returning(ImportJob.id)
        )
        if not taken:
            raise Conflict(f"import {job_id} was taken by another process", import_id=str(job_id))
        return row

    async def _actor(self, row: dict[str, Any], actor: Actor | None) -> Actor:
        if actor is not None:
            return actor
        if row["created_by"] is None:
            return SYSTEM
        user = (
            await User.select(User.id, User.email, User.role)
            .where(User.id == row["created_by"])
            .first()
        )
        if user is None:
            return SYSTEM
        return Actor(kind="user", id=user["id"], role=Role(user["role"]), name=user["email"])

    async def run(
        self,
        job_id: uuid.UUID,
        actor: Actor | None = None,
        progress: Progress | None = None,
    ) -> ImportJobOut:
        """Run (or resume) a job to its end; ``progress`` is called after each batch. The job
        runs as ``actor``, by default the user who created it."""
        row = await self._take(job_id)
        try:
            await self._run(row, await self._actor(row, actor), progress)
        except LeaseLost:
            raise
        except BaseException as exc:
            await self._stopped(job_id, exc)
            raise
        return await self.get(job_id)

    async def _stopped(self, job_id: uuid.UUID, exc: BaseException) -> None:
        """Leave a job that stopped on an error resumable: failed, its lease given up."""
        if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            # A shutdown: the lease runs out and the job resumes later.
            return
        message = (
            exc.detail
            if isinstance(exc, InvalidInput | NotFound | Conflict)
            else f"stopped by an unexpected error ({type(exc).__name__}); run it again to resume"
        )
        log.error("import.failed", import_id=str(job_id), error=type(exc).__name__)
        await (
            ImportJob.update(
                {
                    ImportJob.state: "failed",
                    ImportJob.message: message,
                    ImportJob.lease_owner: None,
                    ImportJob.lease_until: None,
                    ImportJob.updated_at: utcnow(),
                }
            )
            .where((ImportJob.id == job_id) & (ImportJob.lease_owner == self.owner))
            .run()
        )

    def _spec(self, row: dict[str, Any], options: ImportOptions) -> RowSpec:
        source = f"import:{row['id']}" if row["kind"] == "contacts" else options.source or "import"
        return RowSpec(
            columns=dict(options.columns),
            region=self.kith.settings.default_region,
            source=source[:100],
            tags=tuple(options.tags),
            match_field=options.match_field,
            file_key=str(row.get("fingerprint", ""))[:16],
        )

    def _handler(
        self, row: dict[str, Any], spec: RowSpec, actor: Actor, *, dry_run: bool = False
    ) -> ContactBatches | ContactChecks | InteractionBatches:
        context = {**self.context, "import_id": str(row["id"])} if row.get("id") else self.context
        contacts = ContactService(self.kith, self.channel, context)
        if row["kind"] == "contacts":
            if dry_run:
                return ContactChecks(self.kith, contacts)
            return ContactBatches(self.kith, contacts, spec.source, actor)
        interactions = InteractionService(self.kith, self.channel, context)
        return InteractionBatches(
            self.kith, interactions, contacts, actor, spec.match_field, dry_run=dry_run
        )

    async def _run(self, row: dict[str, Any], actor: Actor, progress: Progress | None) -> None:
        job_id = row["id"]
        options = msgspec.json.decode(row["options"], type=ImportOptions)
        path = Path(row["file_path"])
        if not path.exists():
            raise NotFound(f"the file of import {job_id} is gone ({row['file_name']})")
        if await asyncio.to_thread(fingerprint, path) != row["fingerprint"]:
            raise Conflict(
                f"the file of import {job_id} changed since the import started; import the "
                "new file as a new import"
            )
        spec = self._spec(row, options)
        handler = self._handler(row, spec, actor)
        fmt = CsvFormat(options.encoding, options.delimiter)
        counts = {name: int(row[name]) for name in OUTCOMES}
        done, last_line = int(row["rows_done"]), int(row["last_line"])
        errors = ErrorFile(
            Path(row["error_path"]), options.header, options.delimiter, int(row["error_bytes"])
        )
        parser = BatchParser(
            row["kind"],
            spec,
            pooled=self.parallel and int(row["total"]) - done >= POOL_MIN_RECORDS,
            keys=await digest_keys(self.kith) if row["kind"] == "contacts" else None,
        )
        try:
            async for batch, rows in parser.parsed(
                records(path, fmt, skip=done), options.batch_size
            ):
                parsed = _results(rows)
                size = errors.size
                try:
                    async with self.kith.unit_of_work(actor):
                        results = await handler.write(parsed)
                        errors.add(_rejected(batch, results))
                        for result in results:
                            counts[result.outcome] += 1
                        done += len(batch)
                        last_line = batch[-1][0]
                        await self._checkpoint(job_id, counts, done, last_line, errors.size)
                except BaseException:
                    handler.rolled_back()
                    errors.cut(size)
                    raise
                handler.committed()
                if progress is not None:
                    progress(await self.get(job_id))
        finally:
            parser.close()
            errors.close()
        now = utcnow()
        await (
            ImportJob.update(
                {
                    ImportJob.state: "done",
                    ImportJob.lease_owner: None,
                    ImportJob.lease_until: None,
                    ImportJob.updated_at: now,
                    ImportJob.finished_at: now,
                }
            )
            .where((ImportJob.id == job_id) & (ImportJob.lease_owner == self.owner))
            .run()
        )
        if path.parent == imports_folder(self.kith):
            # An uploaded file: its rows are in the database now.
            path.unlink(missing_ok=True)
        log.info("import.done", import_id=str(job_id), **counts)

    async def _checkpoint(
        self, job_id: uuid.UUID, counts: dict[str, int], done: int, last_line: int, size: int
    ) -> None:
        now = utcnow()
        values: dict[Any, Any] = {getattr(ImportJob, name): counts[name] for name in OUTCOMES}
        values.update(
            {
                ImportJob.rows_done: done,
                ImportJob.last_line: last_line,
                ImportJob.error_bytes: size,
                ImportJob.lease_until: now + LEASE,
                ImportJob.updated_at: now,
            }
        )
        kept = (
            await ImportJob.update(values)
            .where((ImportJob.id == job_id) & (ImportJob.lease_owner == self.owner))
            .returning(ImportJob.id)
        )
        if not kept:
            raise LeaseLost(f"import {job_id} was taken over by another process")

    async def resume_stopped(self) -> builtins.list[uuid.UUID]:
        """Resume every running job whose lease ran out (its process stopped), and start every
        job still pending a lease after it was created (its process stopped before it
        started); the worker's and the server's periodic job. A failed job waits for a person
        to run it again."""
        now = utcnow()
        rows = await ImportJob.select(ImportJob.id).where(
            (
                (ImportJob.state == "running")
                & (ImportJob.lease_until.is_null() | (ImportJob.lease_until < now))
            )
            | ((ImportJob.state == "pending") & (ImportJob.created_at < now - LEASE))
        )
        resumed: builtins.list[uuid.UUID] = []
        for row in rows:
            try:
                await self.run(row["id"])
            except Conflict:
                continue
            except Exception as exc:
                log.warning(
                    "import.resume_failed", import_id=str(row["id"]), error=type(exc).__name__
                )
            resumed.append(row["id"])
        return resumed

    # -- dry run ------------------------------------------------------------------------------

    async def dry_run(
        self,
        kind: str,
        path: Path,
        mapping: MappingFile | None = None,
        error_path: Path | None = None,
        actor: Actor = SYSTEM,
    ) -> DryRunReport:
        """What importing the file would do, counted; nothing is stored (the rejected records
        go to ``error_path`` when one is given)."""
        facts, options = await self.prepare(kind, path, mapping)
        row = {"id": None, "kind": kind}
        spec = self._spec(
            {"id": "dry-run", "kind": kind, "fingerprint": facts.fingerprint}, options
        )
        handler = self._handler(row, spec, actor, dry_run=True)
        counts = dict.fromkeys(OUTCOMES, 0)
        errors = ErrorFile(error_path, options.header, options.delimiter, 0) if error_path else None
        parser = BatchParser(kind, spec, pooled=self.parallel and facts.records >= POOL_MIN_RECORDS)
        try:
            async for batch, rows in parser.parsed(records(path, facts.format), options.batch_size):
                results = await handler.write(_results(rows))
                for result in results:
                    counts[result.outcome] += 1
                if errors is not None:
                    errors.add(_rejected(batch, results))
        finally:
            parser.close()
            if isinstance(handler, ContactChecks):
                handler.close()
            if errors is not None:
                errors.close()
        columns, ignored = _column_names(options)
        return DryRunReport(
            kind=kind,  # type: ignore[arg-type]
            file_name=path.name,
            total=facts.records,
            valid=counts["imported"],
            invalid=counts["invalid"],
            duplicate=counts["duplicate"],
            suppressed=counts["suppressed"],
            encoding=options.encoding,
            delimiter=options.delimiter,
            columns=columns,
            ignored_columns=ignored,
        )


def _results(rows: list[Any]) -> list[Any]:
    """Parsed rows, with the records that did not parse as invalid results."""
    return [Result(row[0], "invalid", row[1]) if isinstance(row, tuple) else row for row in rows]


def _rejected(batch: Sequence[tuple[int, list[str]]], results: Sequence[Result]) -> list[list[str]]:
    cells = dict(batch)
    return [
        [str(result.line), result.reason, *cells[result.line]]
        for result in results
        if result.outcome != "imported"
    ]


__all__ = ["DryRunReport", "ImportJobOut", "ImportService"]
