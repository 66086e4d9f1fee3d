"""The encryption half of ``[privacy]`` in ``kith.toml``::

    [privacy]
    key_file = "kith-keys.json"      # the KEK file, relative to KITH_HOME (default shown)
    key_cache_size = 10000           # unwrapped data keys kept in memory (LRU)
    key_cache_ttl_seconds = 60       # how long one stays cached: bounds how long another
                                     # running process can still read a subject shredded here

Keys this module does not know belong to the request workflow (``workflow_settings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kith.privacy.keyfile import key_file_path
from kith.privacy.keys import DEFAULT_CACHE_SIZE, DEFAULT_CACHE_TTL
from kith.settings import Settings, SettingsError


@dataclass(frozen=True)
class KeySettings:
    key_file: Path
    cache_size: int = DEFAULT_CACHE_SIZE
    cache_ttl: float = DEFAULT_CACHE_TTL


def _number(section: dict[str, Any], name: str, default: float, minimum: float) -> float:
    value = section.get(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(
            f"privacy.{name} in kith.toml: expected a number, got {value!r}"
        ) from None
    if number < minimum:
        raise SettingsError(
            f"privacy.{name} in kith.toml: must be at least {minimum:g}, got {value!r}"
        )
    return number


def key_settings(settings: Settings) -> KeySettings:
    section = settings.section("privacy")
    return KeySettings(
        key_file=key_file_path(settings),
        cache_size=int(_number(section, "key_cache_size", DEFAULT_CACHE_SIZE, 1)),
        cache_ttl=_number(section, "key_cache_ttl_seconds", DEFAULT_CACHE_TTL, 0),
    )
