"""``kith log``: put a note, call, email, meeting or order on a contact's timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
import msgspec
from kith.cli._when import AT
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
from kith.schemas import InteractionCreate, InteractionOut
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService

CLI_SOURCE = "cli"
# Tasks have their own command (`kith tasks add`), with a due date and an assignee.
KINDS = ["note", "call", "email", "meeting", "order", "form_submission"]
# A week: longer than any call or meeting, and far inside what the column holds.
MAX_MINUTES = 7 * 24 * 60


@click.command("log")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("contact_id", metavar="CONTACT_ID")
@click.argument("summary", default="")
@click.option("--body", default="", help="The text: what was said or written.")
@click.option("--direction", type=click.Choice(["inbound", "outbound"]), help="Who started it.")
@click.option("--channel", help="How it happened: phone, video, shop...")
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, max=MAX_MINUTES),
    help="How long it took (a call, a meeting).",
)
@click.option("--amount", help="An order's amount, e.g. 1234.50.")
@click.option(
    "--at",
    "occurred_at",
    type=AT,
    help="When it happened [default: now]: 'YYYY-MM-DD HH:MM', a date, today; times without "
    "an offset are in the installation's time zone.",
)
@json_option
def log_interaction(
    kind: str,
    contact_id: str,
    summary: str,
    body: str,
    direction: str | None,
    channel: str | None,
    minutes: float | None,
    amount: str | None,
    occurred_at: dt.datetime | None,
    as_json: bool,
) -> None:
    """Log a note, call, email, meeting, order or form submission on a contact's timeline.

    \b
    kith log note CONTACT_ID "Prefers email"
    kith log call CONTACT_ID "Asked for a quote" --direction inbound --minutes 5
    """
    key = parse_id(contact_id, "contact", "`kith contacts search` finds them")
    fields: dict[str, Any] = {
        "kind": kind,
        "summary": summary,
        "body": body,
        "direction": direction,
        "channel": channel,
        "duration_s": round(minutes * 60) if minutes is not None else None,
        "amount": amount,
        "occurred_at": occurred_at,
        "source": CLI_SOURCE,
    }
    try:
        # convert, unlike the constructor, checks lengths and amounts the way the API does.
        data = msgspec.convert(fields, InteractionCreate)
    except msgspec.ValidationError as exc:
        raise CliError(f"invalid {kind}: {exc}") from None

    async def work(kith: Kith) -> tuple[InteractionOut, str]:
        logged, _ = await InteractionService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).log(key, data)
        name = (await ContactService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).get(key)).name
        return logged, name

    logged, name = run_with_kith(work)
    if as_json:
        print_json(logged)
        return
    when = format_time(logged.occurred_at, get_settings())
    click.echo(f"Logged {kind.replace('_', ' ')} with {name} at {when} ({logged.id})")
