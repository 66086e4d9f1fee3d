"""Kith's pytest plugin (entry point ``pytest11``): fixtures for testing Kith and Kith plugins.

Every test that asks for ``kith`` runs twice, once on SQLite and once on PostgreSQL, each on a
throw-away database that already holds all migrations. PostgreSQL comes from
``KITH_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``); when it
cannot be reached the PostgreSQL runs skip with the reason, except under ``CI=true`` where they
fail, so a CI run cannot silently lose them.

Plugins: every test gets a fresh plugin manager (``kith_plugin_manager``) with the installed
plugins, loaded through their entry points as ``KITH_PLUGINS``/``KITH_DISABLE_PLUGINS`` select,
plus the plugin objects of ``kith_plugins``: override that fixture, or mark the test with
``@pytest.mark.kith_plugins(MyPlugin())``. The test's Kith and HTTP app see them, and so does the
``kith`` command run through ``kith_cli``; their piccolo apps are migrated into the test's
database. The manager is handed to each of them; nothing is installed process-wide.

Browser tests ask for ``browser``: a headless Chromium driven by Playwright, launched from the
system's Chromium (``KITH_CHROMIUM``, default ``/usr/bin/chromium``). Where none is installed
they skip with the reason, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from kith.actor import Role
from kith.bootstrap import open_kith
from kith.plugin_manager import KithPluginManager, load_plugin_manager
from kith.runtime import Kith
from kith.services.users import UserService
from kith.settings import Settings, load_settings

if TYPE_CHECKING:
    from click.testing import Result
    from playwright.async_api import Browser

ENGINES = ("sqlite", "postgres")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    return os.environ.get("KITH_TEST_POSTGRES_URL", DEFAULT_POSTGRES)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(postgres_admin_url(), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        asyncio.run(_admin("SELECT 1"))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL at {postgres_admin_url()} is not reachable ({exc})"
    return None


def skip_or_fail_without_postgres() -> None:
    reason = postgres_unavailable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; PostgreSQL tests must run in CI", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    """The Chromium the browser tests drive, or None when it is not installed here."""
    path = os.environ.get("KITH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return path if Path(path).exists() else None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium for one test (Playwright's async API, as Kith's tests are async)."""
    path = chromium_path()
    if path is None:
        reason = "no Chromium installed (install Debian's chromium package or set KITH_CHROMIUM)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; browser tests must run in CI", pytrace=False)
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


def settings_for(home: Path, database_url: str = "", **env: str) -> Settings:
    """Settings for a test installation in ``home``."""
    values = {"KITH_HOME": str(home), "KITH_DATABASE_URL": database_url, "KITH_LOG_FORMAT": "json"}
    values.update({f"KITH_{key.upper()}": value for key, value in env.items()})
    return load_settings(values)


async def _migrate(settings: Settings) -> None:
    # A manager of its own: the template must not hold the apps of one test's plugins.
    kith = open_kith(settings, plugin_manager=load_plugin_manager())
    await kith.start()
    try:
        await kith.database.migrate()
    finally:
        await kith.close()


class _Templates:
    """One migrated database per engine per test session; each test gets a copy."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sqlite_file: Path | None = None
        self.postgres_name: str | None = None

    def sqlite_copy(self, home: Path) -> str:
        if self.sqlite_file is None:
            template_home = self.root / "sqlite-template"
            settings = settings_for(template_home)
            asyncio.run(_migrate(settings))
            self.sqlite_file = settings.sqlite_path
        home.mkdir(parents=True, exist_ok=True)
        target = home / "kith.sqlite3"
        shutil.copyfile(self.sqlite_file, target)
        # As Kith makes its database files: the owner's only.
        target.chmod(0o600)
        return f"sqlite:///{target}"

    def postgres_copy(self) -> str:
        skip_or_fail_without_postgres()
        if self.postgres_name is None:
            name = f"kith_template_{uuid.uuid4().hex[:10]}"
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            self.postgres_name = name
            asyncio.run(
                _migrate(
                    settings_for(
                        self.root / "pg-template", _with_database(postgres_admin_url(), name)
                    )
                )
            )
        name = f"kith_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.postgres_name}"'))
        return _with_database(postgres_admin_url(), name)

    def drop_postgres(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def cleanup(self) -> None:
        if self.postgres_name is not None:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{self.postgres_name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def _kith_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Templates]:
    templates = _Templates(tmp_path_factory.mktemp("kith-templates"))
    yield templates
    templates.cleanup()


@pytest.fixture(params=ENGINES)
def kith_engine(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres``: every test using Kith runs on both."""
    return str(request.param)


