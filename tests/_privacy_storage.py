"""Helpers shared by the field-encryption tests."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from kith.privacy.encryption.protector import PrivacyProtector
from kith.runtime import Kith
from kith.settings import Settings
from piccolo.querystring import QueryString


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
