"""The keyed hash that names the subject of a request Kith holds nothing about.

A request from someone who is not a contact (an access request that finds nobody) must still
say whom it was about, in the request and its certificate, without storing their address. It
keeps HMAC-SHA256 of the normalised email or phone under a key of its own: HKDF per kind from a
random root key for this purpose (``subject_request`` in ``kith_privacy_root_key``), unrelated
to the blind indexes, so it cannot be joined with the contacts' lookups or the suppression
list. A request whose subject is a contact keeps the contact id and no hash at all.
"""

from __future__ import annotations

import uuid

from kith import Kith
from kith.privacy.encryption import root_keys
from kith.privacy.encryption.primitives import hkdf_sha256, hmac_sha256
from kith.privacy.encryption.protector import protector_of
from kith.privacy.encryption.tables import RootKey

_KIND_INFO = b"kith/subject-request/v1/kind="


async def _root_id(kith: Kith) -> uuid.UUID:
    row = await (
        RootKey.select(RootKey.id)
        .where(RootKey.purpose == root_keys.SUBJECT_REQUEST)
        .order_by(RootKey.id)
        .first()
    )
    if row is not None:
        return uuid.UUID(str(row["id"]))
    provider = protector_of(kith).context["provider"]
    return await root_keys.create(provider, root_keys.SUBJECT_REQUEST)


async def subject_hash(kith: Kith, kind: str, normalized: str) -> str:
    """64 hex characters naming an unknown subject by their normalised email or phone."""
    protector = protector_of(kith)
    cache: dict[tuple[uuid.UUID, str], bytes] = protector.context.setdefault(
        "subject_request_keys", {}
    )
    root_id = await _root_id(kith)
    key = cache.get((root_id, kind))
    if key is None:
        root = await root_keys.load(protector.context["provider"], root_id)
        assert root is not None  # just read or made
        key = hkdf_sha256(root, _KIND_INFO + kind.encode("utf-8"))
        cache[(root_id, kind)] = key
    return hmac_sha256(key, normalized.encode("utf-8")).hex()
