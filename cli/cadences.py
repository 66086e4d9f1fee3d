"""``kith cadences`` (contact every N days) and ``kith contacts due`` (who to call now)."""

from __future__ import annotations

import click
import msgspec
from kith.console import (
    AUDIT_CHANNEL,
    AUDIT_CONTEXT,
    CliError,
    format_time,
    get_settings,
    json_option,
    note,
    print_json,
    print_table,
    run_with_kith,
)
from kith.runtime import Kith
from kith.services.cadences import CadenceIn, CadenceOut, CadenceService, DueContact
from kith.services.users import UserService

SCOPE = click.Choice(["contact", "tag", "tier"])


@click.group()
def cadences() -> None:
    """Keep-in-touch cadences: contact every N days, per contact, tag or tier."""


@cadences.command("set")
@click.argument("scope", type=SCOPE)
@click.argument("target")
@click.argument("every_days", type=int)
@json_option
def set_cadence(scope: str, target: str, every_days: int, as_json: bool) -> None:
    """Contact TARGET (a contact id, a tag or a tier) every EVERY_DAYS days."""
    try:
        data = msgspec.convert(
            {"scope": scope, "target": target, "every_days": every_days}, CadenceIn
        )
    except msgspec.ValidationError as exc:
        raise CliError(f"invalid cadence: {exc}") from None

    async def work(kith: Kith) -> CadenceOut:
        return await CadenceService(kith).set(data)

    saved = run_with_kith(work)
    if as_json:
        print_json(saved)
        return
    click.echo(f"Every {saved.every_days} days: {saved.scope} {saved.target}")


@cadences.command("list")
@json_option
def list_cadences(as_json: bool) -> None:
    """List cadences."""

    async def work(kith: Kith) -> list[CadenceOut]:
        return await CadenceService(kith).list()

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    print_table(
        ["scope", "target", "every (days)"],
        [(c.scope, c.target, c.every_days) for c in found],
        empty="No cadences; add one with `kith cadences set tag vip 30`.",
    )


@cadences.command("remove")
@click.argument("scope", type=SCOPE)
@click.argument("target")
def remove_cadence(scope: str, target: str) -> None:
    """Remove the cadence of a contact, tag or tier."""

    async def work(kith: Kith) -> None:
        await CadenceService(kith).remove(scope, target)

    run_with_kith(work)
    click.echo(f"Removed the cadence of {scope} {target}")


@click.command("due")
@click.option("--owner", metavar="EMAIL", help="Only contacts this user owns.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@json_option
def contacts_due(owner: str | None, limit: int, as_json: bool) -> None:
    """Contacts due for a call by their cadence, most overdue first, with the reason."""

    async def work(kith: Kith) -> list[DueContact]:
        owner_id = (await UserService(kith).by_email(owner)).id if owner else None
        service = CadenceService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT)
        return await service.due(owner_id=owner_id, limit=limit)

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    print_table(
        ["contact", "due since", "overdue (days)", "why", "id"],
        [
            (d.name, format_time(d.due_at, settings), d.overdue_days, d.reason, d.contact_id)
            for d in found
        ],
        empty="Nobody is due; everyone has been contacted in time.",
    )
    if len(found) == limit:
        note(f"Showing the first {limit}; use --limit to see more.")
