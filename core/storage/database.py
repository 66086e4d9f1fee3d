"""Open the configured database, bind every piccolo table to it and apply migrations."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kith.settings import Settings
from kith.storage import _piccolo_conf
from kith.storage.postgres import KithPostgresEngine
from kith.storage.sqlite import KithSQLiteEngine
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import AppConfig
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

os.environ.setdefault("PICCOLO_CONF", _piccolo_conf.__name__)


class NotMigratedError(RuntimeError):
    """The database lacks migrations this version of Kith needs."""


@dataclass(frozen=True)
class MigrationState:
    app_name: str
    applied: list[str]
    pending: list[str]


def _postgres_config(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname,
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password,
        "database": parts.path.lstrip("/"),
    }


def _sort_apps(apps: list[AppConfig]) -> list[AppConfig]:
    """Apps in dependency order (an app's migration dependencies come first)."""
    ordered: list[AppConfig] = []
    seen: set[str] = set()

    def visit(app: AppConfig) -> None:
        if app.app_name in seen:
            return
        seen.add(app.app_name)
        for dependency in app.migration_dependency_app_configs:
            visit(dependency)
        ordered.append(app)

    for app in apps:
        visit(app)
    return ordered


async def _keep_session_state(connection: Any) -> None:
    """The pool's reset step for a connection going back to the pool: nothing beyond what
    asyncpg always does (roll back an open transaction, drop listeners).

    asyncpg's default also runs ``RESET ALL; CLOSE ALL; UNLISTEN *; pg_advisory_unlock_all()``,
    a second round trip for every pooled query: measured on a 2-core machine it doubled the
    time of a primary-key read and cost a third of its CPU. Kith keeps no session state on
    pooled connections: no SET, LISTEN or open cursor outside a transaction, and only
    transaction-level advisory locks (``pg_advisory_xact_lock``), which end with the
    transaction. Code that needs session state must take a connection of its own.
    """


class Database:
    """The engine for one Kith installation and the piccolo apps that live in it."""

    def __init__(self, settings: Settings, apps: list[AppConfig]) -> None:
        self.settings = settings
        self.kind = settings.database_kind
        self.apps = _sort_apps(apps)
        self.engine: Engine = self._make_engine()
        self._bind()

    def _make_engine(self) -> Engine:
        if self.kind == "postgresql":
            return KithPostgresEngine(config=_postgres_config(self.settings.database_url))
        path = self.settings.sqlite_path
        # Usually KITH_HOME, whose files are its owner's only.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return KithSQLiteEngine(path=str(path))

    def _bind(self) -> None:
        # Piccolo tables find their engine through piccolo_conf; point it (and every table of
        # every app, including piccolo's own migration table) at this database.
        _piccolo_conf.DB = self.engine
        _piccolo_conf.APP_REGISTRY.app_configs = {app.app_name: app for app in self.apps}
        Migration._meta.db = self.engine
        for app in self.apps:
            for table in app.table_classes:
                table._meta.db = self.engine

    async def start(self) -> None:
        """Open the connection pool (PostgreSQL); SQLite connects lazily."""
        self._bind()
        if isinstance(self.engine, PostgresEngine) and self.engine.pool is None:
            await self.engine.start_connection_pool(
                min_size=1, max_size=10, reset=_keep_session_state
            )

    async def close(self) -> None:
        if isinstance(self.engine, PostgresEngine):
            await self.engine.close_connection_pool()
        elif isinstance(self.engine, KithSQLiteEngine):
            await self.engine.close()

    async def lock(self, names: Iterable[str]) -> None:
        """Hold these named locks until the current transaction ends.

        Two transactions that lock a common name run one after the other from this call on, so
        "look, then insert if missing" cannot race. PostgreSQL: transaction-level advisory
        locks. SQLite: nothing to do, its transactions start IMMEDIATE, so writers already run
        one at a time."""
        if self.kind != "postgresql":
            return
        keys = sorted(
            {
                int.from_bytes(
                    hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
                )
                for name in names
            }
        )
        if keys:
            # Sorted, so two transactions locking overlapping sets cannot deadlock.
            await self.engine.run_querystring(
                QueryString(
                    "SELECT COUNT(pg_advisory_xact_lock(k)) AS n FROM unnest({}::bigint[]) AS k",
                    keys,
                )
            )

    async def migration_states(self) -> list[MigrationState]:
        manager = BaseMigrationManager()
        await manager.create_migration_table()
        states = []
        for app in self.apps:
            modules = manager.get_migration_modules(app.resolved_migrations_folder_path)
            on_disk = manager.get_migration_ids(modules)
            applied = await Migration.get_migrations_which_ran(app_name=app.app_name)
            pending = sorted(set(on_disk) - set(applied))
            states.append(MigrationState(app.app_name, sorted(applied), pending))
        return states

    async def migrate(self) -> list[MigrationState]:
        """Apply every pending migration of every app; returns what was pending before."""
        before = await self.migration_states()
        for app in self.apps:
            # piccolo narrates each step on stdout; Kith reports the outcome itself.
            with contextlib.redirect_stdout(io.StringIO()):
                manager = ForwardsMigrationManager(app_name=app.app_name)
                result = await manager.run_migrations(app)
            if not result.success:
                raise NotMigratedError(f"migrating {app.app_name} failed: {result.message}")
        return before

    async def ensure_migrated(self) -> None:
        """Raise :class:`NotMigratedError` naming the command to run if anything is pending."""
        pending = [
            f"{state.app_name} ({len(state.pending)})"
            for state in await self.migration_states()
            if state.pending
        ]
        if pending:
            raise NotMigratedError(
                "the database needs migrations (" + ", ".join(pending) + "); run `kith migrate`"
            )
