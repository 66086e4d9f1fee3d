"""What an import's contact rows need of keys but not of the database, computed where the rows
are parsed: in the worker process on a large file, so that the keyed hashes (about 30 a
contact) and encryptions use the second core while the writer stores the previous batch.

- blind indexes of the emails and phones, and name-search tokens: the worker gets the kind
  keys of the blind index for these kinds only (never its root);
- the contact's id, a new data key, and its names, emails and phones encrypted under it: the
  worker gets the protector's sealer (with the privacy plugin: the current KEK's wrapping key,
  see ``kith.privacy.encryption.new_subjects``), and the new keys come back with the rows.

Keys reach the worker pickled through the process pipe only, with each batch; nothing of
them is written anywhere or logged (their ``repr`` hides them). The writer uses what the worker
computed and computes anything missing itself, so a row without digests (a small file parsed
in-process, a protector that cannot hand its keys over) is written exactly the same. The key
of a row the writer does not write (a duplicate) is dropped with the row."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kith.contact_names import stored_names
from kith.errors import KithError
from kith.ids import new_id
from kith.name_index import TokenMaker, name_index

if TYPE_CHECKING:
    from kith.runtime import Kith

# The tables of a contact's names and of its emails and phones.
CONTACT_TABLE = "kith_contact"
POINT_TABLE = "kith_contact_point"


@dataclass(frozen=True)
class DigestKeys:
    """What a worker needs: the blind-index lookup of emails, phones and the name index's
    kinds, and the name index's columns (None when the index is off). Picklable; its ``repr``
    shows no key (the lookup's own hides them)."""

    lookup: Callable[[str, str], str]
    names: TokenMaker | None
    # The protector's sealer of new subjects' values, or None (see the module docstring).
    sealer: Any = None


@dataclass
class RowDigests:
    """One contact row's keyed hashes: the blind index of each (kind, normalised value) of its
    emails and phones, and its name tokens (None when not computed)."""

    lookups: dict[tuple[str, str], str] = field(default_factory=dict)
    name_tokens: set[int] | None = None
    # With a sealer: the contact's id, its new data key (opaque to core), its name columns
    # as stored, and each (kind, value) of its emails and phones as (row id, stored value).
    contact_id: uuid.UUID | None = None
    key: Any = None
    names: dict[str, str | None] | None = None
    points: dict[tuple[str, str], tuple[uuid.UUID, str]] = field(default_factory=dict)

    @property
    def sealed(self) -> bool:
        return self.key is not None


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
    digests = RowDigests({(k, value): keys.lookup(k, value) for k, value in points})
    try:
        names = stored_names(kind, name, given, family)
    except KithError:
        return digests
    if keys.names is not None:
        digests.name_tokens = keys.names.tokens(CONTACT_TABLE, names, known)
    sealer = keys.sealer
    if sealer is not None:
        contact_id = digests.contact_id = new_id()
        key = digests.key = sealer.new_key(contact_id)
        digests.names = {
            column: sealer.seal(key, CONTACT_TABLE, column, contact_id, value)
            for column, value in names.items()
        }
        for k, value in points:
            point_id = new_id()
            digests.points[(k, value)] = (
                point_id,
                sealer.seal(key, POINT_TABLE, "value", point_id, value),
            )
    return digests


async def digest_keys(kith: Kith) -> DigestKeys | None:
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
    sealer = getattr(kith.protector, "new_subject_sealer", None)
    return DigestKeys(
        lookup,
        index.maker(lookup) if names else None,
        None if sealer is None else await sealer(),
    )
