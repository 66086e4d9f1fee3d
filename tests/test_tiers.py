"""Value tiers from a fixture of orders: figures per currency, tiers from the thresholds in
settings, the change event, and the tier as a cadence scope."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import httpx
from kith import ContactCreate, ContactService, InteractionCreate, InteractionService, Kith
from kith.services.tiers import TierService
from kith.testing import TokenFactory

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


async def order(
    kith: Kith, contact: uuid.UUID, days_ago: int, amount: str, currency: str | None = None
) -> None:
    await InteractionService(kith).log(
        contact,
        InteractionCreate(
            kind="order",
            occurred_at=NOW - dt.timedelta(days=days_ago),
            amount=decimal.Decimal(amount),
            channel=currency,
        ),
    )


async def contact(kith: Kith, name: str) -> uuid.UUID:
    return (await ContactService(kith).create(ContactCreate(name=name))).id


async def test_figures_and_tiers_from_a_fixture_of_orders(kith: Kith) -> None:
    kith.bus.clock = lambda: NOW
    big = await contact(kith, "Big Buyer")
    small = await contact(kith, "Small Buyer")
    lapsed = await contact(kith, "Lapsed Buyer")
    nobody = await contact(kith, "No Orders")
    # Big: three orders 30 days apart, 150,000 RUB in all, and one in EUR kept apart.
    for days, amount in ((70, "50000"), (40, "60000"), (10, "40000")):
        await order(kith, big, days, amount)
    await order(kith, big, 5, "99.50", "eur")
    await order(kith, small, 20, "25000")
    await order(kith, lapsed, 400, "500000")
    tiers = TierService(kith)

    value = await tiers.value(big, NOW)
    assert value.tier == "A"
    rub, eur = value.currencies[1], value.currencies[0]
    assert (rub.currency, rub.orders, rub.monetary) == ("RUB", 3, decimal.Decimal("150000.00"))
    assert rub.recency_days == 10 and rub.average_interval_days == 30.0
    assert (eur.currency, eur.orders, eur.monetary) == ("EUR", 1, decimal.Decimal("99.50"))
    assert value.lifetime_value == {
        "EUR": decimal.Decimal("99.50"),
        "RUB": decimal.Decimal("150000.00"),
    }
    assert (await tiers.value(small, NOW)).tier == "B"
    # Over a year since the last order: only C's thresholds (no recency limit) hold.
    assert (await tiers.value(lapsed, NOW)).tier == "C"
    assert (await tiers.value(nobody, NOW)).tier is None

    # A full recompute finds nothing to change; the events were published as orders came.
    assert await tiers.recompute(now=NOW) == 0
    changes = [
        (s.event.contact_id, s.event.payload["from"], s.event.payload["to"])
        for s in await kith.bus.list_events(name="contact.tier_changed", limit=100)
    ]
    assert sorted(changes, key=str) == sorted(
        [(big, None, "B"), (big, "B", "A"), (small, None, "B"), (lapsed, None, "C")], key=str
    )

    # Time passing moves the small buyer out of B at the worker's recompute, once.
    later = NOW + dt.timedelta(days=400)
    assert await tiers.recompute(now=later) == 2  # big and small drop to C
    assert (await tiers.value(small, later)).tier == "C"
    assert await tiers.recompute(now=later) == 0


async def test_tier_as_a_list_filter_and_the_value_endpoint(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    headers = await kith_auth("agent")
    buyer = await contact(kith, "Buyer")
    await contact(kith, "Browser")
    await order(kith, buyer, 3, "25000")
    listed = await kith_client.get("/api/contacts", params={"tier": "B"}, headers=headers)
    assert [c["id"] for c in listed.json()["items"]] == [str(buyer)]
    none = await kith_client.get("/api/contacts", params={"tier": "A"}, headers=headers)
    assert none.json()["items"] == []
    value = (await kith_client.get(f"/api/contacts/{buyer}/value", headers=headers)).json()
    assert value["tier"] == "B" and value["lifetime_value"] == {"RUB": "25000.00"}
    missing = await kith_client.get(f"/api/contacts/{uuid.uuid4()}/value", headers=headers)
    assert missing.status_code == 404
