"""The field protector core calls for every personal value: encrypt, decrypt, blind index.

It is created when the plugin manager asks for it (before the database is open) and gets its
keys in :meth:`PrivacyProtector.attach` at start-up; using it earlier is an error that says so.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from kith.privacy.encryption.blind_index import BlindIndex, KindKeys
from kith.privacy.encryption.envelope import (
    HEADER_BYTES,
    PREFIX,
    VERSION,
    decode,
    encrypt_value,
    key_id_of,
    open_decoded,
)
from kith.privacy.encryption.errors import (
    EnvelopeError,
    FieldDecryptionError,
    KeyOfAnotherSubject,
    PrivacyError,
)
from kith.privacy.encryption.keys import DataKeyStore, LoadedKey
from kith.privacy.encryption.new_subjects import NewKey, NewSubjectSealer
from kith.privacy.encryption.primitives import (
    NONCE_BYTES,
    AuthenticationFailed,
    open_sealed,
    random_nonce,
    seal,
)

ERASED_MARKER = "[erased]"

# The other subjects whose data keys may hold a subject's values: its legal holds, whose
# records are re-encrypted under the hold's own key when the subject is erased.
KeyOwners = Callable[[uuid.UUID], Awaitable[Iterable[uuid.UUID]]]


_ALLOWED_MAX = 4096
_NO_ROW = uuid.UUID(int=0)


async def _no_other_owners(subject_id: uuid.UUID) -> Iterable[uuid.UUID]:
    return ()


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
        # Set at start-up: where a subject's legal-hold keys are found.
        self.other_key_owners: KeyOwners = _no_other_owners
        # (subject, key owner) pairs already allowed: a hold's key only ever seals that hold's
        # records, and once the hold ends its key is shredded, so an allowance never goes stale.
        self._allowed: set[tuple[uuid.UUID, uuid.UUID]] = set()
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
        self,
        subject_id: uuid.UUID,
        table: str,
        row_id: uuid.UUID,
        values: dict[str, str | None],
        *,
        new_subject: bool = False,
    ) -> dict[str, str | None]:
        # NULL stays NULL: it shows only that there is no value, and needs no key.
        if all(value is None for value in values.values()):
            return dict(values)
        key = await self.keys.for_subject(subject_id, new=new_subject)
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
        foreign = False
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
                foreign = isinstance(key, LoadedKey) and key.subject != subject_id
            if isinstance(key, LoadedKey):
                revealed[column] = open_decoded(key.cipher, raw, table, column, row_id)
                if foreign:
                    # Checked once the value authenticated, so that one copied to another row
                    # or column is reported as that.
                    await self._check_owner(key, subject_id, table, column, row_id)
                    foreign = False
            else:
                revealed[column] = ERASED_MARKER
        return revealed

    async def protect_bytes(self, subject_id: uuid.UUID, context: bytes, data: bytes) -> bytes:
        """``data`` sealed under the subject's data key, bound to ``context`` (where it is
        stored: a table, a row id and a piece number). The envelope's header without the
        field value's padding or base64: binary data is stored as bytes."""
        key = await self.keys.for_subject(subject_id)
        header = bytes([VERSION]) + key.key_id.bytes
        nonce = random_nonce()
        return header + nonce + seal(key.cipher, nonce, data, header + context)

    async def reveal_bytes(
        self, subject_id: uuid.UUID, context: bytes, stored: bytes
    ) -> bytes | None:
        """The inverse of :meth:`protect_bytes`; None when the subject's key was shredded."""
        if len(stored) < HEADER_BYTES + NONCE_BYTES or stored[0] != VERSION:
            raise EnvelopeError("the stored data is not a sealed envelope")
        header = stored[:HEADER_BYTES]
        key = await self.keys.by_id(key_id_of(stored), subject_id)
        if not isinstance(key, LoadedKey):
            return None
        try:
            data = open_sealed(
                key.cipher,
                stored[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES],
                stored[HEADER_BYTES + NONCE_BYTES :],
                header + context,
            )
        except AuthenticationFailed:
            raise FieldDecryptionError(
                "sealed data does not decrypt: it was altered, or moved from elsewhere"
            ) from None
        if key.subject != subject_id:
            await self._check_owner(key, subject_id, "sealed data", "bytes", _NO_ROW)
        return data

    async def _check_owner(
        self, key: LoadedKey, subject_id: uuid.UUID, table: str, column: str, row_id: uuid.UUID
    ) -> None:
        """Refuse a value under another subject's key: the envelope names its key, and a value
        copied from one subject's row to another's must not read as the second subject's."""
        if (subject_id, key.subject) in self._allowed:
            return
        if key.subject in set(await self.other_key_owners(subject_id)):
            if len(self._allowed) >= _ALLOWED_MAX:
                self._allowed.clear()
            self._allowed.add((subject_id, key.subject))
            return
        raise KeyOfAnotherSubject(
            f"{table}.{column} of row {row_id} is encrypted under another subject's data key, "
            f"not under the key of subject {subject_id} or of its legal holds: the value was "
            "moved from another subject's record"
        )

    def lookup_key(self, kind: str, normalized: str) -> str:
        return self.index.lookup(kind, normalized)

    def lookup_keys(self, kinds: Iterable[str]) -> KindKeys:
        return self.index.for_kinds(kinds)

    async def preload(self, subject_ids: Sequence[uuid.UUID]) -> None:
        await self.keys.load_subjects(subject_ids)

    async def prepare_new_subjects(self, subject_ids: Sequence[uuid.UUID]) -> None:
        await self.keys.create_for_new(subject_ids)

    async def new_subject_sealer(self) -> NewSubjectSealer | None:
        """What seals new subjects' values in another process (None when the key provider
        cannot wrap elsewhere, as a remote one cannot)."""
        provider = self.keys.provider
        wrapper = getattr(provider, "wrapper", None)
        if wrapper is None:
            return None
        return NewSubjectSealer(wrapper(await provider.current_kek_id()))

    async def adopt_new_subjects(self, keys: Sequence[NewKey]) -> None:
        await self.keys.adopt_new(keys)


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
