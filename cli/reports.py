"""``kith report NAME``: a KPI report as a table, CSV or JSON."""

from __future__ import annotations

import csv
import sys

import click
from kith.console import json_option, print_json, print_table, run_with_kith
from kith.runtime import Kith
from kith.services.reports import Report, ReportService


@click.command("report")
@click.argument("name", required=False)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (for a spreadsheet).")
@json_option
def report(name: str | None, as_csv: bool, as_json: bool) -> None:
    """Print the KPI report NAME; without a name, list the reports."""

    async def work(kith: Kith) -> Report | list[tuple[str, str]]:
        service = ReportService(kith)
        return service.names() if name is None else await service.run(name)

    found = run_with_kith(work)
    if isinstance(found, list):
        print_table(["report", "what it shows"], found)
        return
    if as_json:
        print_json(found)
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(found.columns)
        writer.writerows(["" if v is None else v for v in row] for row in found.rows)
    else:
        click.echo(found.description)
        print_table(found.columns, [["" if v is None else v for v in row] for row in found.rows])
