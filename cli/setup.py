"""``kith init``, ``kith migrate`` and ``kith serve``: set up and run an installation."""

from __future__ import annotations

import click
from kith.cli._context import run_with_kith
from kith.runtime import Kith
from kith.storage import MigrationState


async def _migrate(kith: Kith) -> list[MigrationState]:
    return await kith.database.migrate()


@click.command()
def migrate() -> None:
    """Apply pending migrations of every app."""
    before = run_with_kith(_migrate, migrated=False)
    applied = [(state.app_name, name) for state in before for name in state.pending]
    if not applied:
        click.echo("Nothing to migrate: the database is up to date.")
        return
    for app_name, name in applied:
        click.echo(f"applied {app_name} {name}")
    click.echo(f"{len(applied)} migration(s) applied.")
