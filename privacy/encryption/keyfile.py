"""The built-in key provider: key-encryption keys (KEKs) in a file in ``KITH_HOME``.

The file is JSON, private to its owner (mode 0600), and holds every KEK still in use with the
id of the current one. Kith refuses to start when it is readable by anyone else, and refuses to
create a new one over a database that already holds encrypted data (that would silently make
the data unreadable). Rotation adds a KEK and makes it current; older ones stay until ``kith
privacy keys prune`` removes those nothing uses.

A KEK is never used directly: HKDF derives one sub-key for wrapping data keys and one per
derivation purpose (blind indexes), so the two uses are cryptographically separate.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from kith.privacy.encryption.errors import KeyFileError, UnknownKek
from kith.privacy.encryption.primitives import (
    KEY_BYTES,
    NONCE_BYTES,
    AuthenticationFailed,
    aes_gcm,
    hkdf_sha256,
    open_sealed,
    random_key,
    random_nonce,
    seal,
)

FORMAT = "kith-kek-file/1"
_WRAP_INFO = b"kith/kek/v1/wrap-data-keys"
_DERIVE_INFO = b"kith/kek/v1/derive|"
_WRAP_AD = b"kith/data-key/v1|"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))


def _key_bytes(kek_id: str, item: dict[str, Any]) -> bytes:
    """A KEK's bytes, refused unless there are exactly 32 of them: HKDF would stretch a short
    key without complaint, leaving every data key only as strong as the few bytes given."""
    key = _unb64(item["key"])
    if len(key) != KEY_BYTES:
        raise ValueError(
            f"key {kek_id} is {len(key)} bytes long; a key-encryption key must be exactly "
            f"{KEY_BYTES} bytes (256 bits, base64url-encoded)"
        )
    return key


def new_kek_id() -> str:
    """A short, sortable, readable id: the creation date and random hex."""
    return f"kek-{dt.datetime.now(dt.UTC):%Y%m%d}-{secrets.token_hex(4)}"


class _Kek:
    """One KEK with the sub-keys derived from it (derived once, used many times)."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.wrapper: AESGCM = aes_gcm(hkdf_sha256(key, _WRAP_INFO))


def wrap_key(wrapper: AESGCM, kek_id: str, key: bytes, context: bytes) -> bytes:
    """A data key wrapped under a KEK's wrapping key, bound to the KEK's id and ``context``."""
    nonce = random_nonce()
    ad = _WRAP_AD + kek_id.encode() + b"|" + context
    return nonce + seal(wrapper, nonce, key, ad)


class KeyWrapper:
    """:meth:`LocalKeyFile.wrap` under one KEK, picklable (through a process pipe) as its id
    and wrapping key; its ``repr`` shows no key."""

    __slots__ = ("_cipher", "_key", "kek_id")

    def __init__(self, kek_id: str, key: bytes) -> None:
        self.kek_id = kek_id
        self._key = key
        self._cipher = aes_gcm(key)

    def __repr__(self) -> str:
        return f"KeyWrapper({self.kek_id})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (KeyWrapper, (self.kek_id, self._key))

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return wrap_key(self._cipher, self.kek_id, key, context)


