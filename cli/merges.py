"""``kith contacts merge`` and ``kith contacts unmerge``: duplicates into one, and back."""

from __future__ import annotations

import uuid

import click
from kith.console import (
    AUDIT_CHANNEL,
    AUDIT_CONTEXT,
    CliError,
    format_time,
    get_settings,
    json_option,
    parse_id,
    print_json,
    run_with_kith,
)
from kith.runtime import Kith
from kith.schemas import MergeOut
from kith.services.merges import MergeService

LIST_HINT = "`kith contacts list` shows them"


def _choices(items: tuple[str, ...]) -> dict[str, uuid.UUID]:
    chosen: dict[str, uuid.UUID] = {}
    for item in items:
        field, equals, value = item.partition("=")
        if not equals or not field.strip():
            raise CliError(
                f"--choose {item!r}: write it as FIELD=ID, like name=<id of the contact whose "
                "name to keep>"
            )
        chosen[field.strip()] = parse_id(value, "contact", LIST_HINT)
    return chosen


@click.command("merge")
@click.argument("survivor", metavar="SURVIVOR")
@click.argument("losers", metavar="LOSER...", nargs=-1, required=True)
@click.option(
    "--choose",
    "choices",
    multiple=True,
    metavar="FIELD=ID",
    help="Whose value the merged contact keeps (repeatable): FIELD is name, given_name, "
    "family_name, owner, organization, primary_email, primary_phone or fields.NAME; ID one "
    "of the contacts merged. Without it the survivor's value stays, or the first loser's "
    "where the survivor has none.",
)
@json_option
def merge_contacts(
    survivor: str, losers: tuple[str, ...], choices: tuple[str, ...], as_json: bool
) -> None:
    """Merge duplicate contacts (LOSER...) into SURVIVOR: their emails, phones, custom fields,
    timeline, consent history and every plugin's records move to it, and they are deleted.
    `kith contacts unmerge` undoes it while the undo window is open."""
    kept = parse_id(survivor, "contact", LIST_HINT)
    merged = [parse_id(loser, "contact", LIST_HINT) for loser in losers]
    picked = _choices(choices)

    async def work(kith: Kith) -> MergeOut:
        return await MergeService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).merge(kept, merged, picked)

    done = run_with_kith(work)
    if as_json:
        print_json(done)
        return
    count = len(done.losers)
    click.echo(
        f"Merged {count} contact{'s' if count != 1 else ''} into {done.contact_id} "
        f"(merge {done.id})"
    )
    if done.can_undo:
        until = format_time(done.undo_until, get_settings())
        click.echo(f"Undo until {until}: kith contacts unmerge {done.id}")


@click.command("unmerge")
@click.argument("merge_id", metavar="MERGE_ID")
@json_option
def unmerge_contacts(merge_id: str, as_json: bool) -> None:
    """Undo a merge: the merged contacts exist again as they were, with their ids."""
    key = parse_id(merge_id, "merge", "`kith contacts merge` prints it")

    async def work(kith: Kith) -> MergeOut:
        return await MergeService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).undo(key)

    done = run_with_kith(work)
    if as_json:
        print_json(done)
        return
    restored = ", ".join(str(loser) for loser in done.losers)
    click.echo(f"Undid merge {done.id}: {restored} separate from {done.contact_id} again")
