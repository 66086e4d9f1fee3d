"""The encrypted envelope of one field value, stored as text in the field's own column.

Binary layout (version 1)::

    version (1 byte) ‖ data key id (16 bytes, a UUID) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16)

stored as ``$k1$`` followed by the layout in unpadded base64url. The associated data binds the
header (version and key id) and the location: table, column and row id. A ciphertext copied to
another row or column therefore fails to authenticate, as does one whose key id was swapped.

The plaintext is the UTF-8 value padded (ISO/IEC 7816-4: ``0x80`` then zeros) to a multiple of
16 bytes, so the stored length tells a reader the value's size to within 16 bytes rather than
exactly (a short name and a long one look alike more often).
"""

from __future__ import annotations

import binascii
import functools
import uuid
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from kith.privacy.encryption.errors import EnvelopeError, FieldDecryptionError
from kith.privacy.encryption.primitives import (
    NONCE_BYTES,
    TAG_BYTES,
    AuthenticationFailed,
    open_sealed,
    random_nonce,
    seal,
)

VERSION = 1
PREFIX = "$k1$"
PAD_BLOCK = 16
_KEY_ID_BYTES = 16
HEADER_BYTES = 1 + _KEY_ID_BYTES
_MIN_BYTES = HEADER_BYTES + NONCE_BYTES + TAG_BYTES + PAD_BLOCK
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_VALUES = bytes(_ALPHABET.index(i) if i in _ALPHABET else 0 for i in range(256))
# Low bits of the last character that carry no data, by the length of the last group.
_SPARE_BITS = {2: 0b1111, 3: 0b11}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PADDING = (b"", b"", b"==", b"=")  # by the length of the last group
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


class Envelope(NamedTuple):
    # A NamedTuple, not a frozen dataclass: building one is on every read's path (5x cheaper).
    version: int
    key_id: uuid.UUID
    nonce: bytes
    sealed: bytes
    # Version and key id as stored: the start of the associated data.
    header: bytes


@functools.lru_cache(maxsize=4096)
def _key_id(raw: bytes) -> uuid.UUID:
    # Building a UUID costs more than decrypting a short field; a few thousand keys are hot.
    return uuid.UUID(bytes=raw)


def is_envelope(stored: str | None) -> bool:
    """Whether a stored value looks encrypted (the cheap test the plaintext scan uses)."""
    return stored is not None and stored.startswith(PREFIX)


def associated_data(header: bytes, table: str, column: str, row_id: uuid.UUID) -> bytes:
    return header + _location(table, column) + row_id.bytes


@functools.lru_cache(maxsize=1024)
def _location(table: str, column: str) -> bytes:
    # NUL separates the names: neither a table nor a column name can contain it.
    return b"|%s\x00%s\x00" % (table.encode(), column.encode())


def pad(data: bytes) -> bytes:
    data += b"\x80"
    return data + b"\x00" * (-len(data) % PAD_BLOCK)


def unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise EnvelopeError("the decrypted value has no valid padding")
    return stripped[:-1]


def encrypt_value(
    cipher: AESGCM, key_id: uuid.UUID, table: str, column: str, row_id: uuid.UUID, value: str
) -> str:
    """The stored form of ``value`` for ``table.column`` of row ``row_id``."""
    header = bytes([VERSION]) + key_id.bytes
    nonce = random_nonce()
    sealed = seal(
        cipher, nonce, pad(value.encode("utf-8")), associated_data(header, table, column, row_id)
    )
    encoded = binascii.b2a_base64(header + nonce + sealed, newline=False)
    return PREFIX + encoded.translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def decode(stored: str) -> bytes:
    """The binary envelope inside a stored value, checked; raises :class:`EnvelopeError` when
    it is not one.

    On every read's path, so it is written for speed: validation by ``bytes.translate`` and a
    table lookup instead of a pattern and a re-encoding."""
    if not stored.startswith(PREFIX):
        raise EnvelopeError("the value is not an encrypted envelope")
    try:
        data = stored[len(PREFIX) :].encode("ascii")
    except UnicodeEncodeError:
        raise EnvelopeError("the envelope is not valid base64url") from None
    rest = len(data) % 4
    if rest == 1 or data.translate(None, _ALPHABET):
        raise EnvelopeError("the envelope is not valid base64url")
    # Only the canonical encoding is accepted: the spare low bits of the last character must be
    # zero, so that no change to the stored text decodes to the same bytes.
    if rest and _VALUES[data[-1]] & _SPARE_BITS[rest]:
        raise EnvelopeError("the envelope is not canonical base64url")
    raw = binascii.a2b_base64(data.translate(_TO_STANDARD) + _PADDING[rest])
    if len(raw) < _MIN_BYTES:
        raise EnvelopeError("the envelope is truncated")
    if raw[0] != VERSION:
        raise EnvelopeError(f"envelope format version {raw[0]} is not supported")
    return raw


# Whole base64 groups of the header: 15 bytes (the version and 14 of the key id's 16) give 20
# characters that depend on nothing else; the next group mixes in the nonce.
_PREFIX_BYTES = 15


def stored_prefix(key_id: uuid.UUID) -> str:
    """The text every stored envelope under data key ``key_id`` starts with (others may share
    it: one that matches still needs :func:`key_id_of` to tell)."""
    head = binascii.b2a_base64(bytes([VERSION]) + key_id.bytes[: _PREFIX_BYTES - 1], newline=False)
    return PREFIX + head.translate(_TO_URLSAFE).decode("ascii")


def key_id_of(raw: bytes) -> uuid.UUID:
    """The data key id in a decoded envelope."""
    return _key_id(raw[1:HEADER_BYTES])


def parse(stored: str) -> Envelope:
    """The parts of a stored envelope; raises :class:`EnvelopeError` when it is not one."""
    raw = decode(stored)
    return Envelope(
        raw[0],
        key_id_of(raw),
        raw[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES],
        raw[HEADER_BYTES + NONCE_BYTES :],
        raw[:HEADER_BYTES],
    )


def open_decoded(cipher: AESGCM, raw: bytes, table: str, column: str, row_id: uuid.UUID) -> str:
    """The value inside a decoded envelope (what :func:`decode` returns): the read path's
    shortcut past building an :class:`Envelope`."""
    return _open(
        cipher,
        raw[:HEADER_BYTES],
        raw[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES],
        raw[HEADER_BYTES + NONCE_BYTES :],
        table,
        column,
        row_id,
    )


def decrypt_envelope(
    cipher: AESGCM, envelope: Envelope, table: str, column: str, row_id: uuid.UUID
) -> str:
    """The value inside ``envelope``; raises :class:`FieldDecryptionError` naming the place."""
    return _open(cipher, envelope.header, envelope.nonce, envelope.sealed, table, column, row_id)


def _open(
    cipher: AESGCM,
    header: bytes,
    nonce: bytes,
    sealed: bytes,
    table: str,
    column: str,
    row_id: uuid.UUID,
) -> str:
    try:
        padded = open_sealed(cipher, nonce, sealed, associated_data(header, table, column, row_id))
    except AuthenticationFailed:
        raise FieldDecryptionError(
            f"{table}.{column} of row {row_id} does not decrypt: the stored value was altered, "
            "or copied from another row or column"
        ) from None
    return unpad(padded).decode("utf-8")
