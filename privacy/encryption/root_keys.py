"""Root keys: random keys that keyed hashes derive from, stored wrapped under a KEK.

The blind indexes, the suppression list and the keyed hashes of subject requests are HMACs that
must keep matching for as long as their rows live, which is longer than any one key-encryption
key: a KEK is rotated and then pruned. So each purpose has a random 256-bit root of its own,
stored only wrapped (AES-256-GCM, bound to its purpose and id) under the current KEK and
re-wrapped by ``kith privacy keys rotate`` like a data key. Nothing is ever derived from a KEK
directly, so pruning an old KEK cannot make a hash stop matching.

Installations from before root keys derived these roots from a KEK; :func:`adopt` stores such a
derived root as a root key (the same bytes, so every existing hash keeps matching), after which
that KEK is no longer needed for it.
"""

from __future__ import annotations

import uuid
from typing import Any

from kith.events import utcnow
from kith.ids import new_id
from kith.privacy.encryption.keys import decode_wrapped, encode_wrapped
from kith.privacy.encryption.primitives import random_key
from kith.privacy.encryption.tables import RootKey
from kith.protection import KeyProvider

BLIND_INDEX = "blind_index"
SUPPRESSION = "suppression"
SUBJECT_REQUEST = "subject_request"


def root_context(purpose: str, key_id: uuid.UUID) -> bytes:
    """What a wrapped root key is bound to: its purpose and its id."""
    return b"kith/root-key|purpose=%s|key=%s" % (purpose.encode("ascii"), key_id.bytes)


async def create(provider: KeyProvider, purpose: str, raw: bytes | None = None) -> uuid.UUID:
    """Store a new root key for ``purpose`` (random unless ``raw`` is given); its id."""
    key_id = new_id()
    kek_id = await provider.current_kek_id()
    secret = raw if raw is not None else random_key()
    wrapped = await provider.wrap(kek_id, secret, root_context(purpose, key_id))
    await RootKey.insert(
        RootKey(
            id=key_id,
            purpose=purpose,
            kek_id=kek_id,
            wrapped=encode_wrapped(wrapped),
            created_at=utcnow(),
        )
    ).run()
    return key_id


async def _unwrap(provider: KeyProvider, row: dict[str, Any]) -> bytes:
    return await provider.unwrap(
        row["kek_id"], decode_wrapped(row["wrapped"]), root_context(row["purpose"], row["id"])
    )


async def load(provider: KeyProvider, key_id: uuid.UUID) -> bytes | None:
    """The root key with this id, unwrapped; None when there is none."""
    row = await RootKey.select().where(RootKey.id == key_id).first()
    return None if row is None else await _unwrap(provider, row)


async def all_of(provider: KeyProvider, purpose: str) -> list[tuple[uuid.UUID, bytes]]:
    """Every root key of ``purpose``, oldest first (ids are time-ordered)."""
    rows = await RootKey.select().where(RootKey.purpose == purpose).order_by(RootKey.id).run()
    return [(row["id"], await _unwrap(provider, row)) for row in rows]


async def adopt(provider: KeyProvider, purpose: str, kek_id: str, derived: bytes) -> uuid.UUID:
    """Keep a root an older version derived from KEK ``kek_id`` as a root key of its own."""
    return await create(provider, purpose, await provider.derive(kek_id, derived))


async def delete(key_id: uuid.UUID) -> None:
    await RootKey.delete().where(RootKey.id == key_id).run()


async def rewrap_all(provider: KeyProvider, target: str) -> int:
    """Re-wrap every root key not yet under KEK ``target``; how many were."""
    engine = RootKey._meta.db
    done = 0
    async with engine.transaction():
        rows = await RootKey.select().where(RootKey.kek_id != target).run()
        for row in rows:
            raw = await _unwrap(provider, row)
            wrapped = await provider.wrap(target, raw, root_context(row["purpose"], row["id"]))
            await (
                RootKey.update(
                    {
                        RootKey.kek_id: target,
                        RootKey.wrapped: encode_wrapped(wrapped),
                        RootKey.rewrapped_at: utcnow(),
                    }
                )
                .where(RootKey.id == row["id"])
                .run()
            )
            done += 1
    return done


async def count_by_kek() -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in await RootKey.select(RootKey.kek_id).run():
        counts[row["kek_id"]] = counts.get(row["kek_id"], 0) + 1
    return counts
