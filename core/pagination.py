"""Opaque cursors for keyset pagination: stable while rows are added or removed."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

import msgspec
from kith.errors import InvalidInput

MAX_LIMIT = 200


def encode_cursor(*key: Any) -> str:
    raw = msgspec.json.encode([str(part) for part in key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = msgspec.json.decode(raw, type=list[str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidInput("the cursor is not one this server handed out", field="cursor") from None
    if len(key) != parts:
        raise InvalidInput("the cursor is not one this server handed out", field="cursor")
    return key


def decode_id_cursor(cursor: str) -> uuid.UUID:
    """The row id of a cursor made by ``encode_cursor(row_id)``."""
    try:
        return uuid.UUID(decode_cursor(cursor, 1)[0])
    except ValueError:
        raise InvalidInput("the cursor is not one this server handed out", field="cursor") from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit
