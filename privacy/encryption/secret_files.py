"""Secret files of the privacy workflow in ``KITH_HOME``: created once, readable by the owner only.

Two processes starting at once (``kith serve`` and ``kith worker``) must end up with the same
key, so a file is created with ``O_EXCL`` from a fully written temporary file: whoever links it
first wins and the other reads the winner's key.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

FILE_MODE = 0o600


class KeyFileError(RuntimeError):
    """A key file exists but cannot be used (wrong permissions, unreadable)."""


def _check_mode(path: Path) -> None:
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
        )


def read_existing(path: Path) -> bytes | None:
    """The bytes of the key file at ``path``, or None when there is none; never creates it."""
    if not path.exists():
        return None
    _check_mode(path)
    return path.read_bytes()


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes of the key file at ``path``, writing ``make()`` there (mode 0600) if absent."""
    if path.exists():
        _check_mode(path)
        return path.read_bytes()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(make())
            handle.flush()
            os.fsync(handle.fileno())
        # link() refuses to overwrite: exactly one process's key becomes the key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _check_mode(path)
    return path.read_bytes()
