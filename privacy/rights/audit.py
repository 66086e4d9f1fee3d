"""The audit log: who read, exported, changed or erased whose personal data, when and how.

Each entry names the subject by contact id and the actor by reference (``user:<id>``), with
the action and the channel (api, cli, worker...) in plain columns, so the trail itself
survives an erasure as evidence. What was touched (fields, items) may name the person, so it
is stored encrypted under the subject's data key: erasing the subject makes it unreadable.

Core reports accesses through the ``kith_record_access`` hook (``kith.subject_checks``); the
privacy module records its own (exports, rectifications, restrictions, erasures) directly.
Entries are written by the installation's :class:`AuditWriter`; ``[privacy] audit_durability``
says whether an access is answered before or after its entry is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import uuid
from typing import Any

import msgspec
from kith.actor import SYSTEM, Actor
from kith.errors import InvalidInput
from kith.events import utcnow
from kith.ids import new_id
from kith.logs import get_logger
from kith.privacy.encryption.errors import AuditUnavailable, SubjectErased
from kith.privacy.encryption.protector import ERASED_MARKER
from kith.privacy.rights.settings import DEFAULT_AUDIT_DURABILITY, AuditDurability, rights_settings
from kith.privacy.rights.tables import AuditEntry
from kith.runtime import Kith
from kith.storage.prepared import Prepared, row_chunks, run_deferred
from kith.subjects import Access
from kith.unit_of_work import UnitOfWork
from piccolo.query import Insert

TABLE = AuditEntry._meta.tablename
MAX_DETAILS_BYTES = 4000

# Every contact read over the API writes one entry, so the insert is built once per batch size:
# building and compiling a piccolo insert costs about 0.1 ms of CPU per row on a 2-core machine
# (6.5 ms for 64 rows), many times what running it costs (docs/performance.md). Batches hold at
# most MAX_BATCH entries, so there are at most that many shapes per database kind, all kept.
MAX_BATCH = 64
# Entries recorded in a unit of work are gathered under this key (see _insert_before_commit).
_GATHER_KEY = "privacy.audit_entries"
_COLUMNS = ("id", "contact_id", "at", "actor", "channel", "action", "request_id", "details")
# piccolo's ``Insert`` rather than ``AuditEntry.insert``: without ``RETURNING id``. On SQLite
# each returned row is a step of the statement that gives up the GIL and takes it back; with the
# event loop's thread busy serving requests, that made a batch of 64 take half a second.
_INSERT = Prepared(
    lambda id, contact_id, at, actor, channel, action, request_id, details: Insert(
        AuditEntry,
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
        ),
    ),
    max_shapes=2 * MAX_BATCH,
)


async def _insert(entries: list[dict[str, Any]]) -> None:
    """Write entries with the prepared insert of their number."""
    await _INSERT.run(**{column: [entry[column] for entry in entries] for column in _COLUMNS})


async def _insert_gathered(entries: list[dict[str, Any]]) -> None:
    """The entries a unit of work gathered, a few multi-row statements for all of them, run
    with the transaction's other deferred statements."""
    for part in row_chunks(len(entries), MAX_BATCH):
        await _INSERT.defer(**{column: [e[column] for e in entries[part]] for column in _COLUMNS})


async def _insert_before_commit(values: dict[str, Any]) -> None:
    """Write an entry in the current transaction: in a unit of work, gathered with the
    transaction's other entries into multi-row statements just before it commits (a batch of
    an import reports hundreds); otherwise with its other deferred statements (one round trip
    on PostgreSQL with the outbox event of the same write)."""
    unit = UnitOfWork.current()
    if unit is not None:
        unit.gather(_GATHER_KEY, values, _insert_gathered)
        return
    await _INSERT.defer(**{column: [values[column]] for column in _COLUMNS})


# Access reports not yet written: past WAIT_ABOVE a new report waits for its commit (the
# writer is behind, so readers are slowed down to its pace); past MAX_BACKLOG, refused.
WAIT_ABOVE = 4 * MAX_BATCH
MAX_BACKLOG = 10_000
# A batch of access reports waits this long for more reports to join it, unless it is full,
# someone waits for its commit or wants the log settled. Each insert and commit has a cost of
# its own besides its rows (the hop to SQLite's writer thread and the WAL frames; a PostgreSQL
# round trip), which a full batch shares (about 60 entries per batch in the read benchmark).
# It is also how long an answered read's entry may wait in memory.
GATHER_S = 0.02
# After a failed write the batch is tried again, waiting this long at first, then longer.
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0
# How long closing Kith waits for the backlog to be written before giving up on it.
SETTLE_TIMEOUT_S = 10.0
# How long closing then waits for the writer's task to stop once it is cancelled.
STOP_TIMEOUT_S = 1.0

# The writer's key in ``Kith.state``.
STATE_KEY = "privacy.audit_writer"

_log = get_logger("kith.privacy.rights.audit")


_Waiter = asyncio.Future[None] | None


