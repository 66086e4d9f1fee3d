"""Value tiers from ``order`` interactions: recency, frequency and monetary value per currency,
lifetime value and average order interval, and the tier ``[tiers]`` thresholds give.

An order's currency is its ``channel`` when that is a three-letter code (``EUR``), else the
tier currency of ``[tiers]``. The per-currency figures are aggregated in SQL into
``kith_contact_value``; the tier is computed in the tier currency. A full recompute (the worker,
hourly) catches time passing; an order arriving updates its own contact at once. Every change
publishes ``contact.tier_changed``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from kith.errors import NotFound
from kith.loop_settings import TierLevel, TierSettings
from kith.loop_sql import Dialect
from kith.loop_tables import ContactTier, ContactValue
from kith.runtime import Kith
from kith.subject_checks import refused_among
from kith.tables import Contact
from piccolo.querystring import QueryString

BATCH = 500
# What kith_check_processing is asked before a contact's tier changes.
TIER_ACTIVITY = "contact.tier"


class CurrencyValue(msgspec.Struct, kw_only=True):
    """A contact's orders in one currency."""

    currency: str
    orders: int
    monetary: decimal.Decimal
    first_order_at: dt.datetime | None
    last_order_at: dt.datetime | None
    recency_days: int | None
    average_interval_days: float | None


class ContactValueOut(msgspec.Struct, kw_only=True):
    """Recency, frequency and monetary value of a contact, and its tier. ``lifetime_value``
    is the total of its orders, per currency."""

    contact_id: uuid.UUID
    tier: str | None
    currencies: list[CurrencyValue]
    lifetime_value: dict[str, decimal.Decimal]


def _time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def tier_for(
    levels: Sequence[TierLevel],
    orders: int,
    monetary: decimal.Decimal | float,
    last_order_at: dt.datetime | None,
    now: dt.datetime,
) -> str | None:
    """The first tier whose every threshold the figures meet, or None."""
    for level in levels:
        if orders < level.min_orders or float(monetary) < level.min_monetary:
            continue
        if level.max_recency_days is not None and (
            last_order_at is None or (now - last_order_at).days > level.max_recency_days
        ):
            continue
        return level.name
    return None


