"""Applying 1C's counterparties and documents to Kith: contacts found or made, orders logged
on their timelines, and a link per 1C object so that the same file sent again changes nothing.

A batch of items is one unit of work. When an item of it is refused (bad data, a suppressed
person), the batch is rolled back and applied again item by item, each alone, so that one bad
document costs only itself and nothing is half-written.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from kith import (
    Actor,
    ContactCreate,
    ContactIntake,
    ContactOut,
    ContactPatch,
    ContactService,
    EmailIn,
    InteractionCreate,
    InteractionPatch,
    InteractionService,
    InvalidInput,
    Kith,
    KithError,
    PhoneIn,
    get_logger,
    new_id,
    utcnow,
)
from kith.plugins.onec.commerceml import Counterparty, Document, Item, document_time, read_items
from kith.plugins.onec.fields import usable_fields
from kith.plugins.onec.mapping import (
    CONTACT_FIELDS,
    CUSTOM,
    LEGAL_FIELDS,
    SYNCED_FIELDS,
    counterparty_values,
    normalised_points,
    order_facts,
)
from kith.plugins.onec.settings import OnecSettings, onec_settings
from kith.plugins.onec.tables import OnecConflict, OnecLink, OnecOrder, json_value

ONEC_ACTOR = Actor(kind="plugin", name="onec")
CHANNEL = "onec"
SOURCE = "onec"
COUNTERPARTY = "counterparty"
DOCUMENT = "document"
MAX_ERRORS = 20

_log = get_logger(__name__)


class ImportCounts(msgspec.Struct, kw_only=True):
    """What an import did (no personal data: errors name 1C ids and Kith's reasons)."""

    counterparties_created: int = 0
    counterparties_matched: int = 0
    counterparties_updated: int = 0
    counterparties_unchanged: int = 0
    counterparties_archived: int = 0
    counterparties_skipped: int = 0
    orders_created: int = 0
    orders_updated: int = 0
    orders_unchanged: int = 0
    orders_skipped: int = 0
    conflicts: int = 0
    invalid_contact_details: int = 0
    failed: int = 0
    errors: list[str] = []

    def add(self, other: ImportCounts) -> None:
        for name in self.__struct_fields__:
            if name == "errors":
                self.errors = (self.errors + other.errors)[:MAX_ERRORS]
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def changed(self) -> int:
        return (
            self.counterparties_created
            + self.counterparties_updated
            + self.counterparties_archived
            + self.orders_created
            + self.orders_updated
        )


def digest(item: msgspec.Struct) -> str:
    """A hash of what 1C sent for an object: equal when nothing changed."""
    return hashlib.sha256(msgspec.json.encode(item)).hexdigest()


async def _insert_all(rows: list[Any]) -> None:
    """Rows of one table gathered over a batch, in one statement."""
    if rows:
        await type(rows[0]).insert(*rows)


class _Skip(Exception):
    """An item left out on purpose (an erased person); counted, not an error."""


class OnecImporter:
    """Applies items read from 1C (CommerceML or OData) as ``actor``."""

    def __init__(self, kith: Kith, actor: Actor = ONEC_ACTOR) -> None:
        self.kith = kith
        self.actor = actor
        self.settings: OnecSettings = onec_settings(kith)
        self.contacts = ContactService(kith, channel=CHANNEL)
        self.interactions = InteractionService(kith, channel=CHANNEL)
        self.fields: frozenset[str] | None = None
        # Documents made in the open unit of work, whose links are written at its commit.
        self._fresh: dict[str, uuid.UUID] = {}

    # -- batches ---------------------------------------------------------------------------

    async def apply(self, items: list[Item]) -> ImportCounts:
        """Apply a batch in one unit of work; on a refusal, again item by item."""
        if self.fields is None:
            self.fields = await usable_fields(self.kith)
        counts = ImportCounts()
        try:
            self._fresh = {}
            async with self.kith.unit_of_work(self.actor):
                for item in items:
                    await self._apply_one(item, counts)
            return counts
        except KithError:
            pass
        counts = ImportCounts()
        for item in items:
            alone = ImportCounts()
            try:
                self._fresh = {}
                async with self.kith.unit_of_work(self.actor):
                    await self._apply_one(item, alone)
            except KithError as exc:
                alone = ImportCounts(failed=1, errors=[f"{_describe(item)}: {exc}"])
                _log.warning("1C item refused", onec_id=item.onec_id, reason=str(exc))
            counts.add(alone)
        return counts

    async def _apply_one(self, item: Item, counts: ImportCounts) -> None:
        if isinstance(item, Document):
            await self.document(item, counts)
        else:
            await self.counterparty(item, counts)

    async def import_file(
        self, path: Path, *, skip: int = 0, seconds: float | None = None
    ) -> tuple[ImportCounts, int, bool]:
        """Apply a file's items after the first ``skip``, in batches, for at most ``seconds``
        (None: to the end). Returns the counts, how many items are done in all, and whether
        the file is finished. Call :func:`kith.plugins.onec.commerceml.survey` first: a
        malformed file must fail before anything of it is applied."""
        counts = ImportCounts()
        done = skip
        deadline = None if seconds is None else time.monotonic() + seconds
        for batch in _batches(read_items(path, skip=skip), self.settings.batch_size):
            # Checked before a batch, not after: the last one ends the file with success.
            if deadline is not None and done > skip and time.monotonic() > deadline:
                return counts, done, False
            counts.add(await self.apply(batch))
            done += len(batch)
        return counts, done, True

    # -- counterparties ---------------------------------------------------------------------

    async def _link(self, kind: str, onec_id: str) -> dict[str, Any] | None:
        return (
            await OnecLink.select()
            .where((OnecLink.kind == kind) & (OnecLink.onec_id == onec_id))
            .first()
        )

    def _keyed(self, field: str, value: str) -> str:
        # A keyed hash: a plain one of a phone number could be reversed by trying them all.
        return self.kith.protector.lookup_key("onec", f"{field}\x00{value}")[-32:]

    def _contact_values(self, contact: ContactOut) -> dict[str, str]:
        values = {
            "name": contact.name
            if contact.given_name is None and contact.family_name is None
            else "",
            "given_name": contact.given_name or "",
            "family_name": contact.family_name or "",
            "emails": "\n".join(sorted(e.address for e in contact.emails)),
            "phones": "\n".join(sorted(p.number for p in contact.phones)),
        }
        for name in CUSTOM:
            value = contact.fields.get(name)
            values[name] = "" if value is None else str(value)
        return values

    async def counterparty(
        self,
        item: Counterparty,
        counts: ImportCounts,
        organization_id: uuid.UUID | None = None,
        data_version: str = "",
    ) -> uuid.UUID | None:
        """The Kith contact for a counterparty: linked, matched (ИНН, then email or phone) or
        made; updated when 1C changed it; archived when 1C marked it deleted. None when left
        out (an erased person)."""
        if not item.onec_id:
            counts.counterparties_skipped += 1
            return None
        region = self.settings.phone_region
        incoming = counterparty_values(item, region)
        points, invalid = normalised_points(item.points, region)
        counts.invalid_contact_details += invalid
        sent = digest(item)
        link = await self._link(COUNTERPARTY, item.onec_id)
        if link is not None and link["state"] == "erased":
            counts.counterparties_skipped += 1
            return None
        contact_id: uuid.UUID | None = None
        if link is not None:
            contact_id = link["kith_id"]
            if link["digest"] == sent and await self.contacts.exists(contact_id):
                counts.counterparties_unchanged += 1
                await self._representatives(item, contact_id, counts)
                return contact_id
            if not await self.contacts.exists(contact_id):
                contact_id = None
        matched = contact_id is None
        if contact_id is None:
            contact_id = await self._match(item, points)
        if contact_id is None:
            contact_id = await self._create(item, incoming, points, organization_id)
            counts.counterparties_created += 1
        else:
            if matched:
                counts.counterparties_matched += 1
            synced = dict(json_value(link["synced"])) if link is not None and not matched else {}
            if await self._update(item, contact_id, incoming, points, synced, counts):
                counts.counterparties_updated += 1
            elif not matched:
                counts.counterparties_unchanged += 1
        if item.deleted:
            contact = await self.contacts.get(contact_id, self.actor)
            if not contact.archived:
                await self.contacts.archive(contact_id, self.actor)
                counts.counterparties_archived += 1
        await self._save_link(
            COUNTERPARTY,
            item.onec_id,
            contact_id,
            contact_id,
            sent,
            {name: self._keyed(name, incoming[name]) for name in SYNCED_FIELDS},
            data_version,
        )
        await self._representatives(item, contact_id, counts)
        return contact_id

    async def _representatives(
        self, item: Counterparty, contact_id: uuid.UUID, counts: ImportCounts
    ) -> None:
        organization = contact_id if item.kind == "organization" else None
        for rep in item.representatives:
            if not rep.onec_id:
                # Without its own Ид a representative is known by its organization and name.
                named = self._keyed("representative", rep.name)[-16:]
                rep = msgspec.structs.replace(rep, onec_id=f"{item.onec_id}/{named}")
            await self.counterparty(rep, counts, organization_id=organization)

    async def _match(
        self, item: Counterparty, points: list[tuple[str, str, str]]
    ) -> uuid.UUID | None:
        if item.inn and "inn" in (self.fields or ()):
            try:
                page = await self.contacts.list(
                    fields={"inn": item.inn}, limit=2, include_archived=True, actor=self.actor
                )
            except InvalidInput:
                # The ИНН field was archived or made unsearchable by an admin.
                page = None
            if page is not None and page.items:
                return page.items[0].id
        if points:
            found = await ContactIntake(self.contacts).match(_create_data(item, {}, points, None))
            if found is not None:
                return found[0]
        return None

    async def _create(
        self,
        item: Counterparty,
        incoming: dict[str, str],
        points: list[tuple[str, str, str]],
        organization_id: uuid.UUID | None,
    ) -> uuid.UUID:
        data = _create_data(item, self._usable(incoming), points, organization_id)
        return (await self.contacts.create(data, self.actor)).id

    async def _update(
        self,
        item: Counterparty,
        contact_id: uuid.UUID,
        incoming: dict[str, str],
        points: list[tuple[str, str, str]],
        synced: dict[str, str],
        counts: ImportCounts,
    ) -> bool:
        """Bring 1C's changes to the contact. A field changed on both sides since the last
        sync is a conflict: 1C wins legal details, Kith contact details; each is recorded."""
        contact = await self.contacts.get(contact_id, self.actor)
        current = self._contact_values(contact)
        changes: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for field in SYNCED_FIELDS:
            new, now = incoming[field], current[field]
            if not new or new == now:
                continue
            before = synced.get(field)
            if before is not None and self._keyed(field, new) == before:
                # Only Kith changed it since: Kith's value stands (and goes to 1C).
                continue
            kith_changed = before is not None and self._keyed(field, now) != before
            winner = "onec" if field in LEGAL_FIELDS or not kith_changed else "kith"
            if kith_changed:
                counts.conflicts += 1
                await OnecConflict.insert(
                    OnecConflict(
                        id=new_id(),
                        contact_id=contact_id,
                        onec_id=item.onec_id,
                        field=field,
                        winner=winner,
                        created_at=utcnow(),
                    )
                )
            if winner != "onec":
                continue
            if field in CUSTOM:
                if field in (self.fields or ()):
                    custom[field] = new
            elif field in CONTACT_FIELDS:
                changes[field] = _merged_points(contact, points, field)
            else:
                changes[field] = new
        if custom:
            changes["fields"] = custom
        if not changes:
            return False
        await self.contacts.update(contact_id, ContactPatch(**changes), self.actor)
        return True

    def _usable(self, incoming: dict[str, str]) -> dict[str, str]:
        """The values without custom fields an admin archived."""
        return {k: v for k, v in incoming.items() if k not in CUSTOM or k in (self.fields or ())}

    async def _save_link(
        self,
        kind: str,
        onec_id: str,
        kith_id: uuid.UUID,
        contact_id: uuid.UUID,
        sent: str,
        synced: dict[str, str] | None = None,
        data_version: str = "",
        *,
        read: bool = False,
        link: dict[str, Any] | None = None,
    ) -> None:
        """Write the link; with ``read``, ``link`` is its row as read already (None: none)."""
        now = utcnow()
        existing = link if read else await self._link(kind, onec_id)
        if existing is None:
            await OnecLink.insert(
                OnecLink(
                    id=new_id(),
                    kind=kind,
                    onec_id=onec_id,
                    kith_id=kith_id,
                    contact_id=contact_id,
                    digest=sent,
                    synced=synced or {},
                    data_version=data_version,
                    state="active",
                    updated_at=now,
                )
            )
            return
        values: dict[Any, Any] = {
            OnecLink.kith_id: kith_id,
            OnecLink.contact_id: contact_id,
            OnecLink.digest: sent,
            OnecLink.state: "active",
            OnecLink.updated_at: now,
        }
        if synced is not None:
            values[OnecLink.synced] = synced
        if data_version:
            values[OnecLink.data_version] = data_version
        await OnecLink.update(values).where(OnecLink.id == existing["id"])

    # -- documents --------------------------------------------------------------------------

    async def document(self, item: Document, counts: ImportCounts) -> uuid.UUID | None:
        """An order interaction on the buyer's timeline, made once and updated when 1C sends
        a changed document."""
        if not item.onec_id:
            counts.orders_skipped += 1
            return None
        sent = digest(item)
        link = await self._link(DOCUMENT, item.onec_id)
        if link is not None and link["digest"] == sent:
            counts.orders_unchanged += 1
            return link["kith_id"]
        buyers = [c for c in item.counterparties if c.role.lower() in ("покупатель", "buyer")]
        buyer = (buyers or item.counterparties or [None])[0]
        contact_id = None if buyer is None else await self.counterparty(buyer, counts)
        for other in item.counterparties:
            if other is not buyer:
                await self.counterparty(other, counts)
        if contact_id is None:
            counts.orders_skipped += 1
            return None
        facts = order_facts(item, self.settings.default_currency)
        when = document_time(item)
        detail: dict[Any, Any] = {
            OnecOrder.operation: facts.operation,
            OnecOrder.number: facts.number,
            OnecOrder.amount: facts.amount,
            OnecOrder.currency: facts.currency,
            OnecOrder.status: facts.status,
            OnecOrder.paid: facts.paid,
            OnecOrder.shipped: facts.shipped,
            OnecOrder.cancelled: facts.cancelled,
            OnecOrder.deleted: facts.deleted,
            OnecOrder.lines: facts.lines,
            OnecOrder.updated_at: utcnow(),
        }
        if link is None and item.onec_id in self._fresh:
            # Twice in one batch: made already, its link waits for the batch's commit.
            counts.orders_unchanged += 1
            return self._fresh[item.onec_id]
        if link is not None and await self.interactions.exists(link["kith_id"]):
            interaction_id: uuid.UUID = link["kith_id"]
            patch = InteractionPatch(summary=facts.summary, body=facts.body, amount=facts.amount)
            if when is not None:
                patch.occurred_at = when
            await self.interactions.update(interaction_id, patch, self.actor)
            await OnecOrder.update(detail).where(OnecOrder.id == interaction_id)
            counts.orders_updated += 1
        else:
            logged, _ = await self.interactions.log(
                contact_id,
                InteractionCreate(
                    kind="order",
                    direction="inbound",
                    occurred_at=when,
                    summary=facts.summary,
                    body=facts.body,
                    channel="1c",
                    amount=facts.amount,
                    source=SOURCE,
                    external_id=item.onec_id[:200],
                ),
                self.actor,
            )
            interaction_id = logged.id
            contact_id = logged.contact_id
            order = OnecOrder(
                id=interaction_id,
                contact_id=contact_id,
                onec_id=item.onec_id,
                **{column._meta.name: value for column, value in detail.items()},
            )
            new_link = OnecLink(
                id=new_id(),
                kind=DOCUMENT,
                onec_id=item.onec_id,
                kith_id=interaction_id,
                contact_id=contact_id,
                digest=sent,
                synced={},
                state="active",
                updated_at=utcnow(),
            )
            if link is None:
                # A new document's rows are written with the batch's, one statement each.
                self._fresh[item.onec_id] = interaction_id
                async with self.kith.unit_of_work(self.actor) as uow:
                    uow.gather("onec.orders", order, _insert_all)
                    uow.gather("onec.links", new_link, _insert_all)
                counts.orders_created += 1
                return interaction_id
            await OnecOrder.insert(order)
            counts.orders_created += 1
        await self._save_link(
            DOCUMENT, item.onec_id, interaction_id, contact_id, sent, read=True, link=link
        )
        return interaction_id


def _create_data(
    item: Counterparty,
    incoming: dict[str, str],
    points: list[tuple[str, str, str]],
    organization_id: uuid.UUID | None,
) -> ContactCreate:
    emails = [
        EmailIn(address=value, label=label, primary=i == 0)
        for i, (_, value, label) in enumerate(p for p in points if p[0] == "email")
    ]
    phones = [
        PhoneIn(number=value, label=label, primary=i == 0)
        for i, (_, value, label) in enumerate(p for p in points if p[0] == "phone")
    ]
    return ContactCreate(
        kind=item.kind,
        name=incoming.get("name") or None,
        given_name=incoming.get("given_name") or None,
        family_name=incoming.get("family_name") or None,
        organization_id=organization_id,
        emails=emails[:20],
        phones=phones[:20],
        source=SOURCE,
        fields={name: incoming[name] for name in CUSTOM if incoming.get(name)},
    )


def _merged_points(
    contact: ContactOut, points: list[tuple[str, str, str]], field: str
) -> list[EmailIn] | list[PhoneIn]:
    """The contact's emails (or phones) with 1C's new ones added: Kith never loses one."""
    if field == "emails":
        emails = [
            EmailIn(address=e.address, label=e.label, primary=e.primary) for e in contact.emails
        ]
        held = {e.address for e in emails}
        new = [(v, label) for k, v, label in points if k == "email" and v not in held]
        emails += [
            EmailIn(address=v, label=label, primary=not emails and i == 0)
            for i, (v, label) in enumerate(new)
        ]
        return emails[:20]
    phones = [PhoneIn(number=p.number, label=p.label, primary=p.primary) for p in contact.phones]
    held = {p.number for p in phones}
    fresh = [(v, label) for k, v, label in points if k == "phone" and v not in held]
    phones += [
        PhoneIn(number=v, label=label, primary=not phones and i == 0)
        for i, (v, label) in enumerate(fresh)
    ]
    return phones[:20]


def _describe(item: Item) -> str:
    kind = "document" if isinstance(item, Document) else "counterparty"
    return f"{kind} {item.onec_id!r}"


def _batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
