"""Crypto-shredding: destroy one subject's data key so that all their encrypted data, in the
database and in every backup of it, can never be read again.

The key row is deleted, a tombstone records who shredded whom and when (no personal data), and
the subject's blind indexes are replaced by values that match nothing and their name search
tokens and duplicate pairs deleted, so lookups, searches and duplicate scans stop finding
them. Reads of the subject's fields then return ``[erased]``. Shredding twice is a no-op that
reports the first time. Once the shred has
committed, the storage the key row lived in is scrubbed (the SQLite write-ahead log checkpointed
and truncated, the PostgreSQL key table vacuumed, and rewritten by the worker within the hour),
so the wrapped key is not left behind in the database's own files.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from kith import name_index
from kith.actor import SYSTEM, Actor
from kith.errors import NotFound
from kith.events import EventType, utcnow
from kith.logs import get_logger
from kith.privacy.encryption.protector import protector_of
from kith.privacy.encryption.tables import DataKey, Tombstone
from kith.runtime import Kith
from kith.services import duplicates
from kith.services.contacts import ContactService
from piccolo.engine.postgres import PostgresEngine

_log = get_logger("kith.privacy")

SHREDDED_EVENT = EventType(
    "subject.shredded",
    "A data subject's data key was destroyed: their personal fields now read as [erased].",
    ("contact_id",),
    evidence=True,
)
ERASED_LOOKUP_PREFIX = "erased:"
# A deleted row outlives a scrub while a transaction older than the delete is still running (a
# backup being taken, a long report): PostgreSQL keeps it for that transaction, and a reader
# keeps SQLite from truncating its log. And on PostgreSQL only a rewrite of the table removes
# the row's bytes from its page, which costs in proportion to the table, too much for every
# erasure. So the worker scrubs again, rewriting, every hour for this long after each shred.
RESCRUB_EVERY = dt.timedelta(hours=1)
RESCRUB_FOR = dt.timedelta(hours=24)


@dataclass(frozen=True)
class ShredResult:
    contact_id: uuid.UUID
    shredded_at: dt.datetime
    already: bool
    lookups_cleared: int


def erased_lookup(row_id: uuid.UUID) -> str:
    """A blind-index value that matches no lookup and stays unique per row (unique indexes on
    the lookup column keep working for the rows that are left)."""
    return f"{ERASED_LOOKUP_PREFIX}{row_id.hex}"


async def shred(
    kith: Kith, contact_id: uuid.UUID, actor: Actor = SYSTEM, reason: str = ""
) -> ShredResult:
    """Destroy ``contact_id``'s data key, clear their blind indexes, leave a tombstone."""
    protector = protector_of(kith)
    registry = protector.context["registry"]
    async with kith.unit_of_work(actor) as uow:
        keys = await DataKey.select(DataKey.id).where(DataKey.subject == contact_id).run()
        tombstone = await Tombstone.select().where(Tombstone.subject == contact_id).first()
        if not keys and tombstone is None and not await ContactService(kith).exists(contact_id):
            raise NotFound(f"contact {contact_id} does not exist and has no data key")
        key_id = keys[0]["id"] if keys else None
        await DataKey.delete().where(DataKey.subject == contact_id).run()
        now = utcnow()
        if tombstone is None:
            await Tombstone.insert(
                Tombstone(
                    subject=contact_id,
                    data_key_id=key_id,
                    shredded_at=now,
                    actor=actor.ref,
                    reason=reason[:200],
                )
            ).run()
        cleared = 0
        for personal in registry.tables.values():
            table = personal.table
            if not any(f.searchable for f in personal.fields) or personal.subject_column is None:
                continue
            lookup = table._meta.get_column_by_name("lookup") if _has(table, "lookup") else None
            if lookup is None:
                continue
            subject = table._meta.get_column_by_name(personal.subject_column)
            pk = table._meta.primary_key
            rows = await table.select(pk, lookup).where(subject == contact_id).run()
            for row in rows:
                row_id = row[pk._meta.name]
                if row["lookup"] is None or str(row["lookup"]).startswith(ERASED_LOOKUP_PREFIX):
                    continue
                await table.update({lookup: erased_lookup(row_id)}).where(pk == row_id).run()
                cleared += 1
        await name_index.forget_subject(contact_id)
        # A shredded subject reads "[erased]": it is nobody's duplicate any more.
        await duplicates.forget([contact_id])
        if tombstone is None:
            uow.publish(SHREDDED_EVENT.name, contact_id, contact_id=str(contact_id))
        if keys:
            uow.after_commit(lambda: scrub_key_storage(kith, rewrite=False))
    protector.keys.forget(contact_id, key_id)
    return ShredResult(
        contact_id=contact_id,
        shredded_at=tombstone["shredded_at"] if tombstone is not None else now,
        already=tombstone is not None,
        lookups_cleared=cleared,
    )


async def scrub_key_storage(kith: Kith, rewrite: bool = True) -> None:
    """Leave no copy of deleted key rows in the database's own files.

    SQLite zeroes deleted rows in place (``secure_delete``, set on every connection), but the
    write-ahead log still holds the pages as they were before the delete until a checkpoint,
    which this forces and then truncates the log to nothing. PostgreSQL keeps a deleted row in
    its page until VACUUM; a plain VACUUM (cheap: it visits the pages that changed) removes the
    row, but its bytes stay in the page's free space until ``rewrite`` rebuilds the table
    (VACUUM FULL, in proportion to the table and holding its lock while it runs). VACUUM cannot
    run inside a transaction: hence after the commit."""
    engine = kith.database.engine
    if isinstance(engine, PostgresEngine):
        full = "FULL " if rewrite else ""
        await engine.run_ddl(f'VACUUM {full}"{DataKey._meta.tablename}"')
        return
    result = await engine.run_ddl("PRAGMA wal_checkpoint(TRUNCATE)")
    busy = bool(result and result[0].get("busy"))
    if busy:
        # Another process was reading; the next shred's checkpoint (or SQLite's own) completes it.
        _log.warning("the write-ahead log could not be truncated after a shred: a reader held it")


async def rescrub_after_recent_shreds(kith: Kith) -> bool:
    """The worker's hourly job: scrub again, rewriting, while a shred is recent; whether it
    did."""
    recent = Tombstone.shredded_at > utcnow() - RESCRUB_FOR
    if not await Tombstone.exists().where(recent):
        return False
    await scrub_key_storage(kith, rewrite=True)
    return True


def _has(table: type, name: str) -> bool:
    return any(column._meta.name == name for column in table._meta.columns)  # type: ignore[attr-defined]
