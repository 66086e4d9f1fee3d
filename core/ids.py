"""Row ids: UUIDv7, generated in Python so a row's id is known before it is inserted."""

from __future__ import annotations

import uuid

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    """A new time-ordered UUIDv7."""
    return uuid7()
