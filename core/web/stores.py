"""Where the web UI keeps state that is not data: sessions, sign-in counters, the one-time
set-up code. Files under KITH_HOME on one machine; Redis when ``redis_url`` is set, so that
several processes share them."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from kith.settings import Settings
from litestar.stores.base import StorageObject, Store
from litestar.stores.file import FileStore

STORE_FOLDER = "web-state"
SECRET_FILE = "web-secret"


def web_store(settings: Settings) -> Store:
    """The store of this installation (a new client each call)."""
    if settings.redis_url:
        from litestar.stores.redis import RedisStore

        return RedisStore.with_client(url=settings.redis_url, namespace="kith")
    folder = settings.home / STORE_FOLDER
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return LocalFileStore(folder, create_directories=True)


class LocalFileStore(FileStore):
    """litestar's file store, reading in the event loop instead of a worker thread.

    Every page reads two of these files (the session and its user's session generation), each
    a few hundred bytes on the local disk: handing each read to a worker thread costs many
    times the read itself. Writes, rarer, stay in a worker thread."""

    async def get(self, key: str, renew_for: int | dt.timedelta | None = None) -> bytes | None:
        path = os.fspath(self._path_from_key(key))
        try:
            with open(path, "rb") as handle:
                found = StorageObject.from_bytes(handle.read())
        except FileNotFoundError:
            return None
        if found.expired:
            await self.delete(key)
            return None
        if renew_for and found.expires_at:
            await self.set(key, value=found.data, expires_in=renew_for)
        return found.data


def local_secret(home: Path) -> str:
    """A random secret kept in KITH_HOME (readable by Kith only), made on first use."""
    path = home / SECRET_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Exclusive creation: two processes starting together keep the first one's secret.
        try:
            with open(path, "x", encoding="utf-8") as handle:
                path.chmod(0o600)
                handle.write(secrets.token_urlsafe(32))
        except FileExistsError:
            pass
    return path.read_text(encoding="utf-8").strip()
