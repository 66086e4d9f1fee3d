"""``kith contacts duplicates``: the pairs of contacts that may be one person."""

from __future__ import annotations

import click
from kith.cli.contacts import collect
from kith.console import (
    AUDIT_CHANNEL,
    AUDIT_CONTEXT,
    format_time,
    get_settings,
    json_option,
    note,
    parse_id,
    print_json,
    print_table,
    run_with_kith,
)
from kith.runtime import Kith
from kith.schemas import DuplicateContact, DuplicatePairOut, DuplicateScanOut
from kith.services.duplicates import DuplicateService

_HINT = "`kith contacts duplicates` lists the pairs"


def _side(contact: DuplicateContact) -> str:
    return f"{contact.name} ({contact.id})"


def _print_scan(result: DuplicateScanOut) -> None:
    which = (
        "every contact" if result.mode == "full" else "contacts new or changed since the last scan"
    )
    note(
        f"Scanned {result.contacts} contacts ({which}): {result.compared} pairs compared, "
        f"{result.found} proposed, {result.new} of them new."
    )
    if result.skipped_keys:
        note(
            f"{result.skipped_keys} keys (name word pairs, emails, phones) were shared by too "
            "many contacts to compare through; see [duplicates] max_block."
        )
    if not result.name_index:
        note(
            "Names were not compared: the name search index is off or incomplete "
            "(name_search_index = true, then `kith migrate` builds it)."
        )


@click.group(invoke_without_command=True)
@click.option("--scan", is_flag=True, help="Scan for new duplicates first.")
@click.option(
    "--full",
    is_flag=True,
    help="With --scan: check every contact, not only those new or changed since the last scan.",
)
@click.option("--contact", metavar="ID", help="Only the pairs of this contact.")
@click.option("--dismissed", is_flag=True, help="The pairs marked not a duplicate instead.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Show at most this many.",
)
@json_option
@click.pass_context
def duplicates(
    ctx: click.Context,
    scan: bool,
    full: bool,
    contact: str | None,
    dismissed: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List pairs of contacts that may be one person, best score first, with the reasons."""
    if ctx.invoked_subcommand is not None:
        return
    if full and not scan:
        raise click.UsageError("--full goes with --scan")
    contact_id = (
        parse_id(contact, "contact", "`kith contacts list` shows them") if contact else None
    )

    async def work(kith: Kith) -> tuple[DuplicateScanOut | None, list[DuplicatePairOut], bool]:
        service = DuplicateService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT)
        result = await service.scan(full=full) if scan else None
        found, more = await collect(
            lambda cursor, n: service.list(
                contact_id=contact_id,
                status="dismissed" if dismissed else "pending",
                cursor=cursor,
                limit=n,
            ),
            limit,
        )
        return result, found, more

    result, found, more = run_with_kith(work)
    if result is not None:
        _print_scan(result)
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    headers = ["pair", "score", "reasons", "contact", "same as"]
    rows: list[list[object]] = [
        [p.id, p.score, ", ".join(p.reasons), _side(p.contact_a), _side(p.contact_b)] for p in found
    ]
    if dismissed:
        headers.append("dismissed")
        for row, pair in zip(rows, found, strict=True):
            row.append(f"{format_time(pair.decided_at, settings)} {pair.decided_by or ''}".strip())
    empty = "No pairs marked not a duplicate." if dismissed else "No duplicates found."
    if not scan and not dismissed and not found:
        empty += " `kith contacts duplicates --scan` looks for them."
    print_table(headers, rows, empty=empty)
    if more:
        note(f"Showing the first {len(found)}; use --limit to see more.")


@duplicates.command("dismiss")
@click.argument("pair_id", metavar="ID")
@json_option
def dismiss(pair_id: str, as_json: bool) -> None:
    """Mark a pair as not a duplicate: no scan proposes it again."""
    key = parse_id(pair_id, "duplicate pair", _HINT)

    async def work(kith: Kith) -> DuplicatePairOut:
        return await DuplicateService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).dismiss(key)

    pair = run_with_kith(work)
    if as_json:
        print_json(pair)
        return
    click.echo(
        f"Dismissed: {_side(pair.contact_a)} and {_side(pair.contact_b)} are not a duplicate."
    )
