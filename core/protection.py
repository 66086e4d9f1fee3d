"""The seam through which personal fields are stored: core calls it, the privacy plugin fills it.

Core never writes a personal value itself: it asks the protector to turn values into what is
stored (``protect``), back (``reveal``), and into an exact-match lookup key (``lookup_key``).
The plaintext protector below is what an installation without the privacy plugin uses.
"""

from __future__ import annotations

import uuid
from typing import Protocol


class FieldProtector(Protocol):
    async def protect(
        self, subject_id: uuid.UUID, table: str, row_id: uuid.UUID, values: dict[str, str | None]
    ) -> dict[str, str | None]:
        """The stored form of each column's value for one row of one data subject."""
        ...

    async def reveal(
        self, subject_id: uuid.UUID, table: str, row_id: uuid.UUID, values: dict[str, str | None]
    ) -> dict[str, str | None]:
        """The readable form of stored values (the inverse of :meth:`protect`)."""
        ...

    def lookup_key(self, kind: str, normalized: str) -> str:
        """A deterministic key for exact lookup of a normalised value of one kind."""
        ...


class PlaintextProtector:
    """Stores values as they are. Only for installations without the privacy plugin."""

    async def protect(
        self, subject_id: uuid.UUID, table: str, row_id: uuid.UUID, values: dict[str, str | None]
    ) -> dict[str, str | None]:
        return dict(values)

    async def reveal(
        self, subject_id: uuid.UUID, table: str, row_id: uuid.UUID, values: dict[str, str | None]
    ) -> dict[str, str | None]:
        return dict(values)

    def lookup_key(self, kind: str, normalized: str) -> str:
        return f"{kind}:{normalized}"