class AuditWriter:
    """The audit log's writer for one Kith, kept in ``kith.state``: opened by the rights
    plugin's ``kith_startup`` (or on first use), closed by its ``kith_shutdown``.

    The first entry that arrives schedules a flush for the next turn of the event loop; entries
    arriving meanwhile join it, so a batch shares the hop to the SQLite writer and the commit
    (or the PostgreSQL round trip) instead of paying them once per entry.

    An entry is either *written* (the caller waits until its batch is committed and gets its
    error) or *submitted* (access reports under ``write_behind``: the caller goes on, see
    :meth:`submit`). A submitted entry whose batch fails stays queued and is tried again;
    meanwhile new submissions are refused with :class:`AuditUnavailable`, so no access goes
    unrecorded for longer than that.
    """

    def __init__(self, durability: AuditDurability = DEFAULT_AUDIT_DURABILITY) -> None:
        self.durability: AuditDurability = durability
        self._waiting: list[tuple[dict[str, Any], _Waiter]] = []
        self._writing = 0  # entries of the batch being inserted
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        # Set when the next batch should not wait for more entries (see GATHER_S).
        self._hurry = asyncio.Event()
        self.failure: Exception | None = None
        self.closed = False

    @property
    def backlog(self) -> int:
        """Entries not written yet, the batch being written included."""
        return len(self._waiting) + self._writing

    @property
    def durable(self) -> bool:
        """Whether an access report is committed before the access is answered."""
        return self.durability == "durable"

    async def write(self, values: dict[str, Any]) -> None:
        """Write one entry, returning once its batch is committed."""
        if self.closed:
            # Nothing is left to write it later: Kith is closing.
            await _insert([values])
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((values, future))
        self._hurry.set()
        self._schedule()
        await future

    def submit(self, values: dict[str, Any]) -> None:
        """Queue an entry without waiting for its commit (``write_behind``).

        Waiting for the commit costs a contact read on SQLite 15-80 µs of CPU (the request is
        suspended and resumed, docs/performance.md); the entry is written within the same turn
        or the next few of the event loop instead. What this gives up: a crash of the process
        in that moment loses the entries of the reads it just answered.
        """
        if self.failure is not None:
            raise self.unavailable()
        if self.backlog >= MAX_BACKLOG:
            raise AuditUnavailable("the audit log is behind; try again in a moment")
        self._waiting.append((values, None))
        if len(self._waiting) >= MAX_BATCH:
            self._hurry.set()
        self._schedule()

    def unavailable(self, failure: BaseException | None = None) -> AuditUnavailable:
        failure = failure if failure is not None else self.failure
        reason = f" ({type(failure).__name__}: {failure})" if failure is not None else ""
        return AuditUnavailable(
            f"the audit log cannot be written{reason}; access to personal data is refused "
            "until it can"
        )

    def _schedule(self) -> None:
        if self._task is None or self._task.done():
            # A context of its own: the batch must never join a caller's transaction.
            self._task = asyncio.get_running_loop().create_task(
                self._flush(), context=contextvars.Context()
            )

    async def settle(self, timeout: float | None = None, *, while_failing: bool = False) -> None:
        """Wait until every queued entry is written. Raises :class:`AuditUnavailable` as soon
        as a write fails (unless ``while_failing``: then it waits for the retries), and
        TimeoutError after ``timeout`` seconds."""
        if not self.backlog:
            return
        self._hurry.set()
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(
                lambda: self.backlog == 0 or (self.failure is not None and not while_failing)
            )
        if self.backlog and self.failure is not None:
            raise self.unavailable()

    async def close(self) -> None:
        """Write what is queued, retrying for up to ``SETTLE_TIMEOUT_S``, and stop; say in the
        log how many entries were lost when that fails. Entries recorded after this are
        written at once."""
        self.closed = True
        try:
            await self.settle(SETTLE_TIMEOUT_S, while_failing=True)
        except TimeoutError:
            _log.error("audit.entries_lost", count=self.backlog)
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            # Bounded: a database that hangs may hold the cancelled insert for a while.
            await asyncio.wait([task], timeout=STOP_TIMEOUT_S)
        for _, future in self._waiting:
            if future is not None and not future.done():
                future.set_exception(self.unavailable())
        self._waiting = []
        self._writing = 0

    async def _announce(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _gather(self) -> None:
        """Let more entries join the next batch, for up to GATHER_S."""
        if not self._hurry.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GATHER_S):
                    await self._hurry.wait()
        self._hurry.clear()

    async def _flush(self) -> None:
        delay = RETRY_FIRST_S
        while self._waiting:
            await self._gather()
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            self._writing = len(batch)
            try:
                await _insert([values for values, _ in batch])
            except Exception as exc:
                self._writing = 0
                for _, future in batch:
                    if future is not None and not future.done():
                        future.set_exception(exc)
                submitted = [(values, None) for values, future in batch if future is None]
                if submitted:
                    # Accesses already answered: their entries must land, so they stay first
                    # in the queue, and new accesses are refused until they do.
                    self.failure = exc
                    self._waiting[:0] = submitted
                    _log.error(
                        "audit.write_failed",
                        pending=self.backlog,
                        error=f"{type(exc).__name__}: {exc}",
                        retry_in_s=delay,
                    )
                    await self._announce()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
            else:
                self._writing = 0
                if self.failure is not None:
                    _log.info("audit.write_recovered")
                self.failure = None
                delay = RETRY_FIRST_S
                for _, future in batch:
                    if future is not None and not future.done():
                        future.set_result(None)
        await self._announce()


