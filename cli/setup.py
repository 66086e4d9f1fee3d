"""``kith init``, ``kith migrate`` and ``kith serve``: set up and run an installation."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from kith import __version__
from kith.bootstrap import open_kith
from kith.console import (
    CliError,
    cli_plugin_manager,
    describe_database,
    get_settings,
    log_as_service,
    migration_states,
    note,
    opened_kith,
    run_with_kith,
)
from kith.logs import get_logger
from kith.runtime import Kith
from kith.services.field_seeds import SeedOutcome, describe, seed_fields
from kith.services.users import UserService
from kith.settings import SETTINGS_FILE, Settings
from kith.storage import MigrationState
from piccolo.apps.migrations.tables import Migration

# The databases `kith serve` already told how to create the first admin, one a line (see
# _database_identity): KITH_HOME outlives a database, so the hint is per database.
FIRST_ADMIN_MARKER = ".first-admin-hint-shown"
log = get_logger("kith.setup")

_SETTING_NOTES: dict[str, str] = {
    "database_url": (
        "Where the data lives. Empty: the SQLite file kith.sqlite3 in this folder.\n"
        'For PostgreSQL: "postgresql://user:password@host:5432/dbname".'
    ),
    "default_region": "Region for phone numbers typed without a country code (GB, DE, US, ...).",
    "timezone": 'Time zone for "today" in task lists and for times the CLI shows.',
    "log_format": (
        "auto (readable in a terminal, JSON lines otherwise), console or json.\n"
        "With auto, commands other than serve and worker log only warnings and errors."
    ),
    "log_level": "debug, info, warning or error.",
    "max_request_bytes": "Largest HTTP request body the server accepts, in bytes.",
    "dispatch_in_process": "Deliver events from the serving process itself.",
    "token_cache_seconds": (
        "How long a server remembers a checked API token (0: check every request).\n"
        "A token revoked elsewhere (kith tokens revoke, another server) stops working\n"
        "within this time; in the process that revoked it, at once."
    ),
    "public_url": (
        "The address people reach this Kith at, like https://crm.example.com (a path\n"
        "prefix is fine): every link Kith hands out (consent withdrawal links...) starts\n"
        "with it. Empty: links point at http://127.0.0.1:8000, this machine only."
    ),
    "name_search_index": (
        "Find contacts by name through a keyed index of the prefixes of their names' words\n"
        "(fast; it shows which contacts share a prefix to whoever holds the database).\n"
        "false: no such index is kept, and a name search decrypts contacts one by one.\n"
        "Set it alike for every process; after turning it back on, run kith migrate."
    ),
    "redis_url": (
        "Where the web UI keeps sign-in sessions and failed sign-in counts when several\n"
        'processes serve, like "redis://127.0.0.1:6379/0". Empty: files in this folder.'
    ),
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    # A JSON string is a valid TOML basic string for anything a setting holds.
    return json.dumps(str(value))


def settings_template() -> str:
    """The commented ``kith.toml`` ``kith init`` writes: every core setting with its default."""
    lines = [
        "# Kith settings. Uncomment a line to change a setting. An environment variable",
        "# KITH_<NAME> (for example KITH_DATABASE_URL) wins over this file.",
        "# KITH_HOME, the folder holding this file, is set in the environment only.",
        "# Plugins read their own [sections] from this file.",
    ]
    for field in dataclasses.fields(Settings):
        # Not settings of kith.toml's top level: where it lives, the plugins' sections, the
        # variables they read, and what is kept of them.
        if not field.init or field.name in ("home", "extra", "environment"):
            continue
        default = "" if field.default is dataclasses.MISSING else field.default
        lines.append("")
        lines.extend(f"# {text}" for text in _SETTING_NOTES.get(field.name, "").splitlines())
        lines.append(f"# {field.name} = {_toml_value(default)}")
    return "\n".join(lines) + "\n"


@dataclass
class HomeReport:
    home_created: bool
    settings_written: bool


def prepare_home(settings: Settings) -> HomeReport:
    """Create KITH_HOME (private to its owner) and a commented kith.toml if they are missing."""
    home = settings.home
    created = not home.exists()
    # The folder holds the database and, later, key files: nobody else needs to read it.
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings_file = home / SETTINGS_FILE
    written = False
    if not settings_file.exists():
        settings_file.write_text(settings_template(), encoding="utf-8")
        # It may come to hold a database password.
        settings_file.chmod(0o600)
        written = True
    return HomeReport(home_created=created, settings_written=written)


def _applied(before: list[MigrationState]) -> list[tuple[str, str]]:
    return [(state.app_name, name) for state in before for name in state.pending]


def _echo_applied(applied: list[tuple[str, str]]) -> None:
    if not applied:
        click.echo("Nothing to migrate: the database is up to date.")
        return
    click.echo(f"Applied {len(applied)} migration{'s' if len(applied) != 1 else ''}:")
    for app_name, name in applied:
        click.echo(f"  {app_name} {name}")


def _first_admin_hint() -> str:
    return (
        "No users yet. Create the first admin and an API token with:\n"
        "  kith users add you@example.com --role admin\n"
        "  kith tokens create you@example.com\n"
        "(with the same KITH_HOME and KITH_DATABASE_URL as this server)"
    )


# -- init ------------------------------------------------------------------------------------


@dataclass
class _InitResult:
    applied: list[tuple[str, str]]
    users: int
    seeded: list[SeedOutcome]


async def migrate_and_seed(kith: Kith) -> tuple[list[MigrationState], list[SeedOutcome]]:
    """Every app's schema migrations, then the plugins' data migrations (``kith_after_migrate``:
    the privacy plugin encrypts personal data stored before encryption existed), then the
    custom fields ``kith.toml`` and the plugins declare (those missing are added)."""
    before = await kith.database.migrate()
    if kith.plugins is not None:
        await kith.plugins.call_async("kith_after_migrate", kith=kith)
    return before, await seed_fields(kith)


async def migrate_all(kith: Kith) -> list[MigrationState]:
    """:func:`migrate_and_seed`, reporting the custom fields to the log only."""
    before, seeded = await migrate_and_seed(kith)
    for outcome in seeded:
        if outcome.outcome != "unchanged":
            log.info("custom_field.seeded", message=describe(outcome))
    return before


def _echo_seeded(seeded: list[SeedOutcome]) -> None:
    """What became of the declared custom fields, but those that exist as declared."""
    for outcome in seeded:
        if outcome.outcome == "unchanged":
            continue
        line = describe(outcome)
        click.echo(line[0].upper() + line[1:])


async def _init(kith: Kith) -> _InitResult:
    before, seeded = await migrate_and_seed(kith)
    return _InitResult(
        applied=_applied(before), users=await UserService(kith).count(), seeded=seeded
    )


@click.command()
def init() -> None:
    """Create KITH_HOME, a commented kith.toml, the database and its tables."""
    settings = get_settings()
    report = prepare_home(settings)
    result = run_with_kith(_init, settings=settings, migrated=False)
    home = settings.home
    click.echo(f"{'Created' if report.home_created else 'Using'} {home}")
    settings_file = home / SETTINGS_FILE
    if report.settings_written:
        click.echo(f"Wrote {settings_file} (every setting, commented out, with its default)")
    else:
        click.echo(f"Kept {settings_file} as it was")
    count = len(result.applied)
    state = (
        f"applied {count} migration{'s' if count != 1 else ''}" if count else "already up to date"
    )
    click.echo(f"Database: {describe_database(settings)}, {state}")
    _echo_seeded(result.seeded)
    if result.users == 0:
        click.echo(
            "Next: kith users add you@example.com --role admin; "
            "kith tokens create you@example.com; kith serve"
        )


# -- migrate ---------------------------------------------------------------------------------


@click.command()
def migrate() -> None:
    """Apply the pending migrations of every app, and add the custom fields kith.toml and
    the plugins declare that do not exist yet."""
    before, seeded = run_with_kith(migrate_and_seed, migrated=False)
    _echo_applied(_applied(before))
    _echo_seeded(seeded)


# -- serve -----------------------------------------------------------------------------------


class _ToStructlog(logging.Handler):
    """Sends uvicorn's own warnings and errors (a bad request line, a failed start) to Kith's
    structured log instead of a second, differently formatted stream."""

    def emit(self, record: logging.LogRecord) -> None:
        get_logger("uvicorn").log(
            record.levelno, "server." + record.levelname.lower(), message=record.getMessage()
        )


@dataclass
class _ServeCheck:
    initialised: list[tuple[str, str]] | None
    users: int
    database: str


async def _check_for_serving(settings: Settings) -> _ServeCheck:
    """Initialise an empty database (no migration applied yet); refuse one that lacks some."""
    async with opened_kith(settings) as kith:
        states = await migration_states(kith)
        initialised = None
        if not any(state.applied for state in states):
            initialised = _applied(await migrate_all(kith))
        else:
            # An older database: applying its migrations is the operator's decision.
            await kith.database.ensure_migrated()
        return _ServeCheck(
            initialised=initialised,
            users=await UserService(kith).count(),
            database=await _database_identity(kith),
        )


async def _database_identity(kith: Kith) -> str:
    """Where the database is and when its first migration ran: a database dropped and created
    again at the same place is a new one."""
    first = await Migration.select(Migration.ran_on).order_by(Migration.ran_on).first()
    ran_on = first["ran_on"] if first is not None else None
    initialised = ran_on.isoformat() if isinstance(ran_on, dt.datetime) else str(ran_on)
    return f"{describe_database(kith.settings)}, initialised {initialised}"


def _hinted(marker: Path) -> set[str]:
    if not marker.exists():
        return set()
    return set(marker.read_text(encoding="utf-8").splitlines())


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port."
)
@click.option(
    "--dispatch/--no-dispatch",
    default=None,
    help="Deliver events and publish due tasks in the server process too "
    "[default: the dispatch_in_process setting, on unless set to false]. "
    "Use --no-dispatch when `kith worker` does it.",
)
def serve(host: str, port: int, dispatch: bool | None) -> None:
    """Run the HTTP server. An empty database (and a new KITH_HOME) is initialised first."""
    # Imported here so that the other commands start without loading the web stack.
    import uvicorn
    from kith.http import create_app
    from kith.web.setup_code import issue_setup_code
    from kith.web.stores import web_store

    settings = get_settings()
    log_as_service()
    check = asyncio.run(_check_for_serving(settings))
    if check.initialised is None:
        # An existing database gets no settings file it did not ask for; the folder is only
        # needed for the first-admin marker (with PostgreSQL it may not exist yet).
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    else:
        report = prepare_home(settings)
        note(
            f"Initialised {settings.home}: {describe_database(settings)}, "
            f"{len(check.initialised)} migrations applied"
            + (", kith.toml written" if report.settings_written else "")
        )
    # Build the app and bind before saying anything more, so that a broken plugin or a port in
    # use stops the start without using up the one-time hint.
    app = create_app(open_kith(settings, plugin_manager=cli_plugin_manager()), dispatch=dispatch)
    listener = _listen(host, port)
    marker = settings.home / FIRST_ADMIN_MARKER
    if check.users == 0 and check.database not in _hinted(marker):
        note(_first_admin_hint())
        with marker.open("a", encoding="utf-8") as remembered:
            remembered.write(check.database + "\n")
    if check.users == 0:
        # A new code at every start while nobody can sign in: only whoever sees this output
        # can create the first admin in the browser.
        code = asyncio.run(issue_setup_code(web_store(settings)))
        note(
            f"Or in a browser: open http://{_url_host(host)}:{port}/ and create the first "
            f"admin with the set-up code {code}"
        )
    note(f"Kith {__version__} serving http://{_url_host(host)}:{port} (stop with Ctrl+C)")

    uvicorn_logger = logging.getLogger("uvicorn")
    if not any(isinstance(h, _ToStructlog) for h in uvicorn_logger.handlers):
        uvicorn_logger.addHandler(_ToStructlog(logging.WARNING))
    uvicorn_logger.propagate = False
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # Kith logs every request itself; uvicorn only reports its own trouble.
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio turns Nagle's algorithm off (TCP_NODELAY) on the connections
    # it accepts only for sockets that say they are TCP. Without it every answer on a
    # kept-alive connection waited about 40 ms for the client's delayed ACK.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # A restarted server can take over the port while old connections linger in TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise CliError(
            f"cannot listen on {_url_host(host)}:{port}: {exc.strerror or exc}; "
            "choose another with --host/--port"
        ) from None
    return listener


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
