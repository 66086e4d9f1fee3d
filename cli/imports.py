"""``kith import``: contacts and interactions from CSV files, with a progress bar; running the
same command on the same file again resumes an import that was interrupted."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from kith.console import (
    AUDIT_CHANNEL,
    AUDIT_CONTEXT,
    json_option,
    note,
    parse_id,
    print_json,
    print_table,
    run_with_kith,
)
from kith.errors import KithError
from kith.import_mapping import MappingFile, load_mapping
from kith.runtime import Kith
from kith.services.imports import DryRunReport, ImportJobOut, ImportService
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

_file = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
)
_mapping = click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A TOML or JSON file naming what each column holds (see the import guide).",
)
_dry_run = click.option(
    "--dry-run", is_flag=True, help="Count valid, invalid, duplicate and suppressed rows only."
)
_errors = click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the rows not imported here (line, reason, the row's columns).",
)


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "- rows/s", style="progress.data.speed")


@contextmanager
def _progress_bar(job: ImportJobOut) -> Iterator[Callable[[ImportJobOut], None]]:
    """A rich progress bar on stderr, advanced after each batch; when stderr is not a
    terminal (a log), a line at every tenth of the file instead."""
    if not sys.stderr.isatty():
        reported = [job.processed * 10 // max(job.total, 1)]

        def log_line(current: ImportJobOut) -> None:
            tenth = current.processed * 10 // max(current.total, 1)
            if tenth > reported[0]:
                reported[0] = tenth
                note(f"import {current.id}: {current.processed} of {current.total} rows")

        yield log_line
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RowsPerSecond(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    with progress:
        task = progress.add_task(f"import {job.kind}", total=job.total, completed=job.processed)

        def advance(current: ImportJobOut) -> None:
            progress.update(task, completed=current.processed)

        yield advance


def _summary(job: ImportJobOut, errors: Path | None) -> None:
    click.echo(
        f"Import {job.id} {job.state}: {job.imported} imported, {job.invalid} invalid, "
        f"{job.duplicate} duplicates, {job.suppressed} suppressed, of {job.total} rows."
    )
    if job.rejected and errors is not None:
        note(f"Rows not imported, with the reason: {errors}")


def _load(mapping: Path | None) -> MappingFile | None:
    return load_mapping(mapping) if mapping is not None else None


def _service(kith: Kith) -> ImportService:
    return ImportService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT, parallel=True)


def _import(
    kind: str, file: Path, mapping: Path | None, dry_run: bool, errors_path: Path | None
) -> None:
    loaded = _load(mapping)

    async def dry(kith: Kith) -> DryRunReport:
        return await _service(kith).dry_run(kind, file, loaded, errors_path)

    if dry_run:
        report = run_with_kith(dry)
        _print_columns(report.columns, report.ignored_columns)
        click.echo(
            f"Dry run of {report.total} rows ({report.encoding}, "
            f"{_delimiter_name(report.delimiter)}): {report.valid} valid, {report.invalid} "
            f"invalid, {report.duplicate} duplicates, {report.suppressed} suppressed. "
            "Nothing was stored."
        )
        if errors_path is not None and report.valid != report.total:
            note(f"Rows that would not be imported, with the reason: {errors_path}")
        return

    async def work(kith: Kith) -> tuple[ImportJobOut, Path | None]:
        service = _service(kith)
        job = await service.unfinished(kind, file)
        if job is None:
            job = await service.create(kind, file, mapping=loaded, error_path=errors_path)
            _print_columns(job.columns, job.ignored_columns)
        else:
            note(
                f"Resuming import {job.id}: {job.processed} of {job.total} rows were done "
                f"(up to line {job.last_line})."
            )
        with _progress_bar(job) as advance:
            job = await service.run(job.id, progress=advance)
        try:
            errors = await service.error_file(job.id)
        except KithError:
            errors = None
        return job, errors

    job, errors = run_with_kith(work)
    _summary(job, errors)


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab"}.get(delimiter, repr(delimiter))


def _print_columns(columns: dict[str, str], ignored: list[str]) -> None:
    note("Columns: " + ", ".join(f"{name} → {target}" for name, target in columns.items()))
    if ignored:
        note("Ignored columns (map them in a mapping file): " + ", ".join(ignored))


@click.group("import")
def import_() -> None:
    """Import contacts and interactions from CSV files (resumable)."""


@import_.command("contacts")
@_file
@_mapping
@_dry_run
@_errors
def import_contacts(
    file: Path, mapping: Path | None, dry_run: bool, errors_path: Path | None
) -> None:
    """Import contacts from a CSV FILE (UTF-8 or windows-1251; comma, semicolon or tab).

    Columns are recognised by their English or Russian names and by custom field names;
    emails and phones are normalised, duplicates (of stored contacts and within the file) and
    suppressed people are skipped, and the other rows are imported even when some are invalid.
    Run the same command again to resume an import that was interrupted."""
    _import("contacts", file, mapping, dry_run, errors_path)


@import_.command("interactions")
@_file
@_mapping
@_dry_run
@_errors
def import_interactions(
    file: Path, mapping: Path | None, dry_run: bool, errors_path: Path | None
) -> None:
    """Import interaction history from a CSV FILE, each row matched to its contact by contact
    id, email, phone or a custom field (match_field in the mapping). A row with a source and
    external id imported before is not imported twice."""
    _import("interactions", file, mapping, dry_run, errors_path)


@import_.command("resume")
@click.argument("job")
def resume(job: str) -> None:
    """Resume import JOB (one that was interrupted or failed)."""
    job_id = parse_id(job, "import")

    async def work(kith: Kith) -> tuple[ImportJobOut, Path | None]:
        service = _service(kith)
        current = await service.get(job_id)
        with _progress_bar(current) as advance:
            done = await service.run(job_id, progress=advance)
        try:
            return done, await service.error_file(job_id)
        except KithError:
            return done, None

    done, errors = run_with_kith(work)
    _summary(done, errors)


@import_.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200))
@json_option
def list_imports(limit: int, as_json: bool) -> None:
    """The latest imports, newest first."""
    jobs = run_with_kith(lambda kith: _service(kith).list(limit))
    if as_json:
        print_json(jobs)
        return
    print_table(
        ["id", "kind", "state", "file", "rows", "imported", "invalid", "duplicate", "suppressed"],
        [
            [
                j.id,
                j.kind,
                j.state,
                j.file_name,
                f"{j.processed}/{j.total}",
                j.imported,
                j.invalid,
                j.duplicate,
                j.suppressed,
            ]
            for j in jobs
        ],
        empty="No imports yet.",
    )


@import_.command("show")
@click.argument("job")
@json_option
def show(job: str, as_json: bool) -> None:
    """One import's state, progress and counts."""
    job_id = parse_id(job, "import")
    found = run_with_kith(lambda kith: _service(kith).get(job_id))
    if as_json:
        print_json(found)
        return
    click.echo(
        f"Import {found.id} ({found.kind}, {found.file_name}): {found.state}, "
        f"{found.processed} of {found.total} rows; {found.imported} imported, "
        f"{found.invalid} invalid, {found.duplicate} duplicates, {found.suppressed} suppressed."
    )
    if found.message:
        click.echo(found.message)
