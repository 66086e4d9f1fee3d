"""Many new rows of one table at once, for a batch of an import: ``COPY`` on PostgreSQL,
``executemany`` on SQLite (see each engine's ``insert_rows``).

Values go to the driver as they are, as with :class:`kith.storage.prepared.Prepared`: plain
values (str, int, UUID, aware datetime, bool), a JSON column's value encoded as text. Worth it
for tables that take many rows a batch (contacts, their emails and phones, name tokens, custom
field values); a few rows are as quick with a prepared multi-row insert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from piccolo.table import Table


async def insert_rows(
    table: type[Table], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (each a value per column of ``columns``) into ``table``, in the
    current transaction (or one of its own)."""
    if not rows:
        return
    # Kith's engines (kith.storage.sqlite, kith.storage.postgres) have it.
    engine: Any = table._meta.db
    await engine.insert_rows(table._meta.tablename, columns, rows)


__all__ = ["insert_rows"]
