"""``kith export contacts``: contacts as CSV, with the filters of ``kith contacts list``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import click
from kith.cli.contacts import contact_filter, filter_options
from kith.console import AUDIT_CHANNEL, AUDIT_CONTEXT, CliError, note, run_with_kith
from kith.runtime import Kith
from kith.services.exports import ExportService


@click.group()
def export() -> None:
    """Export data as CSV."""


@export.command("contacts")
@filter_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file (readable by its owner only) instead of standard output.",
)
@click.option(
    "--excel",
    is_flag=True,
    help="For spreadsheets: UTF-8 with a byte order mark, `;` between values, and texts "
    "that start like a formula kept as text.",
)
def export_contacts(
    q: str | None,
    include_archived: bool,
    organization: str | None,
    field_filters: tuple[str, ...],
    output: Path | None,
    excel: bool,
) -> None:
    """Export contacts as CSV: one row per contact, one column per custom field. Each contact
    exported is recorded in the audit log."""
    filters = contact_filter(q, include_archived, organization, field_filters)

    async def work(kith: Kith) -> tuple[int, int]:
        service = ExportService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT)
        # Checks the filters before a file is made.
        contacts = await service.contacts(filters, excel=excel)
        with _destination(output) as out:
            async for chunk in contacts.chunks():
                out.write(chunk)
        return contacts.count, contacts.skipped

    count, skipped = run_with_kith(work)
    if output is not None:
        note(f"Exported {count} contact{'s' if count != 1 else ''} to {output}")
    if skipped:
        note(
            f"Left out {skipped} contact{'s' if skipped != 1 else ''} whose data may only be "
            "stored (restricted, or erased with records under a legal hold)"
        )


@contextlib.contextmanager
def _destination(output: Path | None) -> Iterator[BinaryIO]:
    """Standard output, or a file that appears whole or not at all (written beside it under
    another name first, then renamed), readable by its owner only."""
    if output is None:
        stream = sys.stdout.buffer
        yield stream
        stream.flush()
        return
    partial = output.with_name(output.name + ".partial")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