class TierService:
    """Contact values and tiers."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith
        self.settings = TierSettings.from_settings(kith.settings)
        self.sql = Dialect(kith.database)

    def _currency(self) -> str:
        return (
            "CASE WHEN LENGTH(i.channel) = 3 THEN UPPER(i.channel) "
            f"ELSE '{self.settings.currency}' END"
        )

    async def _aggregate(self, contact_ids: Sequence[uuid.UUID] | None) -> None:
        """Rewrite ``kith_contact_value`` from the orders, in SQL (all, or these contacts)."""
        only = ""
        args: list[Any] = []
        if contact_ids is not None:
            only = " AND i.contact IN (" + ", ".join("{}" for _ in contact_ids) + ")"
            args = list(contact_ids)
            await ContactValue.delete().where(ContactValue.contact.is_in(list(contact_ids))).run()
        else:
            await ContactValue.delete(force=True).run()
        currency = self._currency()
        await self.kith.database.engine.run_querystring(
            QueryString(
                "INSERT INTO kith_contact_value (contact, currency, orders, monetary, "
                "first_order_at, last_order_at) "
                f"SELECT i.contact, {currency}, COUNT(*), COALESCE(SUM(i.amount), 0), "
                "MIN(i.occurred_at), MAX(i.occurred_at) FROM kith_interaction i "
                f"WHERE i.kind = 'order'{only} GROUP BY i.contact, {currency}",
                *args,
            )
        )

    async def recompute(
        self, contact_ids: Sequence[uuid.UUID] | None = None, now: dt.datetime | None = None
    ) -> int:
        """Recompute values and tiers (of every contact, or of ``contact_ids``); publishes
        ``contact.tier_changed`` for each change and returns how many changed. Contacts whose
        processing is restricted keep the tier they had."""
        now = now or self.kith.bus.dispatcher.now()
        if contact_ids is not None and not contact_ids:
            return 0
        async with self.kith.unit_of_work():
            await self._aggregate(contact_ids)
        figures = ContactValue.select(
            ContactValue.contact,
            ContactValue.orders,
            ContactValue.monetary,
            ContactValue.last_order_at,
        ).where(ContactValue.currency == self.settings.currency)
        current = ContactTier.select(ContactTier.contact, ContactTier.tier)
        if contact_ids is not None:
            figures = figures.where(ContactValue.contact.is_in(list(contact_ids)))
            current = current.where(ContactTier.contact.is_in(list(contact_ids)))
        wanted: dict[uuid.UUID, str | None] = {}
        for row in await figures.run():
            wanted[_uuid(row["contact"])] = tier_for(
                self.settings.levels,
                int(row["orders"]),
                decimal.Decimal(row["monetary"] or 0),
                _time(row["last_order_at"]),
                now,
            )
        had = {_uuid(row["contact"]): row["tier"] for row in await current.run()}
        changes = [
            (contact, had.get(contact), wanted.get(contact))
            for contact in {*wanted, *had}
            if had.get(contact) != wanted.get(contact)
        ]
        # A restricted contact's data may only be stored: its tier stays as it was.
        refused = await refused_among(self.kith, [c for c, _, _ in changes], TIER_ACTIVITY)
        changes = [change for change in changes if change[0] not in refused]
        changes.sort(key=lambda change: change[0])
        for start in range(0, len(changes), BATCH):
            await self._write(changes[start : start + BATCH], now)
        return len(changes)

    async def _write(
        self, changes: list[tuple[uuid.UUID, str | None, str | None]], now: dt.datetime
    ) -> None:
        async with self.kith.unit_of_work() as uow:
            await (
                ContactTier.delete()
                .where(ContactTier.contact.is_in([contact for contact, _, _ in changes]))
                .run()
            )
            rows = [
                ContactTier(contact=contact, tier=new, computed_at=now)
                for contact, _, new in changes
                if new is not None
            ]
            if rows:
                await ContactTier.insert(*rows).run()
            for contact, old, new in changes:
                uow.publish(
                    "contact.tier_changed",
                    contact,
                    contact_id=str(contact),
                    **{"from": old, "to": new},
                )

    async def on_order(self, contact_id: uuid.UUID) -> None:
        """An order was logged for the contact: bring its value and tier up to date (in the
        caller's transaction)."""
        await self.recompute([contact_id])

    async def on_orders(self, contact_ids: Sequence[uuid.UUID]) -> None:
        """Orders were logged for these contacts (a batch): one recompute for them all."""
        await self.recompute(sorted(set(contact_ids)))

    async def value(self, contact_id: uuid.UUID, now: dt.datetime | None = None) -> ContactValueOut:
        """A contact's figures and tier (ids and numbers: nothing personal)."""
        if not await Contact.exists().where(Contact.id == contact_id):
            raise NotFound(f"contact {contact_id} does not exist")
        now = now or self.kith.bus.dispatcher.now()
        rows = (
            await ContactValue.select()
            .where(ContactValue.contact == contact_id)
            .order_by(ContactValue.currency)
            .run()
        )
        tier = (
            await ContactTier.select(ContactTier.tier)
            .where(ContactTier.contact == contact_id)
            .first()
        )
        currencies = []
        for row in rows:
            first, last, orders = (
                _time(row["first_order_at"]),
                _time(row["last_order_at"]),
                int(row["orders"]),
            )
            interval = None
            if first and last and orders > 1:
                interval = round((last - first).total_seconds() / 86400 / (orders - 1), 2)
            currencies.append(
                CurrencyValue(
                    currency=row["currency"],
                    orders=orders,
                    monetary=decimal.Decimal(row["monetary"]).quantize(decimal.Decimal("0.01")),
                    first_order_at=first,
                    last_order_at=last,
                    recency_days=(now - last).days if last else None,
                    average_interval_days=interval,
                )
            )
        return ContactValueOut(
            contact_id=contact_id,
            tier=tier["tier"] if tier else None,
            currencies=currencies,
            lifetime_value={c.currency: c.monetary for c in currencies},
        )

    async def tiers_of(self, contact_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not contact_ids:
            return {}
        rows = (
            await ContactTier.select(ContactTier.contact, ContactTier.tier)
            .where(ContactTier.contact.is_in(list(contact_ids)))
            .run()
        )
        return {_uuid(row["contact"]): row["tier"] for row in rows}
