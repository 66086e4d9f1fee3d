"""``kith plugins list``: which plugins are loaded, from where, and what they hook into."""

from __future__ import annotations

from typing import Any

import click
from kith.console import cli_plugin_manager, print_json, print_table


@click.group()
def plugins() -> None:
    """Installed plugins: what is loaded, from where, and what failed."""


@plugins.command("list")
@click.option("--hooks", is_flag=True, help="Also show the hooks each plugin implements.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def list_plugins(hooks: bool, as_json: bool) -> None:
    """Loaded plugins with version and source (built-in or the distribution), then those that
    failed to load or are disabled, with the reason."""
    manager = cli_plugin_manager()
    rows: list[dict[str, Any]] = [
        {
            "name": info.name,
            "version": info.version,
            "source": info.source,
            "status": "loaded",
            "reason": None,
            "hooks": list(info.hooks),
        }
        for info in manager.plugins()
    ]
    rows += [
        {
            "name": skipped.name,
            "version": skipped.version,
            "source": skipped.source,
            "status": skipped.status,
            "reason": skipped.reason,
            "hooks": [],
        }
        for skipped in manager.skipped()
    ]
    if not hooks:
        for row in rows:
            del row["hooks"]
    if as_json:
        print_json(rows)
        return
    headers = ["NAME", "VERSION", "SOURCE", "STATUS", *(["HOOKS"] if hooks else [])]
    table = [
        [
            row["name"],
            row["version"] or "-",
            row["source"],
            row["status"] + (f": {row['reason']}" if row["reason"] else ""),
            *([", ".join(row["hooks"]) or "-"] if hooks else []),
        ]
        for row in rows
    ]
    print_table(headers, table, empty="No plugins are installed.")
