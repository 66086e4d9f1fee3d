"""Thin wrappers over the ``cryptography`` primitives Kith composes: AES-256-GCM, HKDF-SHA256
and HMAC-SHA256.

Every other privacy module goes through these three, so the known-answer tests against the
published vectors (NIST GCM, RFC 5869, RFC 4231) cover exactly what Kith runs.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits: the size GCM is specified for (random nonces, NIST SP 800-38D)
TAG_BYTES = 16


class AuthenticationFailed(Exception):
    """A ciphertext did not authenticate: altered, truncated, or opened with the wrong key or
    associated data."""


def random_key() -> bytes:
    return os.urandom(KEY_BYTES)


def random_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def aes_gcm(key: bytes) -> AESGCM:
    """An AES-GCM cipher object for ``key`` (callers cache it: building one costs more than
    sealing a short field)."""
    if len(key) not in (16, 24, 32):
        raise ValueError(f"AES keys are 16, 24 or 32 bytes, not {len(key)}")
    return AESGCM(key)


def seal(cipher: AESGCM, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """``ciphertext ‖ tag`` of ``plaintext`` under ``nonce``, authenticating ``associated_data``."""
    return cipher.encrypt(nonce, plaintext, associated_data)


def open_sealed(cipher: AESGCM, nonce: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """The plaintext of ``sealed``; raises :class:`AuthenticationFailed` if it does not verify."""
    try:
        return cipher.decrypt(nonce, sealed, associated_data)
    except InvalidTag:
        raise AuthenticationFailed("ciphertext does not authenticate") from None


def hkdf_sha256(
    ikm: bytes, info: bytes, length: int = KEY_BYTES, salt: bytes | None = None
) -> bytes:
    """RFC 5869 HKDF with SHA-256: ``length`` bytes of key material bound to ``info``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """RFC 2104 HMAC with SHA-256 (full 32-byte output)."""
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(message)
    return mac.finalize()
