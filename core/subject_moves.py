"""Moving a data subject's rows to another subject, re-encrypted under the other's data key:
what a merge of contacts (and its undo) does with every row about a person.

A personal value is sealed under its subject's key, bound to its table, column and row. A row
that changed subject with its ciphertext untouched would stay readable only through the old
subject's key, which an erasure of the new one would not destroy (and reads refuse a value
under another subject's key). So each value is opened with the row's current subject and
sealed again for the new one; name search tokens follow the row. Blind indexes need nothing:
their keys belong to a column, not to a person.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kith import name_index
from kith.personal import subject_column

# Ids in one IN (...) list, well under either engine's limit of bound values.
CHUNK = 500

if TYPE_CHECKING:
    from kith.runtime import Kith
    from piccolo.columns import Column
    from piccolo.table import Table


def _personal_columns(kith: Kith, table: type[Table]) -> tuple[list[str], list[str]]:
    """(every personal column, the name search ones) of ``table`` in the registry."""
    name = str(table._meta.tablename)
    fields = [field for field in kith.personal_fields if field.table == name]
    return [f.column for f in fields], [f.column for f in fields if f.name_search]


async def move_subject_rows(
    kith: Kith,
    table: type[Table],
    where: Any,
    to: uuid.UUID,
    *,
    values: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Move the rows of ``table`` that ``where`` selects to data subject ``to``: its subject
    column (the one the personal-data registry reads: a foreign key to contacts,
    ``contact_id`` or ``kith_subject_column``) gets ``to``, and every declared personal
    column is decrypted under the row's current subject and encrypted under ``to``'s key.
    ``values`` sets other columns of every moved row as well (``{"is_primary": False}``).
    Returns the moved rows' primary keys, for an undo to move them back. Run it inside the
    caller's transaction (a merge's hooks are)."""
    subject = subject_column(table)
    if subject is None:
        raise ValueError(f"{table._meta.tablename} has no column naming its data subject")
    tablename = str(table._meta.tablename)
    pk = table._meta.primary_key
    key = pk._meta.name
    owner_column = table._meta.get_column_by_name(subject)
    personal, searched = _personal_columns(kith, table)
    selected = [table._meta.get_column_by_name(column) for column in personal]
    rows = await table.select(pk, owner_column, *selected).where(where).run()
    extra: dict[Column | str, Any] = {
        table._meta.get_column_by_name(name): value for name, value in (values or {}).items()
    }
    plain_moves = []
    for row in rows:
        stored = {column: row[column] for column in personal}
        owner = row[subject]
        if owner == to or all(value is None for value in stored.values()):
            plain_moves.append(row[key])
            continue
        opened = await kith.protector.reveal(owner, tablename, row[key], stored)
        sealed = await kith.protector.protect(to, tablename, row[key], opened)
        update: dict[Column | str, Any] = {owner_column: to, **extra}
        update.update({table._meta.get_column_by_name(c): sealed[c] for c in personal})
        await table.update(update).where(pk == row[key]).run()
        if searched:
            await name_index.forget_row(owner, tablename, row[key])
            await name_index.index_row(
                kith, to, tablename, row[key], {c: opened[c] for c in searched}, new=True
            )
    # Nothing sealed in these rows: a statement moves a chunk of them.
    for start in range(0, len(plain_moves), CHUNK):
        chunk = plain_moves[start : start + CHUNK]
        await table.update({owner_column: to, **extra}).where(pk.is_in(chunk)).run()
    return [row[key] for row in rows]
