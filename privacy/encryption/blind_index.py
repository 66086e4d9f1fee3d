"""Blind indexes: deterministic keyed hashes of normalised values, for exact lookup.

``lookup(kind, value)`` is the full-length hex HMAC-SHA256 of the normalised value under a key
for that kind (``email``, ``phone``, or a plugin's own). The kind keys come from HKDF over a
random root key of their own (:mod:`kith.privacy.encryption.root_keys`), stored wrapped under
the current KEK, so they are separate from the data keys, survive KEK rotation and pruning, and
the email key is separate from the phone key (the same string under two kinds gives unrelated
indexes). Replacing the root is a re-index (:mod:`kith.privacy.encryption.reindex`) because
every value must be decrypted.

The keys are per kind, not per column: a plugin's lookup of a kind matches core's contact-point
index. So equal values of one kind have equal indexes in every column that holds them, which a
reader of the database can see without any key; ``docs/privacy-keys.md`` says what that gives
away.
"""

from __future__ import annotations

from collections.abc import Iterable

from kith.privacy.encryption.primitives import hkdf_sha256, hmac_sha256

# What older versions derived the root from a KEK with; still used to carry such a root over.
ROOT_PURPOSE = b"kith/blind-index/v1"
_KIND_INFO = b"kith/blind-index/v1/kind="


class BlindIndex:
    """Computes lookup keys for one root key (``root_id`` names its row)."""

    def __init__(self, root: bytes, root_id: str) -> None:
        self.root_id = root_id
        self._root = root
        self._kind_keys: dict[str, bytes] = {}

    def kind_key(self, kind: str) -> bytes:
        key = self._kind_keys.get(kind)
        if key is None:
            key = hkdf_sha256(self._root, _KIND_INFO + kind.encode("utf-8"))
            self._kind_keys[kind] = key
        return key

    def lookup(self, kind: str, normalized: str) -> str:
        """64 hex characters; equal inputs give equal outputs, nothing else can be read off."""
        return hmac_sha256(self.kind_key(kind), normalized.encode("utf-8")).hex()

    def for_kinds(self, kinds: Iterable[str]) -> KindKeys:
        """The lookups of these kinds alone, for a worker process (see :class:`KindKeys`)."""
        return KindKeys({kind: self.kind_key(kind) for kind in kinds})


class KindKeys:
    """:meth:`BlindIndex.lookup` for a few kinds, holding their kind keys only (never the root):
    what an import's worker process needs to compute blind indexes and name tokens. It is
    pickled to the worker through the process pipe; its ``repr`` shows no key."""

    __slots__ = ("_keys",)

    def __init__(self, keys: dict[str, bytes]) -> None:
        self._keys = keys

    def __repr__(self) -> str:
        return f"KindKeys({sorted(self._keys)})"

    def __getstate__(self) -> dict[str, bytes]:
        return self._keys

    def __setstate__(self, keys: dict[str, bytes]) -> None:
        self._keys = keys

    def __call__(self, kind: str, normalized: str) -> str:
        return hmac_sha256(self._keys[kind], normalized.encode("utf-8")).hex()
