"""Which stored records a data key seals: what shredding that key makes unreadable.

A certificate counts them by the key id inside each envelope, not by the subject a row names:
a record under another key (a legal hold's) stays readable, and one under the subject's key is
shredded whichever subject column it has.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import reduce
from operator import or_

from kith.privacy.encryption.envelope import decode, is_envelope, key_id_of, stored_prefix
from kith.privacy.encryption.errors import EnvelopeError
from kith.privacy.encryption.tables import DataKey
from piccolo.columns import Column
from piccolo.table import Table


def _under(stored: object, key_id: uuid.UUID) -> bool:
    if not isinstance(stored, str) or not is_envelope(stored):
        return False
    try:
        return key_id_of(decode(stored)) == key_id
    except EnvelopeError:
        return False


async def rows_under_key(table: type[Table], columns: Sequence[Column], key_id: uuid.UUID) -> int:
    """How many rows of ``table`` hold a value of ``columns`` sealed under data key ``key_id``."""
    # The prefix narrows the rows in SQL; the key id in each candidate decides (LIKE treats
    # ``_`` as a wildcard and, on SQLite, ignores case).
    pattern = stored_prefix(key_id) + "%"
    condition = reduce(or_, [column.like(pattern) for column in columns])
    rows = await table.select(*columns).where(condition).run()
    return sum(1 for row in rows if any(_under(value, key_id) for value in row.values()))


async def subject_key_id(subject: uuid.UUID) -> uuid.UUID | None:
    """The id of the subject's data key; None when it has none (never had one, or shredded)."""
    row = await DataKey.select(DataKey.id).where(DataKey.subject == subject).first().run()
    return None if row is None else row["id"]


async def rows_under_subject_key(
    subject: uuid.UUID, table: type[Table], columns: Sequence[Column]
) -> int:
    """How many rows of ``table`` shredding ``subject``'s key makes unreadable."""
    key_id = await subject_key_id(subject)
    return 0 if key_id is None else await rows_under_key(table, columns, key_id)
