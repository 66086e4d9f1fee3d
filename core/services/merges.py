"""Merging duplicate contacts into one, and undoing a merge within its window.

A merge runs in one transaction: every plugin moves its rows about the losers to the survivor
(``kith_subject_merge``; core's own part runs last, then deletes the losers' records), a merge
record keeps what undoing needs sealed under the survivor's data key, ``contact.merged`` is
published and the accesses are audited. Until ``undo_until`` (the ``merge_undo_days``
setting) the merge can be undone: the losers come back with their ids and everything that was
theirs (``kith_subject_unmerge``). Then, or once undone, the sealed copy is deleted.

Rules: every contact merged must be of one kind; a contact whose data may not be processed
(a restriction under Art. 18, records under a legal hold) is refused with 409 by the plugins'
processing check (``contact.merge``, and ``contact.unmerge`` for the survivor of an undo), and
a plugin may refuse in its merge hook (the requests plugin does while a request about one of
them is open); an undo is refused once the survivor has changed, or was merged itself, since.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
from kith.actor import SYSTEM, Actor
from kith.errors import Conflict, InvalidInput, NotFound
from kith.events import utcnow
from kith.ids import new_id
from kith.merge_records import merged_into
from kith.merging import FIELD_CHOICE, choice_names, merge_rows, unmerge_rows
from kith.runtime import Kith
from kith.schemas import MAX_MERGE_LOSERS, MergeIn, MergeOut
from kith.services.contacts import default_channel
from kith.subject_checks import check_processing, record_access
from kith.tables import Contact, CustomField, Merge, MergedContact

MERGE_TABLE = str(Merge._meta.tablename)
CORE = "kith"
MERGE_ACTIVITY = "contact.merge"
UNMERGE_ACTIVITY = "contact.unmerge"


class MergeService:
    """Merges, for one channel (``api``, ``cli``...), under which accesses are audited."""

    def __init__(
        self, kith: Kith, channel: str | None = None, context: Mapping[str, Any] | None = None
    ) -> None:
        self.kith = kith
        self.channel = channel
        self.context = dict(context or {})

    async def _report(
        self, contact_id: uuid.UUID, action: str, actor: Actor, **details: Any
    ) -> None:
        await record_access(
            self.kith,
            contact_id,
            action,
            actor,
            self.channel or default_channel(actor),
            **self.context,
            **details,
        )

    # -- merging -----------------------------------------------------------------------------

    async def merge(
        self,
        survivor: uuid.UUID,
        losers: list[uuid.UUID],
        choices: Mapping[str, uuid.UUID] | None = None,
        actor: Actor = SYSTEM,
    ) -> MergeOut:
        """Merge ``losers`` into ``survivor``; ``choices`` pick whose value wins
        (:class:`kith.schemas.MergeIn`)."""
        data = msgspec.convert({"losers": losers, "choices": dict(choices or {})}, MergeIn)
        order = self._check_ids(survivor, data.losers)
        merge_id = new_id()
        now = utcnow()
        undo_days = self.kith.settings.merge_undo_days
        async with self.kith.unit_of_work(actor) as uow:
            await self._check_contacts(order)
            await self._check_choices(order, data.choices)
            for contact_id in order:
                await check_processing(self.kith, contact_id, MERGE_ACTIVITY)
            notes = await self._merge_hooks(merge_id, survivor, data.losers, data.choices)
            row = await Contact.select(Contact.updated_at).where(Contact.id == survivor).first()
            assert row is not None
            snapshot = None
            if undo_days:
                sealed = await self.kith.protector.protect(
                    survivor,
                    MERGE_TABLE,
                    merge_id,
                    {"snapshot": msgspec.json.encode(notes).decode()},
                )
                snapshot = sealed["snapshot"]
            await Merge.insert(
                Merge(
                    id=merge_id,
                    survivor=survivor,
                    actor=actor.ref,
                    at=now,
                    undo_until=now + dt.timedelta(days=undo_days),
                    state="done" if undo_days else "closed",
                    survivor_updated_at=row["updated_at"],
                    snapshot=snapshot,
                )
            ).run()
            await MergedContact.insert(
                *(
                    MergedContact(merge=merge_id, contact_id=loser, position=position)
                    for position, loser in enumerate(data.losers)
                )
            ).run()
            losers_text = [str(loser) for loser in data.losers]
            uow.publish(
                "contact.merged",
                survivor,
                contact_id=str(survivor),
                merge_id=str(merge_id),
                losers=losers_text,
            )
            # In the transaction: the record of the accesses commits with the merge.
            await self._report(survivor, "merge", actor, merge=str(merge_id), losers=losers_text)
            for loser in data.losers:
                await self._report(
                    loser, "merged_into", actor, merge=str(merge_id), survivor=str(survivor)
                )
        return await self.get(merge_id)

    @staticmethod
    def _check_ids(survivor: uuid.UUID, losers: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(losers) > MAX_MERGE_LOSERS:
            raise InvalidInput(
                f"at most {MAX_MERGE_LOSERS} contacts merge into one at a time", field="losers"
            )
        seen = {survivor}
        for index, loser in enumerate(losers):
            if loser == survivor:
                raise InvalidInput(
                    "a contact cannot be merged into itself", field=f"losers[{index}]"
                )
            if loser in seen:
                raise InvalidInput(f"{loser} is listed twice", field=f"losers[{index}]")
            seen.add(loser)
        return [survivor, *losers]

    async def _check_contacts(self, order: list[uuid.UUID]) -> None:
        query = Contact.select(Contact.id, Contact.kind).where(Contact.id.is_in(order))
        rows = await self._locked(query.order_by(Contact.id)).run()
        kinds = {row["id"]: row["kind"] for row in rows}
        survivor = order[0]
        if survivor not in kinds:
            raise await self._missing(survivor, NotFound, None)
        for index, loser in enumerate(order[1:]):
            if loser not in kinds:
                raise await self._missing(loser, InvalidInput, f"losers[{index}]")
            if kinds[loser] != kinds[survivor]:
                raise InvalidInput(
                    f"contact {loser} is a {kinds[loser]} and {survivor} a {kinds[survivor]}: "
                    "only contacts of one kind merge",
                    field=f"losers[{index}]",
                )

    def _locked(self, query: Any) -> Any:
        """``query`` locking the rows it reads until the transaction ends, on PostgreSQL (a
        merge or undo running at once for one of them waits); SQLite runs one writing
        transaction at a time anyway."""
        if self.kith.settings.database_kind == "postgresql":
            return query.lock_rows()
        return query

    @staticmethod
    async def _missing(
        contact_id: uuid.UUID, error: type[NotFound] | type[InvalidInput], field: str | None
    ) -> NotFound | InvalidInput:
        extra: dict[str, Any] = {} if field is None else {"field": field}
        merge = await merged_into(contact_id)
        if merge is not None:
            return error(
                f"contact {contact_id} was merged into {merge['survivor']}",
                merged_into=str(merge["survivor"]),
                merge_id=str(merge["id"]),
                **extra,
            )
        return error(f"contact {contact_id} does not exist", **extra)

    async def _check_choices(self, order: list[uuid.UUID], choices: dict[str, uuid.UUID]) -> None:
        known = set(choice_names())
        fields = {row["name"] for row in await CustomField.select(CustomField.name).run()}
        for name, chosen in choices.items():
            field = f"choices.{name}"
            if name.startswith(FIELD_CHOICE):
                if name.removeprefix(FIELD_CHOICE) not in fields:
                    raise InvalidInput(
                        f"{name.removeprefix(FIELD_CHOICE)!r} is not a custom field; "
                        "`kith fields list` shows them",
                        field=field,
                    )
            elif name not in known:
                raise InvalidInput(
                    f"{name!r} cannot be chosen; choose {', '.join(sorted(known))} or "
                    "fields.<name>",
                    field=field,
                )
            if chosen not in order:
                raise InvalidInput(f"{chosen} is not one of the contacts being merged", field=field)

    async def _merge_hooks(
        self,
        merge_id: uuid.UUID,
        survivor: uuid.UUID,
        losers: list[uuid.UUID],
        choices: dict[str, uuid.UUID],
    ) -> dict[str, Any]:
        """Every part's note, by plugin name (core's is ``kith``)."""
        plugins = self.kith.plugins
        if plugins is None or not plugins.implements("kith_subject_merge"):
            return {CORE: await merge_rows(self.kith, survivor, losers, choices)}
        results = await plugins.call_async(
            "kith_subject_merge",
            kith=self.kith,
            merge_id=merge_id,
            survivor=survivor,
            losers=list(losers),
            choices=dict(choices),
        )
        notes = {result.plugin: result.value for result in results}
        for name, note in notes.items():
            try:
                msgspec.json.encode(note)
            except (TypeError, msgspec.EncodeError) as exc:
                raise TypeError(
                    f"plugin {name!r} answered kith_subject_merge with what JSON cannot hold: {exc}"
                ) from None
        return notes

    # -- reading -----------------------------------------------------------------------------

    async def get(self, merge_id: uuid.UUID) -> MergeOut:
        row = await Merge.select().where(Merge.id == merge_id).first().run()
        if row is None:
            raise NotFound(f"merge {merge_id} does not exist")
        losers = await (
            MergedContact.select(MergedContact.contact_id)
            .where(MergedContact.merge == merge_id)
            .order_by(MergedContact.position)
            .run()
        )
        return MergeOut(
            id=row["id"],
            contact_id=row["survivor"],
            losers=[loser["contact_id"] for loser in losers],
            actor=row["actor"],
            merged_at=row["at"],
            undo_until=row["undo_until"],
            state=row["state"],
            can_undo=row["state"] == "done" and utcnow() < row["undo_until"],
            undone_at=row["undone_at"],
            undone_by=row["undone_by"],
        )

    # -- undoing -----------------------------------------------------------------------------

    async def undo(self, merge_id: uuid.UUID, actor: Actor = SYSTEM) -> MergeOut:
        """Undo a merge: the losers exist again as they were, with everything that was theirs;
        what the survivor gained since stays with it."""
        now = utcnow()
        async with self.kith.unit_of_work(actor) as uow:
            merge = await self.get(merge_id)
            self._check_undo(merge, now)
            # Claimed first: a second undo running at once finds it taken and stops here.
            claimed = await (
                Merge.update(
                    {Merge.state: "undone", Merge.undone_at: now, Merge.undone_by: actor.ref}
                )
                .where((Merge.id == merge_id) & (Merge.state == "done"))
                .returning(Merge.snapshot, Merge.survivor_updated_at)
                .run()
            )
            if not claimed:
                raise Conflict(f"merge {merge_id} is being undone or was undone already")
            survivor = merge.contact_id
            await self._check_survivor(survivor, claimed[0]["survivor_updated_at"], merge_id)
            await check_processing(self.kith, survivor, UNMERGE_ACTIVITY)
            opened = await self.kith.protector.reveal(
                survivor, MERGE_TABLE, merge_id, {"snapshot": claimed[0]["snapshot"]}
            )
            notes = msgspec.json.decode(opened["snapshot"] or "{}")
            await self._unmerge_hooks(merge_id, survivor, merge.losers, notes)
            await Merge.update({Merge.snapshot: None}).where(Merge.id == merge_id).run()
            losers_text = [str(loser) for loser in merge.losers]
            uow.publish(
                "contact.unmerged",
                survivor,
                contact_id=str(survivor),
                merge_id=str(merge_id),
                losers=losers_text,
            )
            await self._report(survivor, "unmerge", actor, merge=str(merge_id), losers=losers_text)
            for loser in merge.losers:
                await self._report(loser, "unmerge", actor, merge=str(merge_id))
        return await self.get(merge_id)

    @staticmethod
    def _check_undo(merge: MergeOut, now: dt.datetime) -> None:
        if merge.state == "undone":
            raise Conflict(f"merge {merge.id} was undone already")
        if merge.state == "closed" or now >= merge.undo_until:
            raise Conflict(
                f"merge {merge.id} can no longer be undone: its undo window closed at "
                f"{merge.undo_until.isoformat()}",
                undo_until=merge.undo_until.isoformat(),
            )

    async def _check_survivor(
        self, survivor: uuid.UUID, updated_at: dt.datetime, merge_id: uuid.UUID
    ) -> None:
        query = Contact.select(Contact.updated_at).where(Contact.id == survivor)
        row = await self._locked(query).first().run()
        if row is None:
            later = await merged_into(survivor)
            if later is not None:
                raise Conflict(
                    f"contact {survivor} was merged into {later['survivor']} since; undo merge "
                    f"{later['id']} first",
                    merge_id=str(later["id"]),
                )
            raise Conflict(
                f"contact {survivor} no longer exists; merge {merge_id} cannot be undone"
            )
        if row["updated_at"] != updated_at:
            raise Conflict(
                f"contact {survivor} was changed after the merge; undoing it would lose those "
                "changes, so it is refused"
            )

    async def _unmerge_hooks(
        self,
        merge_id: uuid.UUID,
        survivor: uuid.UUID,
        losers: list[uuid.UUID],
        notes: dict[str, Any],
    ) -> None:
        plugins = self.kith.plugins
        if plugins is None or not plugins.implements("kith_subject_unmerge"):
            await unmerge_rows(self.kith, survivor, notes[CORE])
            return
        answering = plugins.implementers("kith_subject_unmerge")
        missing = sorted(
            name for name, note in notes.items() if note is not None and name not in answering
        )
        if missing:
            raise Conflict(
                f"plugin {missing[0]} moved rows in this merge and cannot move them back now "
                "(it is not loaded, or does not answer kith_subject_unmerge); enable it to undo "
                "the merge",
                plugin=missing[0],
            )
        for name in answering:
            await plugins.call_one(
                name,
                "kith_subject_unmerge",
                kith=self.kith,
                merge_id=merge_id,
                survivor=survivor,
                losers=list(losers),
                note=notes.get(name),
            )

    # -- the undo window ----------------------------------------------------------------------

    async def close_expired(self) -> int:
        """Delete what undoing needed from merges whose window has passed; how many."""
        closed = await (
            Merge.update({Merge.state: "closed", Merge.snapshot: None})
            .where((Merge.state == "done") & (Merge.undo_until <= utcnow()))
            .returning(Merge.id)
            .run()
        )
        return len(closed)