@pytest.fixture
def kith_database_url(
    kith_engine: str, tmp_path: Path, _kith_templates: _Templates
) -> Iterator[str]:
    """A throw-away, fully migrated database for one test."""
    if kith_engine == "sqlite":
        yield _kith_templates.sqlite_copy(tmp_path / "kith-home")
        return
    url = _kith_templates.postgres_copy()
    try:
        yield url
    finally:
        _kith_templates.drop_postgres(url)


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path) -> Settings:
    return settings_for(tmp_path / "kith-home", kith_database_url)


_KITH_OPENED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kith_plugins(*plugins): plugin objects (or (name, plugin)) for this test"
    )


@pytest.fixture
def kith_plugins(request: pytest.FixtureRequest) -> list[Any]:
    """Plugin objects registered for one test, besides the installed plugins: those of the
    ``kith_plugins`` marker. Override this fixture to give a module's tests their own. An item
    may be ``(name, plugin)`` to choose the name it is registered (and listed) under."""
    marker = request.node.get_closest_marker("kith_plugins")
    return list(marker.args) if marker else []


@pytest.fixture
def kith_plugin_manager(kith_plugins: list[Any]) -> KithPluginManager:
    """A fresh plugin manager for one test: the installed plugins plus ``kith_plugins``. The
    ``kith``, ``kith_client`` and ``kith_cli`` fixtures use it."""
    manager = load_plugin_manager()
    for item in kith_plugins:
        name, plugin = item if isinstance(item, tuple) else (None, item)
        manager.register(plugin, name)
    return manager


KithCli = Callable[..., "Result"]


@pytest.fixture
def kith_cli(kith_plugin_manager: KithPluginManager) -> KithCli:
    """``kith_cli("plugins", "list", env=None, input=None)`` runs the ``kith`` command in this
    process with the test's plugin manager and returns click's ``Result``."""
    from click.testing import CliRunner
    from kith.cli import main
    from kith.console import PLUGIN_MANAGER

    def invoke(
        *args: str, env: Mapping[str, str] | None = None, input: str | None = None
    ) -> Result:
        # A new object per run: the command keeps its settings there too.
        obj = {PLUGIN_MANAGER: kith_plugin_manager}
        return CliRunner().invoke(main, list(args), env=env, input=input, obj=obj)

    return invoke


@pytest.fixture
def register_plugin(
    kith_plugin_manager: KithPluginManager, request: pytest.FixtureRequest
) -> Callable[..., str | None]:
    """``register_plugin(obj, name=None)`` registers a plugin object for this test. Call it
    before the test's Kith opens (from a fixture the test lists before ``kith``), or for
    ``kith_cli`` and the plugin manager alone; ``kith_plugins`` is the simpler way."""

    def register(plugin: Any, name: str | None = None) -> str | None:
        if request.node.stash.get(_KITH_OPENED, False):
            raise RuntimeError(
                "register_plugin() was called after this test's Kith opened, which has "
                "collected the plugins already; use the kith_plugins fixture or marker instead"
            )
        return kith_plugin_manager.register(plugin, name)

    return register


@pytest.fixture
async def kith(
    kith_settings: Settings,
    kith_plugin_manager: KithPluginManager,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Kith]:
    """An opened Kith on a throw-away database, with the test's plugins."""
    instance = open_kith(kith_settings, plugin_manager=kith_plugin_manager)
    request.node.stash[_KITH_OPENED] = True
    await instance.database.start()
    # The template database holds the installed plugins' migrations; an app of a plugin
    # registered for this test is migrated here, before any plugin's startup hook runs.
    if any(state.pending for state in await instance.database.migration_states()):
        await instance.database.migrate()
    await instance.start()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
async def kith_client(kith: Kith) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the Kith app: real ASGI requests through the whole stack.

    It runs the app on the test's own event loop (litestar's test clients use a second loop in
    a thread, which a database pool opened by the test cannot be shared with)."""
    from kith.http import create_app

    app = create_app(kith, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kith.test") as client:
        yield client


TokenFactory = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def kith_auth(kith: Kith) -> TokenFactory:
    """``await kith_auth("agent")`` → headers with a fresh token of a new user of that role."""

    async def make(role: str | Role = Role.ADMIN, email: str | None = None) -> dict[str, str]:
        users = UserService(kith)
        address = email or f"{role}-{uuid.uuid4().hex[:8]}@staff.example"
        await users.add(address, str(role))
        issued = await users.create_token(address)
        return {"Authorization": f"Bearer {issued.secret}"}

    return make


__all__ = [
    "ENGINES",
    "KithCli",
    "TokenFactory",
    "kith",
    "kith_auth",
    "kith_cli",
    "kith_client",
    "kith_database_url",
    "kith_engine",
    "kith_plugin_manager",
    "kith_plugins",
    "kith_settings",
    "postgres_admin_url",
    "postgres_unavailable",
    "register_plugin",
    "settings_for",
    "skip_or_fail_without_postgres",
]
