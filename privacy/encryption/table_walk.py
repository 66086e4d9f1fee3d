"""Walk every row of the personal tables in primary-key order, in resumable batches.

Used by the plaintext migration and the blind-index re-index: each batch is handled and the
job's position (table and last primary key) saved in one transaction, so a crash repeats nothing
and skips nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kith.privacy.encryption import jobs
from kith.privacy.encryption.field_registry import PersonalTable
from kith.privacy.encryption.tables import PrivacyJob
from piccolo.columns import Column
from piccolo.query.functions.aggregate import Count

BatchHandler = Callable[[PersonalTable, list[dict[str, Any]]], Awaitable[int]]
Progress = Callable[[int, int], None]


def column(personal: PersonalTable, name: str) -> Column | None:
    for candidate in personal.table._meta.columns:
        if candidate._meta.name == name:
            return candidate
    return None


async def _total(tables: Sequence[PersonalTable]) -> int:
    total = 0
    for personal in tables:
        row = await personal.table.select(Count()).first()
        total += int(row["count"]) if row else 0
    return total


async def walk(
    job_name: str,
    tables: Sequence[PersonalTable],
    columns: Callable[[PersonalTable], list[Column]],
    handle: BatchHandler,
    *,
    batch_size: int = 500,
    details: dict[str, Any] | None = None,
    progress: Progress | None = None,
    pause: float = 0.0,
) -> tuple[int, int]:
    """Run (or resume) job ``job_name`` over ``tables``; returns (rows seen, rows changed).

    ``columns`` chooses what to select besides the primary key; ``handle`` changes one batch
    (inside the batch's transaction) and says how many rows it changed.
    """
    job = await jobs.get_job(job_name)
    if job is None or job["state"] != jobs.RUNNING:
        job = await jobs.begin_job(
            job_name, {**(details or {}), "table": 0, "changed": 0}, await _total(tables)
        )
    position = dict(job["details"])
    table_index, cursor = int(position.get("table", 0)), str(job["cursor"])
    seen, changed, total = int(job["done"]), int(position.get("changed", 0)), int(job["total"])
    engine = PrivacyJob._meta.db
    while table_index < len(tables):
        personal = tables[table_index]
        pk = personal.table._meta.primary_key
        async with engine.transaction():
            query = personal.table.select(pk, *columns(personal))
            if cursor:
                query = query.where(pk > pk.value_type(cursor))
            rows = await query.order_by(pk).limit(batch_size).run()
            if rows:
                changed += await handle(personal, rows)
                seen += len(rows)
                cursor = str(rows[-1][pk._meta.name])
            else:
                table_index, cursor = table_index + 1, ""
            position.update(table=table_index, changed=changed)
            await jobs.save_progress(
                job_name, cursor, seen, total=max(total, seen), details=position
            )
        if rows:
            if progress is not None:
                progress(seen, max(total, seen))
            if pause:
                await asyncio.sleep(pause)
    await jobs.finish_job(job_name)
    return seen, changed
