"""Named state and the progress of resumable jobs, both kept in the database.

A job's progress is saved in the same transaction as the batch it describes, so after a crash
the job continues right after the last batch that committed, without doing any twice.
"""

from __future__ import annotations

import json
from typing import Any

from kith.events import utcnow
from kith.privacy.encryption.tables import PRIVACY_TABLES, PrivacyJob, PrivacyState

RUNNING = "running"
DONE = "done"


async def tables_ready() -> bool:
    """Whether the privacy app's tables exist (``kith migrate`` has created them)."""
    for table in PRIVACY_TABLES:
        if not await table.table_exists().run():
            return False
    return True


async def get_state(name: str) -> str | None:
    row = await PrivacyState.select(PrivacyState.value).where(PrivacyState.name == name).first()
    return None if row is None else str(row["value"])


async def set_state(name: str, value: str) -> None:
    await (
        PrivacyState.insert(PrivacyState(name=name, value=value, updated_at=utcnow()))
        .on_conflict(
            target=PrivacyState.name,
            action="DO UPDATE",
            values=[PrivacyState.value, PrivacyState.updated_at],
        )
        .run()
    )


async def claim_state(name: str, value: str) -> str:
    """Record ``value`` unless a value is recorded already; the value that stands."""
    await (
        PrivacyState.insert(PrivacyState(name=name, value=value, updated_at=utcnow()))
        .on_conflict(target=PrivacyState.name, action="DO NOTHING")
        .run()
    )
    return await get_state(name) or value


async def delete_state(name: str) -> None:
    await PrivacyState.delete().where(PrivacyState.name == name).run()


async def get_job(name: str) -> dict[str, Any] | None:
    row = await PrivacyJob.select().where(PrivacyJob.name == name).first()
    if row is not None and isinstance(row["details"], str):
        row["details"] = json.loads(row["details"])
    return row


async def begin_job(name: str, details: dict[str, Any], total: int = 0) -> dict[str, Any]:
    """Start job ``name`` afresh (replacing a finished run of it)."""
    now = utcnow()
    await PrivacyJob.delete().where(PrivacyJob.name == name).run()
    await PrivacyJob.insert(
        PrivacyJob(
            name=name,
            state=RUNNING,
            cursor="",
            done=0,
            total=total,
            details=details,
            started_at=now,
            updated_at=now,
        )
    ).run()
    job = await get_job(name)
    assert job is not None
    return job


async def save_progress(name: str, cursor: str, done: int, **changes: Any) -> None:
    values: dict[Any, Any] = {
        PrivacyJob.cursor: cursor,
        PrivacyJob.done: done,
        PrivacyJob.updated_at: utcnow(),
    }
    if "total" in changes:
        values[PrivacyJob.total] = changes["total"]
    if "details" in changes:
        values[PrivacyJob.details] = changes["details"]
    await PrivacyJob.update(values).where(PrivacyJob.name == name).run()


async def finish_job(name: str) -> None:
    now = utcnow()
    await (
        PrivacyJob.update(
            {PrivacyJob.state: DONE, PrivacyJob.updated_at: now, PrivacyJob.finished_at: now}
        )
        .where(PrivacyJob.name == name)
        .run()
    )
