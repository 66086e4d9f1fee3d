"""Duplicate contacts: scan for pairs that may be one person, list them, dismiss them.

A scan takes its candidates from keyed blocking keys (:mod:`kith.duplicate_keys`): contacts
that share two words of their names, an email address or a phone number. Only the contacts of
candidate pairs are decrypted, each reported to the audit log (``duplicate_check``), and scored
(:mod:`kith.duplicate_scoring`). Pairs that score at least the threshold, or share an email or
a phone, are kept in ``kith_duplicate_pair`` with their score and reasons, nothing personal.

An *incremental* scan checks only the contacts created or changed since the last scan began; a
*full* scan checks everyone and drops the pending pairs it no longer finds. A pair marked "not
a duplicate" (dismissed) is never proposed again, whatever later scans find.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import msgspec
from kith import duplicate_keys, name_index
from kith.actor import SYSTEM, Actor
from kith.duplicate_keys import Candidates, Pair
from kith.duplicate_scoring import Side, comparable, proposed, score
from kith.duplicate_settings import DuplicateSettings
from kith.errors import InvalidInput, NotFound
from kith.events import utcnow
from kith.ids import new_id
from kith.outbox import as_time
from kith.pagination import check_limit, decode_cursor, encode_cursor
from kith.runtime import Kith
from kith.schemas import (
    DuplicateContact,
    DuplicatePairOut,
    DuplicateScanOut,
    DuplicateStatus,
    Page,
)
from kith.services import is_foreign_key_violation
from kith.services.contacts import default_channel, preload_keys
from kith.services.fields import FieldService
from kith.subject_checks import record_access
from kith.tables import Contact, CustomField, DuplicateBlock, DuplicatePair, DuplicateScan

CONTACT_TABLE = Contact._meta.tablename
NAME_COLUMNS = ("display_name", "given_name", "family_name")
# Pairs scored (and their contacts read and decrypted) at a time.
BATCH = 500
# Contacts a scan takes at a time: a block of contacts sharing a key is read once for each
# step that holds one of them, so larger steps read less again.
STEP = 2000
# An incremental scan looks back this far before the last scan began: a change committed
# after that scan had started, but stamped before, is not missed.
LOOK_BACK = dt.timedelta(minutes=5)
# Contacts a scan keeps decrypted for pairs still to come, the latest read: a contact met again
# after that many others is decrypted (and reported) again, and memory stays bounded.
SIDES_KEPT = 100_000
# Scans remembered (the newest; older records are deleted).
SCANS_KEPT = 50
# The action reported for each contact a scan decrypts.
CHECK_ACTION = "duplicate_check"


async def forget(contact_ids: Iterable[uuid.UUID]) -> int:
    """Delete every pair of these contacts, pending or dismissed (a merge calls it for the
    contacts merged away); how many. In the caller's transaction, when there is one."""
    ids = list(dict.fromkeys(contact_ids))
    if not ids:
        return 0
    where = DuplicatePair.contact_a.is_in(ids) | DuplicatePair.contact_b.is_in(ids)
    count = int(await DuplicatePair.count().where(where).run())
    if count:
        await DuplicatePair.delete().where(where).run()
    return count


