"""Blind indexes and name-search tokens of an import's contact rows, computed where the rows are
parsed: in the worker process on a large file, so that the keyed hashes (about 30 a contact)
use the second core while the writer stores the previous batch.

The worker gets the kind keys of the blind index for these kinds only (never its root, never a
data key or key-encryption key), pickled through the process pipe with each batch; nothing of
them is written anywhere. The writer uses what the worker computed and computes anything
missing itself, so a row without digests (a small file parsed in-process, a protector that
cannot hand its lookups over) is written exactly the same."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kith.contact_names import stored_names
from kith.errors import KithError
from kith.name_index import TokenMaker, name_index

if TYPE_CHECKING:
    from kith.runtime import Kith

# The contact row's table, as the name index knows it.
CONTACT_TABLE = "kith_contact"


@dataclass(frozen=True)
class DigestKeys:
    """What a worker needs: the blind-index lookup of emails, phones and the name index's
    kinds, and the name index's columns (None when the index is off). Picklable; its ``repr``
    shows no key (the lookup's own hides them)."""

    lookup: Callable[[str, str], str]
    names: TokenMaker | None


@dataclass
class RowDigests:
    """One contact row's keyed hashes: the blind index of each (kind, normalised value) of its
    emails and phones, and its name tokens (None when not computed)."""

    lookups: dict[tuple[str, str], str] = field(default_factory=dict)
    name_tokens: set[int] | None = None


def digest(
    kind: str,
    name: str | None,
    given: str | None,
    family: str | None,
    points: list[tuple[str, str]],
    keys: DigestKeys,
    known: dict[tuple[str, str], int],
) -> RowDigests:
    """The digests of one contact (``known``: name tokens of the batch so far, see
    :meth:`TokenMaker.tokens`). Names the writer would refuse get no tokens: the writer
    refuses the row."""
    lookups = {(k, value): keys.lookup(k, value) for k, value in points}
    tokens = None
    if keys.names is not None:
        try:
            names = stored_names(kind, name, given, family)
        except KithError:
            names = None
        if names is not None:
            tokens = keys.names.tokens(CONTACT_TABLE, names, known)
    return RowDigests(lookups, tokens)


def digest_keys(kith: Kith) -> DigestKeys | None:
    """The keys a worker of ``kith``'s imports is given; None when its protector cannot hand
    its lookups over (the writer then computes everything itself)."""
    lookup_keys = getattr(kith.protector, "lookup_keys", None)
    if lookup_keys is None:
        return None
    index = name_index(kith)
    names = index.enabled and bool(index.kinds)
    kinds = ["email", "phone"]
    if names:
        kinds += [*index.kinds.values(), *index.pair_kinds.values()]
    lookup = lookup_keys(kinds)
    return DigestKeys(lookup, index.maker(lookup) if names else None)