def open_writer(kith: Kith) -> AuditWriter:
    """Open the Kith's audit writer, with the durability ``[privacy]`` asks for, and keep it in
    ``kith.state``; an open one is kept, a closed one replaced (Kith started again)."""
    writer = kith.state.get(STATE_KEY)
    if isinstance(writer, AuditWriter) and not writer.closed:
        return writer
    writer = AuditWriter(rights_settings(kith.settings).audit_durability)
    kith.state[STATE_KEY] = writer
    return writer


def audit_writer(kith: Kith) -> AuditWriter:
    """The Kith's audit writer, opened now if its start-up did not (a Kith started without
    the plugins' hooks, or before its tables existed)."""
    writer = kith.state.get(STATE_KEY)
    if isinstance(writer, AuditWriter):
        return writer
    return open_writer(kith)


async def close_writer(kith: Kith) -> None:
    """Close the Kith's audit writer, if it has one (``kith_shutdown``)."""
    writer = kith.state.get(STATE_KEY)
    if isinstance(writer, AuditWriter):
        await writer.close()


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
        wait: bool = True,
    ) -> uuid.UUID:
        """Add one entry: inside the caller's transaction, if any; otherwise committed before
        this returns, or (``wait=False``) queued to be written right after."""
        values = await self._entry(contact_id, action, actor, channel, details, request_id)
        await self._store(values, behind=not wait)
        entry_id: uuid.UUID = values["id"]
        return entry_id

    async def record_access(self, access: Access) -> None:
        """The ``kith_record_access`` hook: one entry per reported access, committed before
        the access is answered (``durable``) or queued to be written right after it
        (``write_behind``, see :meth:`AuditWriter.submit`)."""
        values = await self._entry(
            access.contact_id,
            access.action,
            access.actor,
            access.channel,
            dict(access.details) or None,
            None,
        )
        writer = audit_writer(self.kith)
        await self._store(values, behind=not writer.durable, refuse=True)

    async def _entry(
        self,
        contact_id: uuid.UUID,
        action: str,
        actor: Actor | str,
        channel: str,
        details: dict[str, Any] | None,
        request_id: uuid.UUID | None,
    ) -> dict[str, Any]:
        """The row of one entry, its details encrypted under the subject's key."""
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
        return {
            "id": entry_id,
            "contact_id": contact_id,
            "at": utcnow(),
            "actor": actor if isinstance(actor, str) else actor.ref,
            "channel": channel[:20],
            "action": action[:30],
            "request_id": request_id,
            "details": stored,
        }

    async def _store(self, values: dict[str, Any], *, behind: bool, refuse: bool = False) -> None:
        """Write an entry, or queue it (``behind``); ``refuse``: a failed write refuses the
        access with :class:`AuditUnavailable`."""
        if AuditEntry._meta.db.current_transaction.get() is not None:
            # Part of the caller's transaction: it commits (or rolls back) with it.
            await _insert_before_commit(values)
            return
        writer = audit_writer(self.kith)
        # A closed writer would never write a queued entry: Kith is closing.
        queue = behind and not writer.closed
        if queue and (writer.failure is not None or writer.backlog < WAIT_ABOVE):
            writer.submit(values)  # refused while the log cannot be written
            return
        try:
            await writer.write(values)
        except AuditUnavailable:
            raise
        except Exception as exc:
            if not refuse:
                raise
            # Nothing is shown that is not recorded.
            raise writer.unavailable(exc) from exc

    async def settle(self) -> None:
        """Wait until the queued access reports are written (before the log is read, so that
        it shows them); :class:`AuditUnavailable` while the log cannot be written."""
        if AuditEntry._meta.db.current_transaction.get() is not None:
            # Inside a transaction: on SQLite the writer these reports wait for is the one this
            # transaction holds, and a read inside it sees only what committed before it began.
            # Callers that must count queued reports settle before they begin (erasure does).
            # What this transaction recorded is written now, so that it reads it.
            unit = UnitOfWork.current()
            if unit is not None:
                await unit.flush(_GATHER_KEY)
            await run_deferred(AuditEntry._meta.db)
            return
        writer = self.kith.state.get(STATE_KEY)
        if isinstance(writer, AuditWriter):
            await writer.settle()

    async def entries(
        self, contact_id: uuid.UUID, *, limit: int = 200, before: uuid.UUID | None = None
    ) -> list[AuditEntryOut]:
        """A subject's entries, newest first; details read as ``[erased]`` after erasure."""
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit is 1 to 10000", field="limit")
        await self.settle()
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
        await self.settle()
        return int(await AuditEntry.count().where(AuditEntry.contact_id == contact_id).run())
