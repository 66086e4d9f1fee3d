"""Bulk rows (``kith.storage.bulk.insert_rows``: COPY on PostgreSQL, executemany on SQLite)
belong to the transaction they are written in, as every other statement does: an import's
batch is stored with its checkpoint or not at all."""

from __future__ import annotations

import uuid

import pytest
from kith.events import utcnow
from kith.ids import new_id
from kith.runtime import Kith
from kith.storage.bulk import insert_rows
from kith.tables import Contact

COLUMNS = ("id", "kind", "display_name", "tags", "source", "archived", "created_at", "updated_at")


def _row(name: str) -> tuple[object, ...]:
    now = utcnow()
    return (new_id(), "person", name, "[]", "test", False, now, now)


async def test_bulk_rows_go_with_a_rolled_back_transaction(kith: Kith) -> None:
    engine = Contact._meta.db
    with pytest.raises(RuntimeError):
        async with engine.transaction():
            # A read first: on PostgreSQL the transaction has not sent BEGIN yet.
            await Contact.count()
            await insert_rows(Contact, COLUMNS, [_row("first"), _row("second")])
            raise RuntimeError("refused after the rows were written")
    assert await Contact.count() == 0


async def test_bulk_rows_are_stored_and_read_back(kith: Kith) -> None:
    rows = [_row(f"person {n}") for n in range(300)]
    async with Contact._meta.db.transaction():
        await insert_rows(Contact, COLUMNS, rows)
    stored = await Contact.select(Contact.id, Contact.display_name, Contact.archived).run()
    assert sorted((uuid.UUID(str(r["id"])), r["display_name"]) for r in stored) == sorted(
        (row[0], row[2]) for row in rows
    )
    assert not any(r["archived"] for r in stored)
