"""The plugin's commands: ``kith example ...``."""

from __future__ import annotations

import click
from kith import Kith
from kith.console import print_table, run_with_kith

from kith_example.welcomes import WelcomeOut, welcome_list


@click.group()
def example() -> None:
    """The example plugin's welcome list."""


@example.command("welcomes")
@click.option("--all", "include_done", is_flag=True, help="Also list contacts welcomed already.")
def welcomes(include_done: bool) -> None:
    """List contacts waiting to be welcomed."""

    async def work(kith: Kith) -> list[WelcomeOut]:
        return await welcome_list(kith, include_done)

    rows = run_with_kith(work)
    print_table(
        ["contact", "added", "welcomed"],
        [
            (w.contact_id, w.created_at.isoformat(timespec="seconds"), w.welcomed_at or "")
            for w in rows
        ],
        empty="Nobody is waiting to be welcomed.",
    )
