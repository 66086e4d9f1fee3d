"""Writing ``kith`` commands: settings, an opened Kith, errors as exit codes, output.

Kith's own commands and every plugin's (``kith_register_commands``) are click commands built
on this module, part of Kith's public API. A command needs little more than::

    from kith.console import print_table, run_with_kith

    @click.command()
    def things() -> None:
        rows = run_with_kith(lambda kith: ThingService(kith).list())
        print_table(["id", "name"], [(str(t.id), t.name) for t in rows], empty="No things.")

Expected failures (bad settings, a :class:`KithError` from a service, an unmigrated or
unreachable database) become one ``kith: ...`` line on stderr and an exit code; see
:class:`KithGroup`. Commands run as the system: services given :data:`AUDIT_CHANNEL` and
:data:`AUDIT_CONTEXT` record their reads of personal data as the command line's, with the
operating-system account that ran them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import getpass
import sqlite3
import sys
import uuid
import warnings
import zoneinfo
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import click
import msgspec
from kith.bootstrap import open_kith
from kith.errors import KithError
from kith.logs import configure_logging
from kith.plugin_manager import KithPluginManager, PluginError, load_plugin_manager
from kith.runtime import Kith
from kith.settings import Settings, SettingsError, load_settings
from kith.storage import MigrationState, NotMigratedError

T = TypeVar("T")

EXIT_ERROR = 1
EXIT_SETTINGS = 2
# The channel the commands' reads and changes of personal data are audited under; the
# commands run as the system, so the operating-system account says who ran them.
AUDIT_CHANNEL = "cli"
AUDIT_CONTEXT = {"os_user": getpass.getuser()}

# The key of the plugin manager in the root context's object (a dict); a caller invoking the
# command in-process (a test) may put its own manager there.
PLUGIN_MANAGER = "plugin_manager"


class CliError(click.ClickException):
    """An expected failure: printed as one ``kith: ...`` line on stderr, no traceback."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            # click declares exit_code on the class; an instance value overrides it.
            vars(self)["exit_code"] = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"kith: {self.format_message()}", err=True, file=file)


class SettingsCliError(CliError):
    """A setting Kith cannot use: exit code 2, like a usage error."""

    exit_code = EXIT_SETTINGS


class KithGroup(click.Group):
    """A click group that turns Kith's expected errors into one line and an exit code:
    2 for settings, 1 for everything else a person can act on.

    Sub-groups run inside the top group's ``invoke``, so this covers every command,
    including those that other modules add later.
    """

    def invoke(self, ctx: click.Context) -> Any:
        # piccolo warns about an unreachable database on its own; the line below says it better.
        warnings.filterwarnings("ignore", message=r".*Unable to (connect to|fetch server)")
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise SettingsCliError(str(exc)) from None
        except KithError as exc:
            raise CliError(exc.detail) from None
        except NotMigratedError as exc:
            raise CliError(str(exc)) from None


# -- settings and the opened installation ----------------------------------------------------


def get_settings() -> Settings:
    """The validated settings, loaded once per invocation; logging is set up from them for a
    command a person reads (only warnings and errors among its output, unless ``log_format``
    asks for every line; see :func:`log_as_service`)."""
    root = click.get_current_context().find_root()
    root.ensure_object(dict)
    if "settings" not in root.obj:
        settings = load_settings()
        configure_logging(settings, command=True)
        root.obj["settings"] = settings
    loaded: Settings = root.obj["settings"]
    return loaded


def log_as_service() -> None:
    """Log every line at ``log_level``, as a process whose log is its output does (``kith
    serve``, ``kith worker``): call it first in such a command."""
    configure_logging(get_settings())


def cli_plugin_manager() -> KithPluginManager:
    """The plugin manager of this invocation, loaded on first use and kept in the root
    context's object, so listing the commands and running one share it. A plugin that stops
    start-up (strict mode) or a bad KITH_*_PLUGINS value is one readable line."""
    # Logging is set up from the settings first, so that what is said about plugins (one
    # skipped while loading, a command left out) goes where the installation's logs go; a
    # settings error is left to the command, which reports it properly (help and plugin
    # listings work without valid settings).
    with contextlib.suppress(SettingsError):
        get_settings()
    root = click.get_current_context().find_root()
    manager: KithPluginManager | None = root.obj.get(PLUGIN_MANAGER)
    if manager is None:
        try:
            manager = load_plugin_manager()
        except PluginError as exc:
            raise CliError(exc.detail) from None
        except SettingsError as exc:
            raise CliError(str(exc), EXIT_SETTINGS) from None
        root.obj[PLUGIN_MANAGER] = manager
    return manager


