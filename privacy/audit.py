"""The audit log: who read, exported, changed or erased whose personal data, when and how.

Each entry names the subject by contact id and the actor by reference (``user:<id>``), with
the action and the channel (api, cli, worker...) in plain columns, so the trail itself
survives an erasure as evidence. What was touched (fields, items) may name the person, so it
is stored encrypted under the subject's data key: erasing the subject makes it unreadable.

Core reports accesses through the ``kith_record_access`` hook (``kith.subject_checks``); the
privacy module records its own (exports, rectifications, restrictions, erasures) directly.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import uuid
from typing import Any

import msgspec
from kith.actor import SYSTEM, Actor
from kith.errors import InvalidInput
from kith.events import utcnow
from kith.ids import new_id
from kith.privacy.errors import SubjectErased
from kith.privacy.protector import ERASED_MARKER
from kith.privacy.subject_tables import AuditEntry
from kith.runtime import Kith
from kith.storage.prepared import Prepared
from kith.subjects import Access

TABLE = AuditEntry._meta.tablename
MAX_DETAILS_BYTES = 4000

# Every contact read over the API writes one entry, so the insert is built once per batch size:
# building and compiling a piccolo insert cost about 0.5 ms of CPU for one row on a 2-core
# machine, and several ms for a batch, many times what running it costs (docs/performance.md).
_COLUMNS = ("id", "contact_id", "at", "actor", "channel", "action", "request_id", "details")
_INSERT = Prepared(
    lambda id, contact_id, at, actor, channel, action, request_id, details: AuditEntry.insert(
        *(
            AuditEntry(
                id=row[0],
                contact_id=row[1],
                at=row[2],
                actor=row[3],
                channel=row[4],
                action=row[5],
                request_id=row[6],
                details=row[7],
            )
            for row in zip(
                id, contact_id, at, actor, channel, action, request_id, details, strict=True
            )
        )
    )
)


async def _insert(entries: list[dict[str, Any]]) -> None:
    """Write entries with the prepared insert of their number."""
    await _INSERT.run(**{column: [entry[column] for entry in entries] for column in _COLUMNS})


MAX_BATCH = 200


class _GroupCommit:
    """Entries of concurrent accesses (every API read writes one) written by one insert.

    The first entry that arrives schedules a flush for the next turn of the event loop; entries
    arriving meanwhile join it. Each caller still waits until the batch holding its entry is
    written, so a request answers only once its access is on record; the batch shares the hop
    to the SQLite writer and the commit (or the PostgreSQL round trip) instead of paying them
    once per read.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, values: dict[str, Any]) -> None:
        future: asyncio.Future[None] = self.loop.create_future()
        self._waiting.append((values, future))
        if self._task is None or self._task.done():
            # A context of its own: the batch must never join a caller's transaction.
            self._task = self.loop.create_task(self._flush(), context=contextvars.Context())
        await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                await _insert([values for values, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)


_groups: dict[int, _GroupCommit] = {}


def _group_commit() -> _GroupCommit:
    loop = asyncio.get_running_loop()
    group = _groups.get(id(loop))
    if group is None or group.loop is not loop:
        # One per event loop; loops that are gone (tests, CLI runs) leave theirs behind.
        if len(_groups) > 8:
            _groups.clear()
        group = _groups[id(loop)] = _GroupCommit(loop)
    return group


class AuditEntryOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    contact_id: uuid.UUID
    at: dt.datetime
    actor: str
    channel: str
    action: str
    request_id: uuid.UUID | None
    details: dict[str, Any] | str | None


class AuditLog:
    """Writes and reads the audit log of one installation."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    async def record(
        self,
        contact_id: uuid.UUID,
        action: str,
        *,
        actor: Actor | str = SYSTEM,
        channel: str = "api",
        details: dict[str, Any] | None = None,
        request_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Add one entry (inside the caller's transaction, if any)."""
        entry_id = new_id()
        stored: str | None = None
        if details:
            text = msgspec.json.encode(details).decode()[:MAX_DETAILS_BYTES]
            try:
                stored = (
                    await self.kith.protector.protect(
                        contact_id, TABLE, entry_id, {"details": text}
                    )
                )["details"]
            except SubjectErased:
                # The subject's key is gone (the erasure that is being recorded): the entry
                # keeps its plain columns only.
                stored = None
        values = {
            "id": entry_id,
            "contact_id": contact_id,
            "at": utcnow(),
            "actor": actor if isinstance(actor, str) else actor.ref,
            "channel": channel[:20],
            "action": action[:30],
            "request_id": request_id,
            "details": stored,
        }
        if AuditEntry._meta.db.current_transaction.get() is not None:
            # Part of the caller's transaction: it commits (or rolls back) with it.
            await _insert([values])
        else:
            await _group_commit().write(values)
        return entry_id

    async def record_access(self, access: Access) -> None:
        """The ``kith_record_access`` hook: one entry per reported access."""
        await self.record(
            access.contact_id,
            access.action,
            actor=access.actor,
            channel=access.channel,
            details=dict(access.details) or None,
        )

    async def entries(
        self, contact_id: uuid.UUID, *, limit: int = 200, before: uuid.UUID | None = None
    ) -> list[AuditEntryOut]:
        """A subject's entries, newest first; details read as ``[erased]`` after erasure."""
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit is 1 to 10000", field="limit")
        query = AuditEntry.select().where(AuditEntry.contact_id == contact_id)
        if before is not None:
            query = query.where(AuditEntry.id < before)
        rows = await query.order_by(AuditEntry.id, ascending=False).limit(limit).run()
        return [await self._out(row) for row in rows]

    async def _out(self, row: dict[str, Any]) -> AuditEntryOut:
        details: dict[str, Any] | str | None = None
        if row["details"] is not None:
            opened = (
                await self.kith.protector.reveal(
                    row["contact_id"], TABLE, row["id"], {"details": row["details"]}
                )
            )["details"]
            if opened is None or opened == ERASED_MARKER:
                details = ERASED_MARKER
            else:
                details = msgspec.json.decode(opened)
        return AuditEntryOut(
            id=row["id"],
            contact_id=row["contact_id"],
            at=row["at"],
            actor=row["actor"],
            channel=row["channel"],
            action=row["action"],
            request_id=row["request_id"],
            details=details,
        )

    async def count(self, contact_id: uuid.UUID) -> int:
        return int(await AuditEntry.count().where(AuditEntry.contact_id == contact_id).run())

    async def readable(self, contact_id: uuid.UUID) -> int:
        """How many of the subject's entries hold details (that erasure makes unreadable)."""
        return int(
            await AuditEntry.count()
            .where((AuditEntry.contact_id == contact_id) & AuditEntry.details.is_not_null())
            .run()
        )
