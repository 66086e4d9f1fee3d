"""``kith onec``: the state of the 1C exchange, and OData sync by hand."""

from __future__ import annotations

import click
from kith import Kith
from kith.console import format_time, get_settings, print_json, print_table, run_with_kith
from kith.plugins.onec.odata import OdataError, OdataSync, SyncReport, record_failure
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
    click.echo(
        f"linked in 1C      {found.counterparties} counterparties, {found.documents} documents"
    )
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


def _report(action: str, report: SyncReport) -> None:
    counts = report.counts
    click.echo(
        f"{action}: {report.read} read from 1C, {report.changed} changed in Kith "
        f"({counts.counterparties_created} created, {counts.counterparties_updated} updated, "
        f"{counts.counterparties_archived} archived, {counts.conflicts} conflicts), "
        f"{report.pushed} sent to 1C, {report.notices_sent} notices sent"
        + (f", {report.notices_failed} notices failed" if report.notices_failed else "")
        + "."
    )
    for error in counts.errors:
        click.echo(f"  refused: {error}", err=True)


def _sync(action: str) -> SyncReport:
    async def work(kith: Kith) -> SyncReport:
        sync = OdataSync(kith)
        try:
            return await (sync.pull() if action == "pull" else sync.push())
        except OdataError as exc:
            await record_failure(kith, action, str(exc))
            raise

    return run_with_kith(work)


@onec.command("pull")
def pull() -> None:
    """Bring counterparties changed in 1C (OData) into Kith."""
    _report("Pulled", _sync("pull"))


@onec.command("push")
def push() -> None:
    """Send Kith's new organizations and people to 1C (OData), and the notices owed to it."""
    _report("Pushed", _sync("push"))
