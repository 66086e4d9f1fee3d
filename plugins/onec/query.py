"""The ``mode=query`` reply: what Kith has that 1C does not yet.

Kith's new organizations and people (those not made from 1C and not linked to a 1C object)
and the orders on their timelines go out as counterparties and documents whose Ид is Kith's
id, so that 1C sending them back later finds the same contact. Orders logged in Kith for
customers 1C already knows go out too, each with its buyer under the buyer's 1C Ид.
Rectifications and erasures owed to 1C (Art. 19) go out too: the current details under the 1C
Ид, or a deletion mark without any personal data. Everything sent is ``offered`` until 1C says
``success``; offered items are sent again in the next reply otherwise.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Any

import msgspec
from kith import (
    ContactOut,
    ContactService,
    Event,
    InteractionOut,
    InteractionService,
    Kith,
    NotFound,
    encode_cursor,
    new_id,
    processing_refusals,
    record_access,
    utcnow,
)
from kith.plugins.onec import fields as names
from kith.plugins.onec.commerceml import ContactPoint, Counterparty, Document, Writer
from kith.plugins.onec.importer import CHANNEL, COUNTERPARTY, DOCUMENT, ONEC_ACTOR, SOURCE
from kith.plugins.onec.privacy import ONEC_RECIPIENT
from kith.plugins.onec.settings import onec_settings
from kith.plugins.onec.tables import OnecLink, OnecNotice

CURSOR = "cursor"
PAGE = 200
# What kith_check_processing is asked before a known customer's order leaves for 1C.
ACTIVITY = "onec.exchange"
# An order of a known customer waiting for the next query reply.
PENDING = "pending"


class Built(msgspec.Struct, kw_only=True):
    body: bytes
    counts: dict[str, int]


def counterparty_of(contact: ContactOut, onec_id: str | None = None) -> Counterparty:
    """A Kith contact as 1C's counterparty (legal details and contact details)."""
    fields = contact.fields

    def text(name: str) -> str:
        value = fields.get(name)
        return "" if value is None else str(value)

    points = [ContactPoint(kind="email", value=e.address, label=e.label) for e in contact.emails]
    points += [ContactPoint(kind="phone", value=p.number, label=p.label) for p in contact.phones]
    return Counterparty(
        onec_id=onec_id or str(contact.id),
        kind=contact.kind,
        name=contact.name,
        full_name=contact.name,
        family_name=contact.family_name or "",
        given_name=contact.given_name or "",
        middle_name=text(names.MIDDLE_NAME),
        inn=text(names.INN),
        kpp=text(names.KPP),
        legal_address=text(names.LEGAL_ADDRESS),
        actual_address=text(names.ACTUAL_ADDRESS),
        role="Покупатель",
        points=points,
    )


def document_of(order: InteractionOut, buyer: Counterparty, currency: str) -> Document:
    when = order.occurred_at
    return Document(
        onec_id=str(order.id),
        number=f"K-{str(order.id)[-8:]}",
        date=when.date().isoformat(),
        time=when.time().replace(microsecond=0).isoformat(),
        operation="Заказ товара",
        role="Продавец",
        currency=currency,
        rate="1",
        amount="" if order.amount is None else str(order.amount),
        comment=order.summary,
        counterparties=[buyer],
    )


