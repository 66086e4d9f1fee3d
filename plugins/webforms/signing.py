"""Signed tokens of the web forms: the fill-time token a form carries and the double opt-in
link. Both are HMAC-SHA256 under a key of the installation kept in ``KITH_HOME``
(``webforms.key``, mode 0600), so they survive restarts and work across processes."""

from __future__ import annotations

import base64
import os
import time
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

KEY_FILE = "webforms.key"
_KEYS: dict[Path, bytes] = {}


def signing_key(home: Path) -> bytes:
    """The installation's key, created on first use."""
    path = home / KEY_FILE
    cached = _KEYS.get(path)
    if cached is not None:
        return cached
    home.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
    else:
        key = os.urandom(32)
        with os.fdopen(descriptor, "wb") as file:
            file.write(key)
    _KEYS[path] = key
    return key


def _mac(key: bytes, message: bytes) -> bytes:
    signer = hmac.HMAC(key, hashes.SHA256())
    signer.update(message)
    return signer.finalize()


def _verify(key: bytes, message: bytes, signature: bytes) -> bool:
    checker = hmac.HMAC(key, hashes.SHA256())
    checker.update(message)
    try:
        checker.verify(signature)
    except InvalidSignature:
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fill_token(key: bytes, form_id: str, now: float | None = None) -> str:
    """A token saying when the form was shown: ``<milliseconds>.<signature>``."""
    issued = int((time.time() if now is None else now) * 1000)
    return f"{issued}.{_b64(_mac(key, f'fill:{form_id}:{issued}'.encode()))}"


def fill_age(key: bytes, form_id: str, token: str, now: float | None = None) -> float | None:
    """Seconds since the token was issued for this form; None when it is not a valid one."""
    issued_text, _, signature = token.partition(".")
    if not issued_text.isdigit() or not signature:
        return None
    try:
        raw = _unb64(signature)
    except ValueError:
        return None
    if not _verify(key, f"fill:{form_id}:{issued_text}".encode(), raw):
        return None
    return (time.time() if now is None else now) - int(issued_text) / 1000


def opt_in_token(key: bytes, opt_in_id: uuid.UUID) -> str:
    return f"{opt_in_id.hex}.{_b64(_mac(key, f'opt-in:{opt_in_id.hex}'.encode()))}"


def read_opt_in_token(key: bytes, token: str) -> uuid.UUID | None:
    ident, _, signature = token.partition(".")
    try:
        opt_in_id = uuid.UUID(hex=ident)
        raw = _unb64(signature)
    except ValueError:
        return None
    if not _verify(key, f"opt-in:{opt_in_id.hex}".encode(), raw):
        return None
    return opt_in_id
