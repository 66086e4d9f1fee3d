"""The data keys and first values of new subjects, made in another process: an import's worker
encrypts a batch's names and emails while the writer stores the previous batch.

The worker is given a :class:`NewSubjectSealer` through the process pipe: the current KEK's
wrapping key (derived from the KEK, never the KEK itself) and nothing else. For each new
contact it makes a random data key, wraps it as :meth:`DataKeyStore.create_for_new` would, and
seals values under it; the keys come back through the pipe with the rows. The writer stores the
keys of the rows it writes (:meth:`DataKeyStore.adopt_new`) and drops the others (a duplicate),
so what is stored is exactly what a write in one process stores."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from kith.ids import new_id
from kith.privacy.encryption.envelope import encrypt_value
from kith.privacy.encryption.keyfile import KeyWrapper
from kith.privacy.encryption.keys import encode_wrapped, wrap_context
from kith.privacy.encryption.primitives import aes_gcm, random_key


@dataclass(frozen=True)
class NewKey:
    """A data key made for a new subject in another process, wrapped and in the clear (it
    travels back to the writer through the process pipe only; its ``repr`` hides it)."""

    key_id: uuid.UUID
    subject: uuid.UUID
    kek_id: str
    wrapped: str
    raw: bytes = field(repr=False)


class NewSubjectSealer:
    """Makes new subjects' data keys and seals their values (picklable: its wrapper is)."""

    def __init__(self, wrapper: KeyWrapper) -> None:
        self.wrapper = wrapper
        # The cipher of the key last used: a subject's values are sealed one after the other.
        self._last: tuple[uuid.UUID, AESGCM] | None = None

    def __repr__(self) -> str:
        return f"NewSubjectSealer({self.wrapper!r})"

    def __getstate__(self) -> KeyWrapper:
        return self.wrapper

    def __setstate__(self, wrapper: KeyWrapper) -> None:
        self.wrapper = wrapper
        self._last = None

    def new_key(self, subject: uuid.UUID) -> NewKey:
        key_id = new_id()
        raw = random_key()
        wrapped = self.wrapper.wrap(raw, wrap_context(subject, key_id))
        return NewKey(key_id, subject, self.wrapper.kek_id, encode_wrapped(wrapped), raw)

    def seal(
        self, key: NewKey, table: str, column: str, row_id: uuid.UUID, value: str | None
    ) -> str | None:
        """The stored form of ``value`` (None stays None), as ``protect`` stores it."""
        if value is None:
            return None
        if self._last is None or self._last[0] != key.key_id:
            self._last = (key.key_id, aes_gcm(key.raw))
        return encrypt_value(self._last[1], key.key_id, table, column, row_id, value)
