"""``kith onec``: the state of the 1C exchange, and OData sync by hand."""

from __future__ import annotations

import click
from kith import Kith
from kith.console import format_time, get_settings, print_json, print_table, run_with_kith
from kith.plugins.onec.status import OnecStatus, status_of


@click.group()
def onec() -> None:
    """Sync with 1C:Enterprise (CommerceML exchange and OData)."""


@onec.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--limit", default=10, show_default=True, help="How many recent steps to list.")
def status(as_json: bool, limit: int) -> None:
    """The last exchanges and syncs, what they did, and their errors."""

    async def work(kith: Kith) -> OnecStatus:
        return await status_of(kith, limit)

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    click.echo(f"exchange user     {found.exchange_user or '(not set: the exchange is off)'}")
    click.echo(f"OData             {found.odata_url or '(not set)'}")
    click.echo(f"linked in 1C      {found.counterparties} counterparties, {found.documents} documents")
    click.echo(f"notices pending   {found.notices_pending}")
    click.echo(f"conflicts         {found.conflicts}")
    click.echo()
    print_table(
        ["when", "channel", "step", "state", "file", "counts", "error"],
        [
            (
                format_time(step.started_at, settings),
                step.channel,
                step.action,
                step.state,
                step.filename,
                ", ".join(f"{k}={v}" for k, v in sorted(step.counts.items())),
                step.error.splitlines()[0] if step.error else "",
            )
            for step in found.recent
        ],
        empty="No exchange yet.",
    )
