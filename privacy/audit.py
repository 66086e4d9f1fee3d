"""The audit log: who read, exported, changed or erased whose personal data, when and how.

Each entry names the subject by contact id and the actor by reference (``user:<id>``), with
the action and the channel (api, cli, worker...) in plain columns, so the trail itself
survives an erasure as evidence. What was touched (fields, items) may name the person, so it
is stored encrypted under the subject's data key: erasing the subject makes it unreadable.

Core reports accesses through the ``kith_record_access`` hook (``kith.subject_checks``); the
privacy module records its own (exports, rectifications, restrictions, erasures) directly.
"""

from __future__ import annotations

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

# Every contact read over the API writes one entry, so the insert is built once: building and
# compiling a piccolo insert per entry cost about 0.5 ms of CPU on a 2-core machine, several
# times what running it costs (see docs/performance.md).
_INSERT = Prepared(
    lambda id, contact_id, at, actor, channel, action, request_id, details: AuditEntry.insert(
        AuditEntry(
            id=id,
            contact_id=contact_id,
            at=at,
            actor=actor,
            channel=channel,
            action=action,
            request_id=request_id,
            details=details,
        )
    )
)


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
        await _INSERT.run(
            id=entry_id,
            contact_id=contact_id,
            at=utcnow(),
            actor=actor if isinstance(actor, str) else actor.ref,
            channel=channel[:20],
            action=action[:30],
            request_id=request_id,
            details=stored,
        )
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
