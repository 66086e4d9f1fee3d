"""Helpers shared by the field-encryption tests."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from kith.hookspecs import hookimpl
from kith.privacy import encryption_plugin
from kith.privacy.protector import PrivacyProtector
from kith.runtime import Kith
from kith.settings import Settings
from piccolo.querystring import QueryString


def plugin_wired() -> bool:
    """Whether the installed privacy plugin already provides field encryption."""
    import kith.privacy.plugin as plugin

    return hasattr(plugin, "kith_field_protector")


class EncryptionOnly:
    """The encryption half's hooks as a plugin of its own, for tests that need it alone."""

    @hookimpl
    def kith_register_apps(self, register: Any) -> None:
        encryption_plugin.register_apps(register)

    @hookimpl
    def kith_register_event_types(self, register: Any) -> None:
        encryption_plugin.register_event_types(register)

    @hookimpl
    def kith_field_protector(self, kith: Kith) -> PrivacyProtector:
        return encryption_plugin.field_protector(kith)

    @hookimpl(trylast=True)
    def kith_key_provider(self, settings: Settings) -> Any:
        return encryption_plugin.key_provider(settings)

    @hookimpl(tryfirst=True)
    async def kith_startup(self, kith: Kith) -> None:
        await encryption_plugin.startup(kith)

    @hookimpl
    async def kith_after_migrate(self, kith: Kith) -> None:
        await encryption_plugin.after_migrate(kith)


def extra_plugins() -> list[Any]:
    return [] if plugin_wired() else [EncryptionOnly()]


def protector(kith: Kith) -> PrivacyProtector:
    assert isinstance(kith.protector, PrivacyProtector), "field encryption is not active"
    return kith.protector


async def raw(kith: Kith, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of a raw query with piccolo's ``{}`` placeholders, on either engine."""
    result = await kith.database.engine.run_querystring(QueryString(sql, *args))
    return list(result or [])


def pg_dump_binary() -> str | None:
    """pg_dump from PATH, else the newest one in the usual PostgreSQL install folders."""
    found = shutil.which("pg_dump")
    if found:
        return found
    for root in (Path("/usr/lib/postgresql"), Path("/usr/local/pgsql"), Path("/opt/homebrew/opt")):
        if not root.exists():
            continue
        candidates = sorted(root.glob("*/bin/pg_dump"), key=lambda p: p.parent.parent.name)
        if candidates:
            return str(candidates[-1])
    return None


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "KITH_HOME": str(settings.home),
        "KITH_DATABASE_URL": settings.database_url,
        "KITH_LOG_FORMAT": "json",
    }
    env.update(extra)
    return env


def kith_command() -> list[str]:
    """The ``kith`` console script of the running interpreter's environment."""
    return [str(Path(sys.executable).parent / "kith")]
