"""The seam through which personal fields are stored: core calls it, the privacy plugin fills it.

Core never writes a personal value itself: it asks the protector to turn values into what is
stored (``protect``), back (``reveal``), and into an exact-match lookup key (``lookup_key``).
The plaintext protector below is what an installation without the privacy plugin uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Protocol


class FieldProtector(Protocol):
    """What stores personal values. It may also have ``async preload(subject_ids)``, which
    readies the keys of several subjects at once before their rows are revealed (a page of
    contacts), and ``async prepare_new_subjects(subject_ids)``, which readies at once what
    many subjects made just now need before their first values are protected (a batch of an
    import; ``protect`` is then called without ``new_subject``). Core calls them when they are
    there. It may also have ``async protect_bytes(subject_id, context, data)`` and
    ``async reveal_bytes(subject_id, context, stored)`` for binary data (a call's recording),
    which :func:`protect_bytes` and :func:`reveal_bytes` call. And ``lookup_keys(kinds)``: a
    picklable callable equal to :meth:`lookup_key` for those kinds, which an import hands to
    its worker process (through the process pipe) to compute blind indexes there."""

    async def protect(
        self,
        subject_id: uuid.UUID,
        table: str,
        row_id: uuid.UUID,
        values: dict[str, str | None],
        *,
        new_subject: bool = False,
    ) -> dict[str, str | None]:
        """The stored form of each column's value for one row of one data subject.
        ``new_subject``: the caller made the subject's id just now, so nothing is stored
        for it yet (a protector need not look for its keys)."""
        ...

    async def reveal(
        self, subject_id: uuid.UUID, table: str, row_id: uuid.UUID, values: dict[str, str | None]
    ) -> dict[str, str | None]:
        """The readable form of stored values (the inverse of :meth:`protect`)."""
        ...

    def lookup_key(self, kind: str, normalized: str) -> str:
        """A deterministic key for exact lookup of a normalised value of one kind."""
        ...


class KeyProvider(Protocol):
    """Holds the key-encryption keys (KEKs) that wrap the per-subject data keys.

    Kith never needs a KEK's bytes: it asks the provider to wrap and unwrap data keys and to
    derive sub-keys (for blind indexes), so a provider may keep its KEKs in a KMS, an HSM or
    Vault. KEKs are named by short ids that Kith stores beside each wrapped key. Every method
    may block on a network call and is therefore async. See ``docs/privacy-keys.md``.
    """

    async def open(self, encrypted_data_exists: bool) -> None:
        """Check the keys before first use (and create the first KEK on a fresh installation);
        raise with a message saying what to do when they cannot be used."""
        ...

    async def current_kek_id(self) -> str:
        """The KEK that new data keys are wrapped under."""
        ...

    async def kek_ids(self) -> list[str]:
        """Every KEK the provider can still unwrap with, current one included."""
        ...

    async def wrap(self, kek_id: str, key: bytes, context: bytes) -> bytes:
        """``key`` encrypted and authenticated under KEK ``kek_id``, bound to ``context``."""
        ...

    async def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        """The key inside ``wrapped``; raises if it does not authenticate for ``context``."""
        ...

    async def derive(self, kek_id: str, purpose: bytes) -> bytes:
        """32 bytes that depend only on KEK ``kek_id`` and ``purpose`` (same input, same
        output), unrelated to anything :meth:`wrap` produces."""
        ...

    async def create_kek(self) -> str:
        """Create a new KEK and make it current (key rotation); older ones stay usable."""
        ...

    async def retire_kek(self, kek_id: str) -> None:
        """Forget a KEK that nothing uses any more. Never the current one."""
        ...


class PlaintextProtector:
    """Stores values as they are. Only for installations without the privacy plugin."""

    async def protect(
        self,
        subject_id: uuid.UUID,
        table: str,
        row_id: uuid.UUID,
        values: dict[str, str | None],
        *,
        new_subject: bool = False,
    ) -> dict[str, str | None]:
        return dict(values)

    async def reveal(
        self, subject_id: uuid.UUID, table: str, row_id: uuid.UUID, values: dict[str, str | None]
    ) -> dict[str, str | None]:
        return dict(values)

    def lookup_key(self, kind: str, normalized: str) -> str:
        return f"{kind}:{normalized}"

    def lookup_keys(self, kinds: Iterable[str]) -> PlainLookup:
        return PlainLookup()


class PlainLookup:
    """:meth:`PlaintextProtector.lookup_key` as a callable a worker process can be given."""

    def __call__(self, kind: str, normalized: str) -> str:
        return f"{kind}:{normalized}"


async def protect_bytes(
    protector: Any, subject_id: uuid.UUID, context: bytes, data: bytes
) -> bytes:
    """``data`` as stored for a data subject: sealed under its key by a protector that seals
    bytes, bound to ``context`` (a table, row id and piece number: sealed data moved elsewhere
    does not open); as it is under the plaintext protector."""
    method = getattr(protector, "protect_bytes", None)
    if method is None:
        return data
    sealed: bytes = await method(subject_id, context, data)
    return sealed


async def reveal_bytes(
    protector: Any, subject_id: uuid.UUID, context: bytes, stored: bytes
) -> bytes | None:
    """The inverse of :func:`protect_bytes`: None when the subject's key was destroyed
    (erasure), so what was stored under it can never be read again."""
    method = getattr(protector, "reveal_bytes", None)
    if method is None:
        return stored
    data: bytes | None = await method(subject_id, context, stored)
    return data
