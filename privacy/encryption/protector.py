"""The field protector core calls for every personal value: encrypt, decrypt, blind index.

It is created when the plugin manager asks for it (before the database is open) and gets its
keys in :meth:`PrivacyProtector.attach` at start-up; using it earlier is an error that says so.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from kith.privacy.encryption.blind_index import BlindIndex
from kith.privacy.encryption.envelope import (
    HEADER_BYTES,
    PREFIX,
    decode,
    encrypt_value,
    key_id_of,
    open_decoded,
)
from kith.privacy.encryption.errors import EnvelopeError, PrivacyError
from kith.privacy.encryption.keys import DataKeyStore, LoadedKey

ERASED_MARKER = "[erased]"


class PrivacyProtector:
    """A :class:`kith.protection.FieldProtector` with per-subject keys and blind indexes.

    ``allow_plaintext`` is set while a database created before encryption still holds plaintext
    (until ``kith migrate`` has encrypted it): such values are read as they are. Otherwise a
    value that is not an envelope is an error, so plaintext slipped into the database is noticed.
    """

    def __init__(self) -> None:
        self._keys: DataKeyStore | None = None
        self._index: BlindIndex | None = None
        self.allow_plaintext = False
        # Set by the plugin at start-up: the registry, settings and provider (for commands).
        self.context: dict[str, Any] = {}

    def attach(self, keys: DataKeyStore, index: BlindIndex) -> None:
        self._keys = keys
        self._index = index

    @property
    def ready(self) -> bool:
        return self._keys is not None and self._index is not None

    @property
    def keys(self) -> DataKeyStore:
        if self._keys is None:
            raise PrivacyError(
                "personal data was accessed before the privacy plugin started (its keys are "
                "loaded when Kith starts, after the database is connected)"
            )
        return self._keys

    @property
    def index(self) -> BlindIndex:
        if self._index is None:
            raise PrivacyError("a blind index was needed before the privacy plugin started")
        return self._index

    async def protect(
        self, subject_id: uuid.UUID, table: str, row_id: uuid.UUID, values: dict[str, str | None]
    ) -> dict[str, str | None]:
        # NULL stays NULL: it shows only that there is no value, and needs no key.
        if all(value is None for value in values.values()):
            return dict(values)
        key = await self.keys.for_subject(subject_id)
        return {
            column: None
            if value is None
            else encrypt_value(key.cipher, key.key_id, table, column, row_id, value)
            for column, value in values.items()
        }

    async def reveal(
        self, subject_id: uuid.UUID, table: str, row_id: uuid.UUID, values: dict[str, str | None]
    ) -> dict[str, str | None]:
        store = self.keys
        revealed: dict[str, str | None] = {}
        # A row's fields normally share one key (the same envelope header): looked up once.
        header = b""
        key: object = None
        for column, stored in values.items():
            if stored is None:
                revealed[column] = None
                continue
            if not stored.startswith(PREFIX):
                if self.allow_plaintext:
                    revealed[column] = stored
                    continue
                raise EnvelopeError(
                    f"{table}.{column} of row {row_id} is not encrypted. If this database was "
                    "used without the privacy plugin, run `kith migrate` to encrypt it"
                )
            raw = decode(stored)
            if raw[:HEADER_BYTES] != header:
                header = raw[:HEADER_BYTES]
                key_id = key_id_of(raw)
                # A cache hit needs no await: this is every read's path.
                key = store.cache.get(key_id) or await store.by_id(key_id, subject_id)
            if isinstance(key, LoadedKey):
                revealed[column] = open_decoded(key.cipher, raw, table, column, row_id)
            else:
                revealed[column] = ERASED_MARKER
        return revealed

    def lookup_key(self, kind: str, normalized: str) -> str:
        return self.index.lookup(kind, normalized)

    async def preload(self, subject_ids: Sequence[uuid.UUID]) -> None:
        await self.keys.load_subjects(subject_ids)


def protector_of(kith: Any) -> PrivacyProtector:
    """The running privacy protector of ``kith``; an error that says so when it has none."""
    protector = getattr(kith, "protector", None)
    if not isinstance(protector, PrivacyProtector):
        raise PrivacyError(
            "field encryption is not active: the privacy plugin is disabled or not installed "
            "(check KITH_PLUGINS and KITH_DISABLE_PLUGINS)"
        )
    if not protector.ready:
        raise PrivacyError("the privacy plugin has not started")
    return protector
