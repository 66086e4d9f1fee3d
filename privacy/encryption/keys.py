"""Per-subject data keys: created on first use, wrapped by the key provider, cached in memory.

Each data subject (contact) has one random AES-256 data key. Its row holds it wrapped under a
key-encryption key (KEK) and bound to the subject and key id, so a wrapped key copied to another
row does not unwrap. Unwrapped keys are kept in a bounded LRU cache whose entries also expire
after ``ttl`` seconds: that bounds how long another process that still holds a key in memory can
read a subject shredded elsewhere.

Keys created inside a database transaction are cached for that transaction only until it has
committed: a rolled-back transaction takes the key row with it, and a process-wide cache entry
would then encrypt later data under a key that no longer exists.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from kith.events import utcnow
from kith.ids import new_id
from kith.privacy.encryption.errors import MissingDataKey, SubjectErased
from kith.privacy.encryption.primitives import aes_gcm, random_key
from kith.privacy.encryption.settings import DEFAULT_CACHE_SIZE, DEFAULT_CACHE_TTL
from kith.privacy.encryption.tables import DataKey, Tombstone
from kith.protection import KeyProvider
from kith.storage.bulk import insert_rows
from kith.storage.prepared import Prepared, row_chunks
from piccolo.query import Insert

if TYPE_CHECKING:
    from kith.privacy.encryption.new_subjects import NewKey


@dataclass(slots=True)
class LoadedKey:
    """An unwrapped data key, ready to encrypt and decrypt."""

    key_id: uuid.UUID
    subject: uuid.UUID
    cipher: AESGCM


# Every read of a subject whose key is not in memory (or has aged out of it) loads it.
_KEY_BY_ID = Prepared(lambda key_id: DataKey.select().where(DataKey.id == key_id))
_KEY_OF = Prepared(lambda subject: DataKey.select().where(DataKey.subject == subject))
_ERASED = Prepared(lambda subject: Tombstone.exists().where(Tombstone.subject == subject))
# A new key, or the one another writer stored first for the same subject: the no-op update
# makes the statement return the row that is there either way, so a create is one round trip.
_STORE_KEY = Prepared(
    lambda id, subject, kek_id, wrapped, created_at: (
        DataKey.insert(
            DataKey(id=id, subject=subject, kek_id=kek_id, wrapped=wrapped, created_at=created_at)
        )
        .on_conflict(target=DataKey.subject, action="DO UPDATE", values=[DataKey.subject])
        .returning(*DataKey.all_columns())
    )
)


# New subjects' keys, many rows a statement (a batch of an import); a shape per length is kept.
# piccolo's ``Insert`` rather than ``DataKey.insert``: without ``RETURNING id``, whose rows
# nobody reads and which cost SQLite a step per row.
_NEW_KEYS_ROWS = 100
_STORE_NEW_KEYS = Prepared(
    lambda id, subject, kek_id, wrapped, created_at: Insert(
        DataKey,
        *(
            DataKey(
                id=id[i],
                subject=subject[i],
                kek_id=kek_id[i],
                wrapped=wrapped[i],
                created_at=created_at[i],
            )
            for i in range(len(id))
        ),
    ),
    max_shapes=16,
)


class _Erased:
    """Cache marker for a key id that was shredded (permanent, so it never expires)."""


ERASED: Final = _Erased()


def wrap_context(subject: uuid.UUID, key_id: uuid.UUID) -> bytes:
    """What a wrapped key is bound to: its own id and its subject."""
    return b"kith/data-key|subject=%s|key=%s" % (subject.bytes, key_id.bytes)


def encode_wrapped(wrapped: bytes) -> str:
    return base64.urlsafe_b64encode(wrapped).decode("ascii")


def decode_wrapped(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))


class KeyCache:
    """A bounded LRU of unwrapped keys by key id, with expiry, and a subject → key id index."""

    def __init__(self, capacity: int = DEFAULT_CACHE_SIZE, ttl: float = DEFAULT_CACHE_TTL) -> None:
        if capacity < 1:
            raise ValueError("the key cache needs room for at least one key")
        self.capacity = capacity
        self.ttl = ttl
        self._entries: OrderedDict[uuid.UUID, tuple[float, LoadedKey | _Erased]] = OrderedDict()
        self._by_subject: dict[uuid.UUID, uuid.UUID] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key_id: uuid.UUID) -> LoadedKey | _Erased | None:
        item = self._entries.get(key_id)
        if item is None:
            return None
        stamp, value = item
        if value is not ERASED and time.monotonic() - stamp > self.ttl:
            self._drop(key_id)
            return None
        self._entries.move_to_end(key_id)
        return value

    def for_subject(self, subject: uuid.UUID) -> LoadedKey | None:
        key_id = self._by_subject.get(subject)
        if key_id is None:
            return None
        value = self.get(key_id)
        return value if isinstance(value, LoadedKey) else None

    def put(self, key_id: uuid.UUID, value: LoadedKey | _Erased) -> None:
        self._entries[key_id] = (time.monotonic(), value)
        self._entries.move_to_end(key_id)
        if isinstance(value, LoadedKey):
            self._by_subject[value.subject] = key_id
        while len(self._entries) > self.capacity:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def _drop(self, key_id: uuid.UUID) -> None:
        _, value = self._entries.pop(key_id)
        if isinstance(value, LoadedKey) and self._by_subject.get(value.subject) == key_id:
            del self._by_subject[value.subject]

    def mark_erased(self, subject: uuid.UUID, key_id: uuid.UUID | None) -> None:
        old = self._by_subject.pop(subject, None)
        if old is not None and old != key_id:
            self._entries.pop(old, None)
        if key_id is not None:
            self.put(key_id, ERASED)

    def clear(self) -> None:
        self._entries.clear()
        self._by_subject.clear()


class DataKeyStore:
    """Finds, creates and unwraps data keys. One per process, shared by every request."""

    def __init__(self, provider: KeyProvider, cache: KeyCache | None = None) -> None:
        self.provider = provider
        self.cache = cache or KeyCache()
        # Keys created by transactions that have not finished: id(transaction) → (transaction,
        # its keys by key id and by subject). piccolo's transactions cannot be weakly referenced.
        self._pending: dict[int, tuple[Any, dict[uuid.UUID, LoadedKey]]] = {}

    # -- transactions -----------------------------------------------------------------------

    @staticmethod
    def _transaction() -> Any:
        return DataKey._meta.db.current_transaction.get()

    def _settle(self) -> None:
        """Move keys of committed transactions into the cache; forget rolled-back ones."""
        for marker, (transaction, keys) in list(self._pending.items()):
            if getattr(transaction, "_committed", False):
                for key_id, loaded in keys.items():
                    if key_id == loaded.key_id:
                        self.cache.put(key_id, loaded)
            elif not getattr(transaction, "_rolled_back", False):
                continue
            del self._pending[marker]

    def _pending_get(self, transaction: Any, key: uuid.UUID) -> LoadedKey | None:
        if self._pending:
            self._settle()
        if transaction is None or id(transaction) not in self._pending:
            return None
        return self._pending[id(transaction)][1].get(key)

    def _remember(self, transaction: Any, loaded: LoadedKey, created: bool) -> None:
        if created and transaction is not None:
            keys = self._pending.setdefault(id(transaction), (transaction, {}))[1]
            keys[loaded.key_id] = loaded
            keys[loaded.subject] = loaded
        else:
            self.cache.put(loaded.key_id, loaded)

    # -- keys -------------------------------------------------------------------------------

    async def _unwrap_row(self, row: dict[str, Any]) -> LoadedKey:
        key_id, subject = row["id"], row["subject"]
        raw = await self.provider.unwrap(
            row["kek_id"], decode_wrapped(row["wrapped"]), wrap_context(subject, key_id)
        )
        return LoadedKey(key_id=key_id, subject=subject, cipher=aes_gcm(raw))

    async def for_subject(self, subject: uuid.UUID, *, new: bool = False) -> LoadedKey:
        """The subject's data key, created (inside the current transaction, if any) when it has
        none. Raises :class:`SubjectErased` when the subject's key was destroyed.

        ``new``: the subject was made by the caller just now (a fresh id), so it has neither a
        key nor a tombstone yet and looking for them is skipped."""
        transaction = self._transaction()
        if new:
            # A plugin's check of the new contact may have stored something of it already
            # (the reason for overriding a suppression), making its key in this transaction.
            return self._pending_get(transaction, subject) or await self._create_new(
                transaction, subject
            )
        # The cache first: a key still pending in a transaction is never in it.
        loaded = self.cache.for_subject(subject)
        if loaded is not None:
            return loaded
        loaded = self._pending_get(transaction, subject)
        if loaded is not None:
            return loaded
        row = await _KEY_OF.first(subject=subject)
        if row is not None:
            loaded = await self._unwrap_row(row)
            self._remember(transaction, loaded, created=False)
            return loaded
        if await _ERASED.run(subject=subject):
            raise SubjectErased(
                f"contact {subject} was erased (its data key was destroyed); "
                "new personal data cannot be stored for it",
                contact_id=str(subject),
            )
        return await self._create(transaction, subject)

    async def _create(self, transaction: Any, subject: uuid.UUID) -> LoadedKey:
        key_id = new_id()
        raw = random_key()
        kek_id = await self.provider.current_kek_id()
        wrapped = await self.provider.wrap(kek_id, raw, wrap_context(subject, key_id))
        # Two first writes for one subject may race; the unique subject column keeps one key
        # and the loser gets the winner's.
        row = await _STORE_KEY.first(
            id=key_id,
            subject=subject,
            kek_id=kek_id,
            wrapped=encode_wrapped(wrapped),
            created_at=utcnow(),
        )
        if row is None:  # pragma: no cover - the insert or the other writer put it there
            raise MissingDataKey(f"the data key of contact {subject} could not be stored")
        if row["id"] != key_id:
            loaded = await self._unwrap_row(row)
            self._remember(transaction, loaded, created=False)
            return loaded
        loaded = LoadedKey(key_id=key_id, subject=subject, cipher=aes_gcm(raw))
        self._remember(transaction, loaded, created=True)
        return loaded

    async def _create_new(self, transaction: Any, subject: uuid.UUID) -> LoadedKey:
        """The key of a subject made just now: no other writer can store one for it, so its
        insert needs no answer and waits for the commit with the transaction's other deferred
        statements (on PostgreSQL one statement with the rows it protects)."""
        key_id = new_id()
        raw = random_key()
        kek_id = await self.provider.current_kek_id()
        wrapped = await self.provider.wrap(kek_id, raw, wrap_context(subject, key_id))
        await _STORE_NEW_KEYS.defer(
            id=[key_id],
            subject=[subject],
            kek_id=[kek_id],
            wrapped=[encode_wrapped(wrapped)],
            created_at=[utcnow()],
        )
        loaded = LoadedKey(key_id=key_id, subject=subject, cipher=aes_gcm(raw))
        self._remember(transaction, loaded, created=True)
        return loaded

    async def create_for_new(self, subjects: Sequence[uuid.UUID]) -> None:
        """Create the data keys of subjects whose ids were made just now (so they have none),
        stored with multi-row statements: a batch of an import pays one round trip per
        hundred keys, not one per key. Later ``for_subject`` calls find them in memory."""
        transaction = self._transaction()
        kek_id = await self.provider.current_kek_id()
        now = utcnow()
        created: list[LoadedKey] = []
        columns: dict[str, list[Any]] = {
            name: [] for name in ("id", "subject", "kek_id", "wrapped", "created_at")
        }
        for subject in subjects:
            key_id = new_id()
            raw = random_key()
            wrapped = await self.provider.wrap(kek_id, raw, wrap_context(subject, key_id))
            created.append(LoadedKey(key_id=key_id, subject=subject, cipher=aes_gcm(raw)))
            for name, value in (
                ("id", key_id),
                ("subject", subject),
                ("kek_id", kek_id),
                ("wrapped", encode_wrapped(wrapped)),
                ("created_at", now),
            ):
                columns[name].append(value)
        for part in row_chunks(len(created), _NEW_KEYS_ROWS):
            await _STORE_NEW_KEYS.run(**{name: values[part] for name, values in columns.items()})
        # Known once stored: a failed insert leaves nothing in memory that is not in the table.
        for loaded in created:
            self._remember(transaction, loaded, created=True)

    async def adopt_new(self, keys: Sequence[NewKey]) -> None:
        """Store the data keys another process made for subjects whose ids were made just now
        (see :mod:`kith.privacy.encryption.new_subjects`), as :meth:`create_for_new` stores
        its own."""
        transaction = self._transaction()
        now = utcnow()
        await insert_rows(
            DataKey,
            ("id", "subject", "kek_id", "wrapped", "created_at"),
            [(key.key_id, key.subject, key.kek_id, key.wrapped, now) for key in keys],
        )
        for key in keys:
            loaded = LoadedKey(key_id=key.key_id, subject=key.subject, cipher=aes_gcm(key.raw))
            self._remember(transaction, loaded, created=True)

    async def load_subjects(self, subjects: Iterable[uuid.UUID]) -> None:
        """Bring the data keys of these subjects into memory with one query: a page of
        contacts about to be read costs one round trip for its keys, not one each."""
        missing = [s for s in dict.fromkeys(subjects) if self.cache.for_subject(s) is None]
        if not missing:
            return
        transaction = self._transaction()
        for row in await DataKey.select().where(DataKey.subject.is_in(missing)).run():
            self._remember(transaction, await self._unwrap_row(row), created=False)

    async def by_id(
        self, key_id: uuid.UUID, subject: uuid.UUID | None = None
    ) -> LoadedKey | _Erased:
        """The data key with this id, or :data:`ERASED` when it was shredded (or, when its row
        is gone, when ``subject`` was shredded: a restored database may predate the tombstone
        of a key destroyed later)."""
        found = self.cache.get(key_id)
        if found is not None:
            return found
        transaction = self._transaction()
        found = self._pending_get(transaction, key_id)
        if found is not None:
            return found
        row = await _KEY_BY_ID.first(key_id=key_id)
        if row is not None:
            loaded = await self._unwrap_row(row)
            self._remember(transaction, loaded, created=False)
            return loaded
        shredded = Tombstone.data_key_id == key_id
        if subject is not None:
            shredded = shredded | (Tombstone.subject == subject)
        if await Tombstone.exists().where(shredded):
            self.cache.put(key_id, ERASED)
            return ERASED
        raise MissingDataKey(
            f"data key {key_id} is not in the key table and was never shredded: was the key "
            "table restored from a backup older than the data? Restore a newer key-table backup"
        )

    def forget(self, subject: uuid.UUID, key_id: uuid.UUID | None) -> None:
        """Drop a shredded subject's key from memory at once (this process)."""
        self.cache.mark_erased(subject, key_id)
        for _, keys in list(self._pending.values()):
            keys.pop(subject, None)
            if key_id is not None:
                keys.pop(key_id, None)

    @staticmethod
    async def encrypted_data_exists() -> bool:
        """Whether any data key exists: if so, readable encrypted personal data exists."""
        return bool(await DataKey.exists().run())