class QueryBuilder:
    def __init__(self, kith: Kith) -> None:
        self.kith = kith
        self.settings = onec_settings(kith)
        self.contacts = ContactService(kith, channel=CHANNEL)
        self.interactions = InteractionService(kith, channel=CHANNEL)

    async def _offer(self, kind: str, kith_id: uuid.UUID, contact_id: uuid.UUID) -> None:
        await OnecLink.insert(
            OnecLink(
                id=new_id(),
                kind=kind,
                onec_id=str(kith_id),
                kith_id=kith_id,
                contact_id=contact_id,
                state="offered",
                updated_at=utcnow(),
            )
        )

    async def _new_contacts(self, limit: int) -> list[ContactOut]:
        """Contacts made since the last reply that 1C does not know, oldest first; with
        OData configured, ``kith onec push`` hands them over instead."""
        if self.settings.odata_url:
            return []
        found = await unlinked_contacts(self.kith, "query", limit)
        for contact in found:
            await self._offer(COUNTERPARTY, contact.id, contact.id)
        return found

    async def _orders(self, contact: ContactOut) -> list[InteractionOut]:
        """Orders logged in Kith (not from 1C) on the contact's timeline, not yet sent."""
        page = await self.interactions.timeline(contact.id, limit=100, actor=ONEC_ACTOR)
        orders = [o for o in page.items if o.kind == "order" and o.source != SOURCE]
        if not orders:
            return []
        sent = {
            row["kith_id"]
            for row in await OnecLink.select(OnecLink.kith_id).where(
                OnecLink.kith_id.is_in([o.id for o in orders])
                & (OnecLink.kind == DOCUMENT)
                & (OnecLink.state != "offered")
            )
        }
        return [o for o in orders if o.id not in sent]

    async def build(self, version: str) -> Built:
        limit = self.settings.query_limit
        currency = self.settings.default_currency
        counts = {"counterparties": 0, "documents": 0, "rectifications": 0, "erasures": 0}
        again = (
            await OnecLink.select(OnecLink.kith_id)
            .where((OnecLink.kind == COUNTERPARTY) & (OnecLink.state == "offered"))
            .limit(limit)
        )
        contacts: list[ContactOut] = []
        for row in again:
            if await self.contacts.exists(row["kith_id"]):
                contacts.append(await self.contacts.get(row["kith_id"], ONEC_ACTOR))
        contacts += await self._new_contacts(limit - len(contacts))
        documents: list[Document] = []
        standalone: list[Counterparty] = []
        for contact in contacts:
            buyer = counterparty_of(contact)
            orders = await self._orders(contact)
            counts["counterparties"] += 1
            if not orders:
                standalone.append(buyer)
            for order in orders:
                documents.append(document_of(order, buyer, currency))
                waiting = (OnecLink.kind == DOCUMENT) & (OnecLink.onec_id == str(order.id))
                if not await OnecLink.exists().where(waiting):
                    await self._offer(DOCUMENT, order.id, contact.id)
                else:
                    await OnecLink.update({OnecLink.state: "offered"}).where(
                        waiting & (OnecLink.state == PENDING)
                    )
        documents += await self._known_orders(
            {c.id for c in contacts}, limit - len(documents), currency
        )
        counts["documents"] = len(documents)
        standalone += await self._notices(counts)
        out = io.BytesIO()
        writer = Writer(out, version=version)
        writer.start(utcnow().astimezone(dt.UTC).replace(tzinfo=None, microsecond=0))
        for document in documents:
            writer.document(document)
        writer.counterparties(standalone)
        writer.end()
        return Built(body=out.getvalue(), counts=counts)

    async def _known_orders(
        self, in_reply: set[uuid.UUID], limit: int, currency: str
    ) -> list[Document]:
        """Orders logged in Kith for customers 1C knows (see :func:`on_order_logged`), each
        with its buyer under the 1C Ид. A customer whose processing is restricted is held
        back, their orders kept waiting; each handed over is a disclosure in the audit log."""
        if limit <= 0:
            return []
        waiting = (OnecLink.kind == DOCUMENT) & OnecLink.state.is_in([PENDING, "offered"])
        if in_reply:
            # Their orders went out with them, from their timelines.
            waiting &= OnecLink.contact_id.not_in(list(in_reply))
        rows = await (
            OnecLink.select(OnecLink.id, OnecLink.kith_id, OnecLink.contact_id)
            .where(waiting)
            .order_by(OnecLink.kith_id)
            .limit(limit)
        )
        buyers: dict[uuid.UUID, Counterparty | None] = {}
        documents: list[Document] = []
        for row in rows:
            contact_id = row["contact_id"]
            if contact_id is None:
                continue
            if contact_id not in buyers:
                buyers[contact_id] = await self._known_buyer(contact_id)
            buyer = buyers[contact_id]
            if buyer is None:
                continue
            try:
                order = await self.interactions.get(row["kith_id"], ONEC_ACTOR)
            except NotFound:
                # The order was deleted in Kith before 1C had it: nothing to send.
                await OnecLink.delete().where(OnecLink.id == row["id"])
                continue
            documents.append(document_of(order, buyer, currency))
            await OnecLink.update({OnecLink.state: "offered", OnecLink.updated_at: utcnow()}).where(
                OnecLink.id == row["id"]
            )
            await record_access(
                self.kith,
                contact_id,
                "disclose",
                ONEC_ACTOR,
                channel=CHANNEL,
                recipient=ONEC_RECIPIENT.name,
                order_id=str(order.id),
            )
        return documents

    async def _known_buyer(self, contact_id: uuid.UUID) -> Counterparty | None:
        """The customer as 1C knows them (their 1C Ид, Kith's current details), or None
        while they may not be sent."""
        link = (
            await OnecLink.select(OnecLink.onec_id)
            .where(
                (OnecLink.kind == COUNTERPARTY)
                & (OnecLink.contact_id == contact_id)
                & OnecLink.state.is_in(["active", "offered"])
            )
            .order_by(OnecLink.updated_at)
            .first()
        )
        if link is None or not await self.contacts.exists(contact_id):
            return None
        if await processing_refusals(self.kith, contact_id, ACTIVITY):
            return None
        return counterparty_of(await self.contacts.get(contact_id, ONEC_ACTOR), link["onec_id"])

    async def _notices(self, counts: dict[str, int]) -> list[Counterparty]:
        """Rectifications (the current details) and erasures (a deletion mark, nothing
        else) owed to 1C, when OData does not carry them."""
        if self.settings.odata_url:
            return []
        rows = await OnecNotice.select().where(OnecNotice.state.is_in(["pending", "offered"]))
        items: list[Counterparty] = []
        for row in rows:
            if row["action"] == "erasure":
                items.append(Counterparty(onec_id=row["onec_id"], deleted=True))
                counts["erasures"] += 1
            else:
                link = (
                    await OnecLink.select()
                    .where((OnecLink.kind == COUNTERPARTY) & (OnecLink.onec_id == row["onec_id"]))
                    .first()
                )
                if link is None or not await self.contacts.exists(link["kith_id"]):
                    continue
                contact = await self.contacts.get(link["kith_id"], ONEC_ACTOR)
                items.append(counterparty_of(contact, row["onec_id"]))
                counts["rectifications"] += 1
            await OnecNotice.update({OnecNotice.state: "offered"}).where(OnecNotice.id == row["id"])
        return items


