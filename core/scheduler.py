"""The scheduler: open tasks that reach their due time publish ``task.due``, exactly once per
due time.

``kith_interaction.due_event_at`` records the due time an event was published for. Marking the
task and publishing the event happen in one transaction and one guarded ``UPDATE``, so two
schedulers (``kith serve`` and ``kith worker``, or several workers) never publish the same due
time twice, and a crash in between publishes it later instead of never. Moving ``due_at``
re-arms the task; completing it (``done_at``) disarms it.

A task whose contact a plugin refuses reminders for (processing restricted) is marked all the
same but publishes nothing: like ``task.overdue``, it is passed over for that due time and not
published when the restriction is lifted; a due time set later fires as usual.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kith.notices import add_notice
from kith.outbox import as_time, as_uuid
from kith.storage import Database
from kith.unit_of_work import UnitOfWork
from piccolo.querystring import QueryString

# What kith_check_processing is asked before a task's contact is brought up in a reminder.
REMINDER_ACTIVITY = "reminder.task"

# The same terms as the partial index kith_interaction_due_unpublished, so SQLite uses it.
_DUE = (
    "kind = 'task' AND done_at IS NULL AND due_at IS NOT NULL "
    "AND (due_event_at IS NULL OR due_event_at <> due_at)"
)


class Scheduler:
    """Publishes ``task.due`` for due tasks through units of work from ``unit_of_work``."""

    def __init__(
        self,
        database: Database,
        unit_of_work: Callable[[], UnitOfWork],
        batch_size: int = 200,
        refused: Callable[[Sequence[uuid.UUID]], Awaitable[set[uuid.UUID]]] | None = None,
    ) -> None:
        self.database = database
        self.unit_of_work = unit_of_work
        # Of some contacts, those no reminder may bring up (restricted ones).
        self.refused = refused
        self.batch_size = batch_size
        self.postgres = database.kind == "postgresql"

    async def publish_due(self, now: dt.datetime) -> int:
        """Publish ``task.due`` for every task due at ``now``; returns how many."""
        total = 0
        while True:
            seen, published = await self._batch(now)
            total += published
            if seen < self.batch_size:
                return total

    async def _batch(self, now: dt.datetime) -> tuple[int, int]:
        lock = " FOR UPDATE SKIP LOCKED" if self.postgres else ""
        async with self.unit_of_work() as uow:
            rows: Any = await self.database.engine.run_querystring(
                QueryString(
                    "UPDATE kith_interaction SET due_event_at = due_at WHERE id IN ("
                    f"SELECT id FROM kith_interaction WHERE {_DUE} AND due_at <= {{}} "
                    f"ORDER BY due_at LIMIT {{}}{lock}) "
                    "RETURNING id, contact, assignee, due_at",
                    now,
                    self.batch_size,
                )
            )
            due = sorted(
                ((as_time(row["due_at"]), dict(row)) for row in rows), key=lambda pair: pair[0]
            )
            published = 0
            refused: set[uuid.UUID] = set()
            if self.refused is not None and due:
                refused = await self.refused(list({as_uuid(row["contact"]) for _, row in due}))
            for due_at, row in due:
                assert due_at is not None
                if as_uuid(row["contact"]) in refused:
                    continue  # marked by the UPDATE: passed over for this due time
                published += 1
                uow.publish(
                    "task.due",
                    as_uuid(row["contact"]),
                    interaction_id=str(as_uuid(row["id"])),
                    assignee_id=None if row["assignee"] is None else str(as_uuid(row["assignee"])),
                    due_at=due_at.isoformat(),
                )
                if row["assignee"] is not None:
                    # The assignee's notification commits with the event, or neither does.
                    await add_notice(
                        as_uuid(row["assignee"]),
                        "task.due",
                        contact_id=as_uuid(row["contact"]),
                        task_id=as_uuid(row["id"]),
                        payload={"due_at": due_at.isoformat()},
                        now=now,
                    )
            return len(rows), published
