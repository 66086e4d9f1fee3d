"""Shared plumbing for the commands: settings, an opened Kith, and errors as exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from kith.bootstrap import open_kith
from kith.errors import KithError
from kith.logs import configure_logging
from kith.runtime import Kith
from kith.settings import Settings, SettingsError, load_settings
from kith.storage import NotMigratedError

T = TypeVar("T")

EXIT_ERROR = 1
EXIT_SETTINGS = 2


class CliError(click.ClickException):
    """An expected failure: printed as one ``kith: ...`` line on stderr, no traceback."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"kith: {self.format_message()}", err=True, file=file)


class KithGroup(click.Group):
    """A click group that turns Kith's expected errors into one line and an exit code.

    Sub-groups are invoked inside the top group's ``invoke``, so this covers every command,
    including those other modules add later.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise CliError(str(exc), EXIT_SETTINGS) from None
        except KithError as exc:
            raise CliError(exc.detail) from None
        except NotMigratedError as exc:
            raise CliError(str(exc)) from None


def get_settings() -> Settings:
    """Load and validate the settings once per process and set up logging from them."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    root.ensure_object(dict)
    if "settings" not in root.obj:
        settings = load_settings()
        configure_logging(settings)
        root.obj["settings"] = settings
    settings_: Settings = root.obj["settings"]
    return settings_


def run_with_kith(
    work: Callable[[Kith], Awaitable[T]], *, settings: Settings | None = None, migrated: bool = True
) -> T:
    """Open Kith, run ``work(kith)`` to completion and close it again.

    With ``migrated`` (the default) a database with pending migrations is refused first, so a
    command never runs against tables it does not know.
    """
    kith = open_kith(settings or get_settings())

    async def go() -> T:
        await kith.start()
        try:
            if migrated:
                await kith.database.ensure_migrated()
            return await work(kith)
        finally:
            await kith.close()

    return asyncio.run(go())
