"""The encryption keys of ``[privacy]`` in ``kith.toml``::

    [privacy]
    key_file = "kith-keys.json"      # the KEK file, relative to KITH_HOME (default shown)
    key_cache_size = 10000           # unwrapped data keys kept in memory (LRU)
    key_cache_ttl_seconds = 60       # how long one stays cached (at most 3600): bounds how
                                     # long another running process can still read a subject
                                     # shredded here

The other keys of ``[privacy]`` belong to the rights and requests plugins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
from kith.settings import Settings

SECTION = "privacy"
DEFAULT_KEY_FILE = "kith-keys.json"
DEFAULT_CACHE_SIZE = 10_000
DEFAULT_CACHE_TTL = 60.0
# A shredded subject stays readable in another process for up to this long: an hour at most.
MAX_CACHE_TTL = 3600.0


class EncryptionSettings(msgspec.Struct, frozen=True, kw_only=True):
    key_file: str = DEFAULT_KEY_FILE
    key_cache_size: Annotated[int, msgspec.Meta(ge=1)] = DEFAULT_CACHE_SIZE
    key_cache_ttl_seconds: Annotated[float, msgspec.Meta(ge=0, le=MAX_CACHE_TTL)] = (
        DEFAULT_CACHE_TTL
    )


def encryption_settings(settings: Settings) -> EncryptionSettings:
    return settings.parsed(SECTION, EncryptionSettings)


def key_file_path(settings: Settings) -> Path:
    """``[privacy] key_file`` (relative to KITH_HOME), else the default."""
    path = Path(encryption_settings(settings).key_file or DEFAULT_KEY_FILE).expanduser()
    return path if path.is_absolute() else settings.home / path


def key_file_beside_database(settings: Settings, key_file: Path) -> str | None:
    """A warning when the key file sits in the SQLite database's folder, else None.

    One copy of that folder (a backup, a synced directory) then holds both the ciphertext and
    the keys that open it, and crypto-shredding no longer reaches the backups.
    """
    if settings.database_kind != "sqlite":
        return None
    database = settings.sqlite_path
    if key_file.resolve().parent != database.resolve().parent:
        return None
    return (
        f"the key file {key_file} is in the same folder as the database {database}: one backup "
        "of that folder holds the keys with the data they protect, so anyone with the backup "
        "can read every personal field and erasure does not reach it. Move the key file "
        "elsewhere (set [privacy] key_file to its new place) and back it up on its own"
    )