def parse_id(value: str, what: str, hint: str = "") -> uuid.UUID:
    """An id typed on the command line, or a readable error naming what it should be."""
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        article = "an" if what[:1] in "aeiou" else "a"
        suffix = f"; {hint}" if hint else ""
        raise CliError(f"{value!r} is not {article} {what} id{suffix}") from None


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, not a table.")
"""``--json``: the command prints JSON for scripts (passed as ``as_json``)."""


def describe_database(settings: Settings) -> str:
    """Where the data lives, for people: a file path or user@host:port/db, never a password."""
    if settings.database_kind == "sqlite":
        return f"SQLite {settings.sqlite_path}"
    parts = urlsplit(settings.database_url)
    user = f"{parts.username}@" if parts.username else ""
    return f"PostgreSQL {user}{parts.hostname}:{parts.port or 5432}{parts.path}"


@contextlib.contextmanager
def _database_errors(settings: Settings) -> Iterator[None]:
    """Turn 'cannot reach or open the database' into one readable line."""
    try:
        yield
    except asyncpg.InvalidCatalogNameError as exc:
        raise CliError(
            f"cannot open the database ({describe_database(settings)}): {exc}; create it "
            "(for example with createdb) or point KITH_DATABASE_URL at another one"
        ) from None
    except (
        OSError,
        sqlite3.Error,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        TimeoutError,
    ) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(
            f"cannot open the database ({describe_database(settings)}): {reason}; "
            "check KITH_DATABASE_URL and that the database server is running"
        ) from None


@contextlib.asynccontextmanager
async def opened_kith(settings: Settings | None = None) -> AsyncIterator[Kith]:
    """An opened Kith with this invocation's plugins that is closed again on exit; connection
    failures are readable."""
    settings = settings or get_settings()
    plugins = cli_plugin_manager()
    with _database_errors(settings):
        kith = open_kith(settings, plugin_manager=plugins)
        await kith.start()
    try:
        yield kith
    finally:
        await kith.close()


async def migration_states(kith: Kith) -> list[MigrationState]:
    """Applied and pending migrations per app; the first query, so it also proves the
    database can be opened."""
    with _database_errors(kith.settings):
        return await kith.database.migration_states()


def run_with_kith(
    work: Callable[[Kith], Awaitable[T]], *, settings: Settings | None = None, migrated: bool = True
) -> T:
    """Open Kith, run ``work(kith)`` to completion and close it again.

    With ``migrated`` (the default) a database with pending migrations is refused first, so a
    command never runs against tables it does not know.
    """

    async def go() -> T:
        async with opened_kith(settings) as kith:
            await migration_states(kith)
            if migrated:
                await kith.database.ensure_migrated()
            return await work(kith)

    return asyncio.run(go())


# -- output ----------------------------------------------------------------------------------


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def format_time(value: dt.datetime | None, settings: Settings) -> str:
    """A time in the installation's time zone, to the minute; empty for None."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(zoneinfo.ZoneInfo(settings.timezone)).strftime("%Y-%m-%d %H:%M")


def _cell(value: object) -> str:
    # One row per line, whatever the text holds.
    return " ".join(str(value).split()) if value is not None else ""


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, empty: str = "Nothing found."
) -> None:
    """Rows as a table: rich in a terminal, plain aligned columns when piped.

    With no rows, ``empty`` goes to stderr and stdout stays empty, so scripts see no rows.
    """
    if not rows:
        click.echo(empty, err=True)
        return
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    if stdout_is_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, box=None, header_style="bold", pad_edge=False)
        for row in cells:
            table.add_row(*row)
        console = Console()
        # Never drop or cut columns to fit a narrow terminal: ids must stay whole to be copied.
        console.width = max(console.width, sum(widths) + 2 * (len(widths) - 1))
        console.print(table)
        return
    for row in [list(headers), *cells]:
        click.echo(
            "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip()
        )


def print_json(value: Any) -> None:
    """Any msgspec-encodable value as indented JSON on stdout."""
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


def note(message: str) -> None:
    """Something for the person at the terminal, not for a script reading stdout."""
    click.echo(message, err=True)


__all__ = [
    "AUDIT_CHANNEL",
    "AUDIT_CONTEXT",
    "EXIT_ERROR",
    "EXIT_SETTINGS",
    "PLUGIN_MANAGER",
    "CliError",
    "KithGroup",
    "cli_plugin_manager",
    "describe_database",
    "format_time",
    "get_settings",
    "json_option",
    "log_as_service",
    "migration_states",
    "note",
    "opened_kith",
    "parse_id",
    "print_json",
    "print_table",
    "run_with_kith",
]
