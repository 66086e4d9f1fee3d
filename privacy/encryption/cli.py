"""``kith privacy ...``: the registry, shredding, keys, re-index and plaintext encryption.

A thin layer: every command opens Kith and calls one function of the privacy module.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import click
from kith.console import CliError, note, print_json, print_table, run_with_kith
from kith.privacy.encryption import (
    plaintext_migration,
    plaintext_scan,
    reindex,
    rotation,
    shredding,
)
from kith.privacy.encryption.lifecycle import key_file_warning
from kith.privacy.encryption.protector import protector_of
from kith.runtime import Kith


@click.group("privacy")
def privacy() -> None:
    """Privacy: personal fields, keys and shredding; consent, data subject requests,
    certificates, records of processing."""


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on a terminal, a line per 10 % otherwise (both on stderr)."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    if not console.is_terminal:
        shown = {"tenth": -1}

        def line(done: int, total: int) -> None:
            tenth = done * 10 // max(total, 1)
            if tenth != shown["tenth"]:
                shown["tenth"] = tenth
                note(f"{label}: {done}/{total}")

        yield line
        return
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, done))

        yield update


# -- registry ---------------------------------------------------------------------------------


@click.command("fields")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def fields(as_json: bool) -> None:
    """Print the registry of personal fields (core's, custom and every plugin's)."""

    async def work(kith: Kith) -> list[dict[str, object]]:
        registry = protector_of(kith).context["registry"]
        return [
            {
                "field": f.key,
                "category": f.category,
                "purposes": list(f.purposes),
                "searchable": f.searchable,
                "retention": f.retention,
                "declared_by": f.owner,
                "description": f.description,
            }
            for f in registry.fields
        ]

    rows = run_with_kith(work)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["FIELD", "CATEGORY", "PURPOSES", "SEARCHABLE", "RETENTION", "DECLARED BY", "DESCRIPTION"],
        [
            [
                r["field"],
                r["category"],
                ", ".join(r["purposes"]),  # type: ignore[arg-type]
                "yes" if r["searchable"] else "no",
                r["retention"],
                r["declared_by"],
                r["description"],
            ]
            for r in rows
        ],
        empty="No personal fields are declared.",
    )


# -- shredding --------------------------------------------------------------------------------


@click.command("shred")
@click.argument("contact_id", type=click.UUID)
@click.option("--reason", default="", help="Why (recorded in the tombstone; no personal data).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def shred(contact_id: uuid.UUID, reason: str, yes: bool) -> None:
    """Destroy a contact's data key: their personal data becomes unreadable everywhere,
    backups included. This cannot be undone."""
    if not yes:
        click.confirm(
            f"Destroy the data key of contact {contact_id}? Their personal data becomes "
            "unreadable for good, in backups too",
            abort=True,
            err=True,
        )

    async def work(kith: Kith) -> shredding.ShredResult:
        return await shredding.shred(kith, contact_id, reason=reason)

    result = run_with_kith(work)
    if result.already:
        click.echo(
            f"Contact {contact_id} was already shredded on {result.shredded_at:%Y-%m-%d %H:%M} UTC."
        )
        return
    click.echo(
        f"Shredded contact {contact_id}: data key destroyed, {result.lookups_cleared} blind "
        "index(es) cleared; their personal fields now read [erased]."
    )


# -- keys -------------------------------------------------------------------------------------


@click.group("keys")
def keys() -> None:
    """Key-encryption keys: status, rotation, pruning."""


@keys.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def keys_status(as_json: bool) -> None:
    """Which key-encryption keys exist and which are in use; progress of key jobs."""
    status = run_with_kith(rotation.status)
    if as_json:
        print_json(
            {
                "current": status.current,
                "keks": status.provider_keks,
                "in_use": status.in_use,
                "unused": status.unused,
                "data_keys": status.data_keys,
                "root_keys": status.root_keys,
                "jobs": [
                    {
                        "name": job["name"],
                        "state": job["state"],
                        "done": job["done"],
                        "total": job["total"],
                        "details": job["details"],
                    }
                    for job in status.jobs
                ],
            }
        )
        return
    rows = []
    for kek_id in status.provider_keks:
        uses = []
        if kek_id == status.current:
            uses.append("current")
        if status.data_keys.get(kek_id):
            uses.append(f"wraps {status.data_keys[kek_id]} data keys")
        if status.root_keys.get(kek_id):
            uses.append(f"wraps {status.root_keys[kek_id]} root keys")
        rows.append([kek_id, "in use" if kek_id in status.in_use else "unused", "; ".join(uses)])
    for kek_id in sorted({*status.data_keys, *status.root_keys} - set(status.provider_keks)):
        wraps = status.data_keys.get(kek_id, 0) + status.root_keys.get(kek_id, 0)
        rows.append([kek_id, "MISSING", f"wraps {wraps} keys"])
    print_table(["KEK", "STATE", "USED FOR"], rows)
    for job in status.jobs:
        click.echo(f"{job['name']}: {job['state']}, {job['done']} of {job['total']}")


@keys.command("rotate")
@click.option(
    "--batch-size", default=rotation.DEFAULT_BATCH, show_default=True, type=click.IntRange(1)
)
@click.option(
    "--pause", default=0.0, type=click.FloatRange(0), help="Seconds to wait between batches."
)
def keys_rotate(batch_size: int, pause: float) -> None:
    """Create a new key-encryption key and re-wrap every data key under it (resumes an
    interrupted rotation). Servers keep running."""

    async def work(kith: Kith) -> rotation.RotationReport:
        with _progress("re-wrapping data keys") as progress:
            return await rotation.rotate(
                kith, batch_size=batch_size, pause=pause, progress=progress
            )

    report = run_with_kith(work)
    verb = "Resumed and finished" if report.resumed else "Finished"
    click.echo(f"{verb} rotation to {report.target}: {report.rewrapped} data keys re-wrapped.")
    click.echo(
        "Old key-encryption keys stay in the key file; `kith privacy keys prune` removes those "
        "nothing uses (keep them while backups wrapped under them are kept)."
    )


@keys.command("prune")
def keys_prune() -> None:
    """Remove key-encryption keys that no data key, blind index or job uses."""
    retired = run_with_kith(rotation.prune)
    if not retired:
        click.echo("Every key-encryption key is in use; nothing removed.")
        return
    for kek_id in retired:
        click.echo(f"removed {kek_id}")


@keys.command("reindex")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1))
def keys_reindex(batch_size: int) -> None:
    """Recompute every blind index under a new random root key and delete the old one
    (resumable). Stop the servers first: lookups miss rows until it is done."""

    async def work(kith: Kith) -> reindex.ReindexReport:
        with _progress("re-indexing") as progress:
            return await reindex.reindex(kith, batch_size=batch_size, progress=progress)

    report = run_with_kith(work)
    click.echo(
        f"Re-indexed {report.rows_changed} of {report.rows_seen} rows: blind indexes moved from "
        f"root key {report.from_root} to {report.to_root}; name search index built again from "
        f"{report.names_indexed} rows."
    )


# -- plaintext --------------------------------------------------------------------------------


@click.command("encrypt")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1))
def encrypt(batch_size: int) -> None:
    """Encrypt personal data stored before encryption was on (``kith migrate`` does this too),
    then verify none is left."""

    async def work(kith: Kith) -> plaintext_migration.PlaintextReport:
        with _progress("encrypting") as progress:
            return await plaintext_migration.encrypt_existing(
                kith, batch_size=batch_size, progress=progress
            )

    report = run_with_kith(work)
    click.echo(
        f"Encrypted {report.rows_encrypted} of {report.rows_seen} rows; no plaintext personal "
        "data is left."
    )


@click.command("verify")
def verify() -> None:
    """Check that no personal data is readable in the database: every personal column holds
    encrypted values only, and no other column of any table holds a contact's name, email
    address or phone number in readable form. Reads every row; exits 1 if anything is found."""

    async def work(kith: Kith) -> tuple[dict[str, int], plaintext_scan.ScanReport, str | None]:
        protector = protector_of(kith)
        left = await plaintext_migration.leftover(protector)
        beside = key_file_warning(kith.settings, protector.context.get("provider"))
        return left, await plaintext_scan.scan(kith), beside

    left, report, beside = run_with_kith(work)
    if beside is not None:
        # A warning, not a failure: the database itself holds nothing readable.
        note(f"warning: {beside}")
    for key, count in left.items():
        click.echo(f"{key}: {count} plaintext value(s)")
    for exposure in report.exposures:
        click.echo(
            f"{exposure.column}: {exposure.rows} row(s) hold a contact's {exposure.found} readable"
        )
    checked = f"{report.tables} tables, {report.columns} text columns, {report.rows} rows checked"
    problems = []
    if left:
        problems.append("personal data is stored in plaintext; run `kith privacy encrypt`")
    if report.exposures:
        problems.append(
            "a contact's data is readable outside the encrypted fields; find what wrote it "
            "there (text from another system, a plugin's undeclared column) and remove it"
        )
    if problems:
        raise CliError(f"{'; '.join(problems)} ({checked})")
    click.echo("Every personal value is encrypted.")
    click.echo(
        f"No contact's name, email address or phone number is readable elsewhere ({checked})."
    )


for _command in (fields, shred, keys, encrypt, verify):
    privacy.add_command(_command)