class DuplicateService:
    """Duplicate pairs, for one channel (``api``, ``cli``...); every decrypted contact is
    reported with the actor given and this channel, as :class:`ContactService` does."""

    def __init__(
        self, kith: Kith, channel: str | None = None, context: Mapping[str, Any] | None = None
    ) -> None:
        self.kith = kith
        self.channel = channel
        self.context = dict(context or {})
        self.settings = DuplicateSettings.from_settings(kith.settings)

    async def _report(self, contact_ids: Iterable[uuid.UUID], action: str, actor: Actor) -> None:
        channel = self.channel or default_channel(actor)
        # Together, so that an audit log that commits each entry before answering commits
        # them at once.
        await asyncio.gather(
            *(
                record_access(self.kith, contact_id, action, actor, channel, **self.context)
                for contact_id in dict.fromkeys(contact_ids)
            )
        )

    # -- scanning ----------------------------------------------------------------------------

    async def scan(self, *, full: bool = False, actor: Actor = SYSTEM) -> DuplicateScanOut:
        """Look for duplicates among the contacts new or changed since the last scan (all of
        them on the first scan, or with ``full``) and keep the pairs found."""
        started = utcnow()
        since = None if full else await self._last_start()
        mode = "full" if since is None else "incremental"
        scan_id = new_id()
        await DuplicateScan.insert(DuplicateScan(id=scan_id, mode=mode, started_at=started)).run()
        names = await name_index.name_index(self.kith).complete()
        run = _Run(self, started, actor)
        contacts = 0
        if since is None:
            run.skipped_count = await duplicate_keys.mark_blocks(
                scan_id, self.settings.max_block, names=names
            )
            try:
                async for chunk in _all_contacts():
                    contacts += len(chunk)
                    found = await duplicate_keys.pairs_from(
                        scan_id, chunk[0], chunk[-1], names=names
                    )
                    await run.score(found, remember=False)
            finally:
                await DuplicateBlock.delete().where(DuplicateBlock.scan == scan_id).run()
            # Every pending pair this scan did not confirm is gone.
            await _drop_stale(started)
        else:
            async for chunk in _changed_since(since - LOOK_BACK):
                contacts += len(chunk)
                found = await duplicate_keys.of_contacts(
                    chunk, self.settings.max_block, names=names, common=run.skipped
                )
                await run.score(found)
                # Their pending pairs this scan did not confirm are gone (a name changed).
                await _drop_stale(started, chunk)
        new = int(
            await DuplicatePair.count()
            .where((DuplicatePair.status == "pending") & (DuplicatePair.found_at >= started))
            .run()
        )
        finished = utcnow()
        await (
            DuplicateScan.update(
                {
                    DuplicateScan.finished_at: finished,
                    DuplicateScan.contacts: contacts,
                    DuplicateScan.compared: run.compared,
                    DuplicateScan.found: run.found,
                    DuplicateScan.skipped_keys: run.skipped_keys,
                }
            )
            .where(DuplicateScan.id == scan_id)
            .run()
        )
        await _forget_old_scans()
        return DuplicateScanOut(
            mode=mode,
            contacts=contacts,
            compared=run.compared,
            found=run.found,
            new=new,
            skipped_keys=run.skipped_keys,
            name_index=names,
            started_at=started,
            finished_at=finished,
        )

    async def _last_start(self) -> dt.datetime | None:
        row = await (
            DuplicateScan.select(DuplicateScan.started_at)
            .where(DuplicateScan.finished_at.is_not_null())
            .order_by(DuplicateScan.started_at, ascending=False)
            .first()
            .run()
        )
        return None if row is None else as_time(row["started_at"])

    async def sides(self, contact_ids: Sequence[uuid.UUID], actor: Actor) -> dict[uuid.UUID, Side]:
        """What is compared of these contacts (the live ones), decrypted and reported."""
        if not contact_ids:
            return {}
        # By primary key alone: with ``archived`` in SQL too, SQLite may prefer that column's
        # index and read every live contact for each batch.
        rows = [
            row
            for row in await Contact.select(
                Contact.id, Contact.kind, Contact.organization, Contact.archived, *_name_columns()
            )
            .where(Contact.id.is_in(list(contact_ids)))
            .run()
            if not row["archived"]
        ]
        ids = [row["id"] for row in rows]
        await preload_keys(self.kith, ids)
        cities = await self._cities(ids)
        found: dict[uuid.UUID, Side] = {}
        for row in rows:
            plain = await self.kith.protector.reveal(
                row["id"], CONTACT_TABLE, row["id"], {c: row[c] for c in NAME_COLUMNS}
            )
            parts = " ".join(p for p in (plain["given_name"], plain["family_name"]) if p)
            names = tuple(
                dict.fromkeys(
                    n for n in (comparable(plain["display_name"]), comparable(parts)) if n
                )
            )
            found[row["id"]] = Side(
                kind=row["kind"],
                names=names,
                organization=row["organization"],
                city=cities.get(row["id"]),
            )
        await self._report(ids, CHECK_ACTION, actor)
        return found

    async def _cities(self, contact_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The city of each contact that has one, when the city field is declared."""
        name = self.settings.city_field
        if not name or not contact_ids:
            return {}
        declared = await CustomField.exists().where(
            (CustomField.name == name) & (CustomField.archived == False)  # noqa: E712
        )
        if not declared:
            return {}
        values = await FieldService(self.kith).values_of(contact_ids)
        found = {}
        for contact_id, fields in values.items():
            city = comparable(str(fields.get(name) or ""))
            if city:
                found[contact_id] = city
        return found

    # -- listing and deciding ----------------------------------------------------------------

    async def get(self, pair_id: uuid.UUID, actor: Actor = SYSTEM) -> DuplicatePairOut:
        """One pair of live contacts; the two contacts are reported as read."""
        pair = await self._read(pair_id)
        await self._report(_contacts_of([pair]), "read", actor)
        return pair

    async def dismiss(self, pair_id: uuid.UUID, actor: Actor = SYSTEM) -> DuplicatePairOut:
        """Mark a pair "not a duplicate": no scan proposes it again. Dismissing it twice
        changes nothing."""
        async with self.kith.unit_of_work(actor):
            await self._read(pair_id)
            await (
                DuplicatePair.update(
                    {
                        DuplicatePair.status: "dismissed",
                        DuplicatePair.decided_by: actor.ref,
                        DuplicatePair.decided_at: utcnow(),
                    }
                )
                .where((DuplicatePair.id == pair_id) & (DuplicatePair.status == "pending"))
                .run()
            )
        return await self.get(pair_id, actor)

    async def forget(self, contact_ids: Iterable[uuid.UUID]) -> int:
        """Delete every pair of these contacts (see :func:`forget`)."""
        return await forget(contact_ids)

    async def _read(self, pair_id: uuid.UUID) -> DuplicatePairOut:
        rows = await _pairs_query().where(DuplicatePair.id == pair_id).run()
        if not rows:
            raise NotFound(
                f"duplicate pair {pair_id} does not exist (or one of its contacts was archived, "
                "erased or merged)"
            )
        return (await self._pairs_out(rows))[0]

    async def _pairs_out(self, rows: list[dict[str, Any]]) -> list[DuplicatePairOut]:
        await preload_keys(self.kith, [row[f"{side}.id"] for row in rows for side in _SIDES])
        found = []
        for row in rows:
            sides = []
            for side in _SIDES:
                contact_id = row[f"{side}.id"]
                plain = await self.kith.protector.reveal(
                    contact_id,
                    CONTACT_TABLE,
                    contact_id,
                    {"display_name": row[f"{side}.display_name"]},
                )
                sides.append(
                    DuplicateContact(
                        id=contact_id, kind=row[f"{side}.kind"], name=plain["display_name"] or ""
                    )
                )
            found.append(
                DuplicatePairOut(
                    id=row["id"],
                    contact_a=sides[0],
                    contact_b=sides[1],
                    score=int(row["score"]),
                    reasons=_reasons(row["reasons"]),
                    status=row["status"],
                    found_at=row["found_at"],
                    decided_at=row["decided_at"],
                    decided_by=row["decided_by"],
                )
            )
        return found

    # The last method: its name hides the built-in ``list`` in the class body.
    async def list(
        self,
        *,
        contact_id: uuid.UUID | None = None,
        status: DuplicateStatus = "pending",
        cursor: str | None = None,
        limit: int = 50,
        actor: Actor = SYSTEM,
    ) -> Page[DuplicatePairOut]:
        """Pairs of live contacts (not archived, not erased), best score first; ``contact_id``
        keeps the pairs of that contact. The contacts shown are reported as read (``list``)."""
        limit = check_limit(limit)
        query = _pairs_query().where(DuplicatePair.status == status)
        if contact_id is not None:
            query = query.where(
                (DuplicatePair.contact_a == contact_id) | (DuplicatePair.contact_b == contact_id)
            )
        if cursor:
            after_score, after_id = _decode_pair_cursor(cursor)
            query = query.where(
                (DuplicatePair.score < after_score)
                | ((DuplicatePair.score == after_score) & (DuplicatePair.id > after_id))
            )
        rows = await (
            query.order_by(DuplicatePair.score, ascending=False)
            .order_by(DuplicatePair.id)
            .limit(limit + 1)
            .run()
        )
        items = await self._pairs_out(rows[:limit])
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(items[-1].score, items[-1].id)
        await self._report(_contacts_of(items), "list", actor)
        return Page(items=items, next_cursor=next_cursor)


class _Run:
    """One scan's scoring and storing: each pair compared once, contacts decrypted once while
    they are among the last :data:`SIDES_KEPT` read."""

    def __init__(self, service: DuplicateService, started: dt.datetime, actor: Actor) -> None:
        self.service = service
        self.started = started
        self.actor = actor
        self.threshold = service.settings.threshold
        # Pairs already compared (a full scan meets each pair once and keeps none).
        self.seen: set[Pair] = set()
        # Side of each contact read lately; None: not live.
        self.sides: OrderedDict[uuid.UUID, Side | None] = OrderedDict()
        # Keys too common to use: found one batch at a time, or counted at once.
        self.skipped: set[Any] = set()
        self.skipped_count = 0
        self.compared = 0
        self.found = 0

    @property
    def skipped_keys(self) -> int:
        return self.skipped_count + len(self.skipped)

    async def score(self, candidates: Candidates, remember: bool = True) -> None:
        self.skipped |= candidates.skipped
        todo = sorted(pair for pair in candidates.pairs if pair not in self.seen)
        if remember:
            self.seen.update(todo)
        dismissed = await _dismissed(todo)
        todo = [pair for pair in todo if pair not in dismissed]
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            sides = await self._sides({contact for pair in batch for contact in pair})
            keep: list[tuple[Pair, int, list[str]]] = []
            for pair in batch:
                first, second = sides.get(pair[0]), sides.get(pair[1])
                if first is None or second is None:
                    continue  # archived, erased or merged meanwhile
                self.compared += 1
                scored = score(first, second, candidates.pairs[pair])
                if scored is not None and proposed(*scored, self.threshold):
                    keep.append((pair, *scored))
            await _store(keep, self.started)
            self.found += len(keep)

    async def _sides(self, contact_ids: set[uuid.UUID]) -> dict[uuid.UUID, Side | None]:
        missing = sorted(contact for contact in contact_ids if contact not in self.sides)
        read = await self.service.sides(missing, self.actor)
        for contact in missing:
            self.sides[contact] = read.get(contact)
        found = {}
        for contact in contact_ids:
            self.sides.move_to_end(contact)
            found[contact] = self.sides[contact]
        while len(self.sides) > SIDES_KEPT:
            self.sides.popitem(last=False)
        return found


async def _dismissed(pairs: Sequence[Pair]) -> set[Pair]:
    """Which of these pairs were dismissed: they are not even decrypted again."""
    found: set[Pair] = set()
    firsts = sorted({first for first, _ in pairs})
    for start in range(0, len(firsts), BATCH):
        rows = await (
            DuplicatePair.select(DuplicatePair.contact_a, DuplicatePair.contact_b)
            .where(
                DuplicatePair.contact_a.is_in(firsts[start : start + BATCH])
                & (DuplicatePair.status == "dismissed")
            )
            .run()
        )
        found.update((row["contact_a"], row["contact_b"]) for row in rows)
    return found


async def _store(pairs: Sequence[tuple[Pair, int, list[str]]], now: dt.datetime) -> None:
    """Insert new pairs, refresh pending ones; a dismissed pair stays as it is."""
    rows = [
        (new_id(), first, second, total, msgspec.json.encode(reasons).decode(), now)
        for (first, second), total, reasons in pairs
    ]
    try:
        await _upsert(rows)
    except Exception as exc:
        if not is_foreign_key_violation(exc):
            raise
        # A contact was erased or deleted since it was read: keep the pairs of the others.
        ids = list({row[1] for row in rows} | {row[2] for row in rows})
        alive = {r["id"] for r in await Contact.select(Contact.id).where(Contact.id.is_in(ids))}
        await _upsert([row for row in rows if row[1] in alive and row[2] in alive])


# One multi-row statement per batch: building piccolo's insert costs more per row than running it.
_UPSERT = (
    "INSERT INTO kith_duplicate_pair "
    "(id, contact_a, contact_b, score, reasons, status, found_at, checked_at) VALUES {} "
    "ON CONFLICT (contact_a, contact_b) DO UPDATE SET score = excluded.score, "
    "reasons = excluded.reasons, checked_at = excluded.checked_at "
    "WHERE kith_duplicate_pair.status = 'pending'"
)


async def _upsert(rows: Sequence[tuple[Any, ...]]) -> None:
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        values = ", ".join("({}, {}, {}, {}, {}, 'pending', {}, {})" for _ in chunk)
        await DuplicatePair.raw(
            _UPSERT.format(values),
            *[value for row in chunk for value in (*row, row[-1])],
        ).run()


async def _all_contacts() -> AsyncIterator[list[uuid.UUID]]:
    """Every live contact, in id order, a batch at a time."""
    after: uuid.UUID | None = None
    while True:
        # By primary key alone (see DuplicateService.sides); archived ones are left out here.
        query = Contact.select(Contact.id, Contact.archived)
        if after is not None:
            query = query.where(Contact.id > after)
        rows = await query.order_by(Contact.id).limit(STEP).run()
        if not rows:
            return
        chunk = [row["id"] for row in rows if not row["archived"]]
        if chunk:
            yield chunk
        after = rows[-1]["id"]
        if len(rows) < STEP:
            return


async def _changed_since(moment: dt.datetime) -> AsyncIterator[list[uuid.UUID]]:
    """The contacts created or changed since ``moment`` (archived ones too: their pending
    pairs go), in id order, a batch at a time."""
    after: uuid.UUID | None = None
    while True:
        query = Contact.select(Contact.id).where(Contact.updated_at >= moment)
        if after is not None:
            query = query.where(Contact.id > after)
        rows = await query.order_by(Contact.id).limit(STEP).run()
        if not rows:
            return
        chunk = [row["id"] for row in rows]
        yield chunk
        after = chunk[-1]
        if len(rows) < STEP:
            return


async def _drop_stale(started: dt.datetime, contact_ids: list[uuid.UUID] | None = None) -> None:
    """Delete the pending pairs (of these contacts) that the scan begun at ``started`` did not
    confirm."""
    condition = (DuplicatePair.status == "pending") & (DuplicatePair.checked_at < started)
    if contact_ids is not None:
        condition &= DuplicatePair.contact_a.is_in(contact_ids) | DuplicatePair.contact_b.is_in(
            contact_ids
        )
    await DuplicatePair.delete().where(condition).run()


async def _forget_old_scans() -> None:
    """Keep the latest :data:`SCANS_KEPT` scans; a scan that never finished (its process
    died) goes after a day, with the keys it had written."""
    await (
        DuplicateScan.delete()
        .where(
            DuplicateScan.finished_at.is_null()
            & (DuplicateScan.started_at < utcnow() - dt.timedelta(days=1))
        )
        .run()
    )
    kept = await (
        DuplicateScan.select(DuplicateScan.started_at)
        .order_by(DuplicateScan.started_at, ascending=False)
        .offset(SCANS_KEPT - 1)
        .limit(1)
        .first()
        .run()
    )
    if kept is not None:
        await DuplicateScan.delete().where(DuplicateScan.started_at < kept["started_at"]).run()


_SIDES = ("contact_a", "contact_b")


def _name_columns() -> list[Any]:
    return [Contact._meta.get_column_by_name(name) for name in NAME_COLUMNS]


def _pairs_query() -> Any:
    """Pairs whose two contacts are live, as the contact list counts them (not archived;
    erased contacts are deleted or archived shells; merged ones leave no pair, see forget)."""
    a, b = DuplicatePair.contact_a, DuplicatePair.contact_b
    return DuplicatePair.select(
        DuplicatePair.id,
        DuplicatePair.score,
        DuplicatePair.reasons,
        DuplicatePair.status,
        DuplicatePair.found_at,
        DuplicatePair.decided_at,
        DuplicatePair.decided_by,
        a.id,
        a.kind,
        a.display_name,
        b.id,
        b.kind,
        b.display_name,
    ).where((a.archived == False) & (b.archived == False))  # noqa: E712


def _contacts_of(pairs: Sequence[DuplicatePairOut]) -> list[uuid.UUID]:
    return [contact.id for pair in pairs for contact in (pair.contact_a, pair.contact_b)]


def _reasons(value: Any) -> list[Any]:
    if isinstance(value, str):
        return list(msgspec.json.decode(value))
    return list(value or [])


def _decode_pair_cursor(cursor: str) -> tuple[int, uuid.UUID]:
    score_text, id_text = decode_cursor(cursor, 2)
    try:
        return int(score_text), uuid.UUID(id_text)
    except ValueError:
        raise InvalidInput("the cursor is not one this server handed out", field="cursor") from None
