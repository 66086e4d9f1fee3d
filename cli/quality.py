"""``kith quality``: the data quality report."""

from __future__ import annotations

import click
from kith.console import (
    AUDIT_CHANNEL,
    AUDIT_CONTEXT,
    format_time,
    get_settings,
    json_option,
    print_json,
    print_table,
    run_with_kith,
)
from kith.runtime import Kith
from kith.services.quality import QualityReport, QualityService


@click.command()
@click.option(
    "--stale-months",
    type=click.IntRange(1, 600),
    help="Contacts with no interaction and no change for this many months are stale "
    "[default: stale_months of [quality] in kith.toml, 12].",
)
@json_option
def quality(stale_months: int | None, as_json: bool) -> None:
    """Report contacts nobody can reach, emails and phones that look unusable, stale contacts
    and required custom fields left empty: counts and a few contact ids (`kith contacts show
    ID` shows one). Checking emails and phones reads them; each contact read is recorded in
    the audit log."""

    async def work(kith: Kith) -> QualityReport:
        return await QualityService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).report(stale_months)

    report = run_with_kith(work)
    if as_json:
        print_json(report)
        return
    click.echo(
        f"Data quality of {report.contacts} contacts (archived ones left out), "
        f"{format_time(report.generated_at, get_settings())}"
    )
    rows: list[tuple[object, ...]] = []
    for section in report.sections:
        rows.append((section.name, "", section.count, _ids(section.examples)))
        for finding in section.findings:
            rows.append(("", finding.name, finding.count, _ids(finding.examples)))
    print_table(["section", "finding", "contacts", "for example"], rows)


def _ids(ids: list[object]) -> str:
    return " ".join(str(i) for i in ids)