async def confirm_offered(kith: Kith) -> dict[str, Any]:
    """1C said ``success`` after a query: what the reply held is 1C's now."""
    now = utcnow()
    offered = int(await OnecLink.count().where(OnecLink.state == "offered"))
    await OnecLink.update({OnecLink.state: "active", OnecLink.updated_at: now}).where(
        OnecLink.state == "offered"
    )
    notices = int(await OnecNotice.count().where(OnecNotice.state == "offered"))
    await OnecNotice.update({OnecNotice.state: "sent", OnecNotice.sent_at: now}).where(
        OnecNotice.state == "offered"
    )
    return {"confirmed": offered, "notices_sent": notices}


async def unlinked_contacts(kith: Kith, cursor_name: str, limit: int) -> list[ContactOut]:
    """Up to ``limit`` contacts made in Kith (not from 1C) that no 1C object is linked to,
    oldest first, from where the last call named ``cursor_name`` stopped (contact ids sort
    by time, so each contact is looked at once)."""
    contacts = ContactService(kith, channel=CHANNEL)
    where = (OnecLink.kind == CURSOR) & (OnecLink.onec_id == cursor_name)
    cursor_row = await OnecLink.select().where(where).first()
    cursor = encode_cursor(cursor_row["kith_id"]) if cursor_row else None
    found: list[ContactOut] = []
    last: uuid.UUID | None = None
    while len(found) < limit:
        page = await contacts.list(cursor=cursor, limit=PAGE, actor=ONEC_ACTOR)
        ids = [c.id for c in page.items]
        linked = {
            row["kith_id"]
            for row in await OnecLink.select(OnecLink.kith_id).where(
                OnecLink.kith_id.is_in(ids or [uuid.UUID(int=0)]) & (OnecLink.kind == COUNTERPARTY)
            )
        }
        for contact in page.items:
            last = contact.id
            if contact.source != SOURCE and contact.id not in linked:
                found.append(contact)
                if len(found) >= limit:
                    break
        if page.next_cursor is None or len(found) >= limit:
            break
        cursor = page.next_cursor
    if last is not None:
        if cursor_row is None:
            await OnecLink.insert(
                OnecLink(
                    id=new_id(),
                    kind=CURSOR,
                    onec_id=cursor_name,
                    kith_id=last,
                    state="active",
                    updated_at=utcnow(),
                )
            )
        else:
            await OnecLink.update({OnecLink.kith_id: last, OnecLink.updated_at: utcnow()}).where(
                OnecLink.id == cursor_row["id"]
            )
    return found


async def on_order_logged(kith: Kith, event: Event) -> None:
    """An order logged in Kith (not from 1C) for a customer linked to 1C waits for the next
    query reply. Idempotent: the order's link is made once."""
    payload = event.payload
    if payload.get("kind") != "order" or payload.get("source") == SOURCE:
        return
    contact_id = uuid.UUID(str(payload["contact_id"]))
    order_id = uuid.UUID(str(payload["interaction_id"]))
    known = await OnecLink.exists().where(
        (OnecLink.kind == COUNTERPARTY)
        & (OnecLink.contact_id == contact_id)
        & OnecLink.state.is_in(["active", "offered"])
    )
    if not known or await OnecLink.exists().where(
        (OnecLink.kind == DOCUMENT) & (OnecLink.onec_id == str(order_id))
    ):
        return
    await OnecLink.insert(
        OnecLink(
            id=new_id(),
            kind=DOCUMENT,
            onec_id=str(order_id),
            kith_id=order_id,
            contact_id=contact_id,
            state=PENDING,
            updated_at=utcnow(),
        )
    )