class LocalKeyFile:
    """A :class:`kith.protection.KeyProvider` keeping its KEKs in one local file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keks: dict[str, _Kek] = {}
        self._current: str | None = None
        self._signature: tuple[int, int, int] | None = None

    # -- the file ---------------------------------------------------------------------------

    def _check_mode(self, st: os.stat_result) -> None:
        if os.name != "posix":
            return
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"the key file {self.path} can be read or changed by other users "
                f"(mode {stat.filemode(st.st_mode)}); it holds the keys to every personal field. "
                f"Run `chmod 600 {self.path}`, then find out who else could have read it"
            )

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise KeyFileError(f"the key file {self.path} has disappeared") from None
        self._check_mode(st)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            keks = {kek_id: _Kek(_key_bytes(kek_id, item)) for kek_id, item in data["keys"].items()}
            current = str(data["current"])
            if current not in keks:
                raise ValueError(f"the current key {current} is not in the file")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"the key file {self.path} cannot be used: {exc}") from None
        self._keks, self._current = keks, current
        self._signature = (st.st_ino, st.st_mtime_ns, st.st_size)

    def _reload_if_changed(self) -> None:
        """Another process (``kith privacy keys rotate``) may have added a KEK."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        if (st.st_ino, st.st_mtime_ns, st.st_size) != self._signature:
            self._load()

    def _read_raw(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return data

    def _write_raw(self, data: dict[str, Any]) -> None:
        """Replace the file atomically; the new file is 0600 from its first byte."""
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write of the file between processes."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            except ImportError:  # not POSIX: one process at a time is the operator's job
                pass
            yield
        finally:
            os.close(fd)

    def _create(self) -> None:
        kek_id = new_kek_id()
        self._write_raw(
            {
                "format": FORMAT,
                "current": kek_id,
                "keys": {kek_id: {"key": _b64(random_key()), "created_at": _now()}},
            }
        )

    # -- KeyProvider ------------------------------------------------------------------------

    async def open(self, encrypted_data_exists: bool) -> None:
        # KITH_HOME is private to its owner (`kith init` makes it so); create it that way here too.
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            if not self.path.exists():
                if encrypted_data_exists:
                    raise KeyFileError(
                        f"the key file {self.path} is missing, but the database holds encrypted "
                        "personal data. Restore the key file from your key backup (it is kept "
                        "apart from database backups) or set [privacy] key_file in kith.toml to "
                        "where it is. Kith will not create a new key file: the data would stay "
                        "unreadable"
                    )
                self._create()
            self._load()

    def _kek(self, kek_id: str) -> _Kek:
        kek = self._keks.get(kek_id)
        if kek is None:
            self._reload_if_changed()
            kek = self._keks.get(kek_id)
        if kek is None:
            raise UnknownKek(
                f"key-encryption key {kek_id} is not in {self.path}; restore the key file "
                "version that holds it"
            )
        return kek

    def _require_open(self) -> str:
        if self._current is None:
            raise KeyFileError("the key provider was used before it was opened")
        return self._current

    async def current_kek_id(self) -> str:
        self._require_open()
        self._reload_if_changed()
        return self._require_open()

    async def kek_ids(self) -> list[str]:
        self._require_open()
        self._reload_if_changed()
        return sorted(self._keks)

    async def wrap(self, kek_id: str, key: bytes, context: bytes) -> bytes:
        return wrap_key(self._kek(kek_id).wrapper, kek_id, key, context)

    def wrapper(self, kek_id: str) -> KeyWrapper:
        """What wraps data keys under ``kek_id`` in another process (an import's worker): the
        wrapping key derived from the KEK, never the KEK itself (it derives nothing else)."""
        return KeyWrapper(kek_id, hkdf_sha256(self._kek(kek_id).key, _WRAP_INFO))

    async def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        ad = _WRAP_AD + kek_id.encode() + b"|" + context
        try:
            return open_sealed(
                self._kek(kek_id).wrapper, wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], ad
            )
        except AuthenticationFailed:
            raise KeyFileError(
                f"a data key wrapped under {kek_id} does not unwrap: the key table row was "
                "altered or the key file holds a different key under that id"
            ) from None

    async def derive(self, kek_id: str, purpose: bytes) -> bytes:
        return hkdf_sha256(self._kek(kek_id).key, _DERIVE_INFO + purpose)

    async def create_kek(self) -> str:
        with self._locked():
            data = self._read_raw()
            kek_id = new_kek_id()
            data["keys"][kek_id] = {"key": _b64(random_key()), "created_at": _now()}
            data["current"] = kek_id
            self._write_raw(data)
            self._load()
        return kek_id

    async def retire_kek(self, kek_id: str) -> None:
        with self._locked():
            data = self._read_raw()
            if data["current"] == kek_id:
                raise KeyFileError(f"{kek_id} is the current key-encryption key; rotate first")
            if data["keys"].pop(kek_id, None) is not None:
                self._write_raw(data)
            self._load()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
