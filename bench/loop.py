"""Closing the loop at scale: recomputing every contact's value tier and evaluating every
trigger rule, as the contact table grows, and the cost an order adds to its own insert.

For each engine and size it creates a fresh installation and loads that many contacts, each
with ten interactions over two years (orders, inbound calls answered or missed, call-backs,
meetings), written in bulk (the loop reads no personal value: names are placeholders). Then:

- the reference, in the same run: one plain SQL aggregate over the same interactions (count
  and sum per contact), the least any recompute must read;
- a full tier recompute (``TierService.recompute``): per-currency figures aggregated in SQL,
  tiers assigned, changes written with their events;
- every example trigger rule's dry run (order gap, unreturned missed call, event, form lead),
  conditions found in SQL;
- the incremental update: logging an order (which updates its contact's value and tier) against
  logging a note to the same contact (the same insert without it).

Targets (docs/performance.md): µs per contact close to flat from the smallest size to the
largest (growth ratio near 1); an order's insert at most 3x a note's.

    .venv/bin/python bench/loop.py                                  # 10 k, SQLite
    .venv/bin/python bench/loop.py --sizes 10000,50000 --engines sqlite,postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import decimal
import random
import sys
import time
import uuid

from _common import installation, postgres_unavailable, print_table
from kith.bootstrap import open_kith
from kith.events import utcnow
from kith.ids import new_id
from kith.loop_settings import RuleSpec
from kith.runtime import Kith
from kith.schemas import InteractionCreate
from kith.services.interactions import InteractionService
from kith.services.tiers import TierService
from kith.services.triggers import TriggerService
from kith.settings import Settings
from kith.tables import Contact, Interaction
from piccolo.querystring import QueryString

MAX_CONTACTS = 100_000
RULES = (
    RuleSpec(name="churn", condition="order_gap", action="task"),
    RuleSpec(name="callback", condition="missed_call", action="notify"),
    RuleSpec(
        name="withdrawn",
        condition="event",
        event="consent.withdrawn",
        action="tag",
        tag_to_add="no-cadence",
    ),
    RuleSpec(name="lead", condition="no_interaction", source="webforms", action="task"),
)


async def load(kith: Kith, contacts: int, rng: random.Random) -> list[uuid.UUID]:
    now = utcnow()
    ids: list[uuid.UUID] = []
    for start in range(0, contacts, 1000):
        batch = []
        rows = []
        for _ in range(min(1000, contacts - start)):
            contact_id = new_id()
            ids.append(contact_id)
            created = now - dt.timedelta(days=rng.randint(1, 730))
            source = "webforms" if rng.random() < 0.2 else "import"
            batch.append(
                Contact(
                    id=contact_id,
                    kind="person",
                    display_name="-",
                    tags=[],
                    source=source,
                    created_at=created,
                    updated_at=created,
                )
            )
            for n in range(10):
                kind = rng.choice(("order", "order", "order", "call", "call", "meeting"))
                at = created + dt.timedelta(days=rng.uniform(0, (now - created).days or 1))
                rows.append(
                    Interaction(
                        id=new_id(),
                        contact=contact_id,
                        kind=kind,
                        occurred_at=at,
                        summary="",
                        body="",
                        created_at=at,
                        updated_at=at,
                        direction="inbound" if kind == "call" else None,
                        duration_s=rng.choice((0, 60)) if kind == "call" else None,
                        amount=decimal.Decimal(rng.randint(100, 50_000))
                        if kind == "order"
                        else None,
                        channel="EUR" if kind == "order" and n == 9 else None,
                    )
                )
        async with kith.unit_of_work():
            await Contact.insert(*batch).run()
            for chunk in range(0, len(rows), 500):
                await Interaction.insert(*rows[chunk : chunk + 500]).run()
    return ids


async def measure(settings: Settings, contacts: int) -> dict[str, float]:
    kith = open_kith(settings)
    await kith.start()
    try:
        ids = await load(kith, contacts, random.Random(7))
        started = time.perf_counter()
        await kith.database.engine.run_querystring(
            QueryString(
                "SELECT contact, COUNT(*), SUM(amount) FROM kith_interaction GROUP BY contact"
            )
        )
        reference = time.perf_counter() - started
        started = time.perf_counter()
        await TierService(kith).recompute()
        tiers = time.perf_counter() - started
        triggers = TriggerService(kith)
        started = time.perf_counter()
        for rule in RULES:
            await triggers._pending(rule, utcnow())
        rules = time.perf_counter() - started
        service = InteractionService(kith)
        note_s = order_s = 0.0
        for n in range(50):
            target = ids[n * 7 % len(ids)]
            started = time.perf_counter()
            await service.log(target, InteractionCreate(kind="note", summary="n"))
            note_s += time.perf_counter() - started
            started = time.perf_counter()
            await service.log(target, InteractionCreate(kind="order", amount=decimal.Decimal("10")))
            order_s += time.perf_counter() - started
        return {"reference": reference, "tiers": tiers, "rules": rules, "order": order_s / note_s}
    finally:
        await kith.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--engines", default="sqlite")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if max(sizes) > MAX_CONTACTS:
        print(f"at most {MAX_CONTACTS} contacts on a shared machine", file=sys.stderr)
        return 2
    table = []
    for engine in args.engines.split(","):
        if engine == "postgresql" and (reason := postgres_unavailable()):
            print(f"skipping PostgreSQL: {reason}", file=sys.stderr)
            continue
        per_contact: list[float] = []
        for size in sizes:
            with installation(engine) as settings:
                found = asyncio.run(measure(settings, size))
            work = found["tiers"] + found["rules"]
            per_contact.append(work / size * 1e6)
            table.append(
                [
                    engine,
                    f"{size:,}",
                    f"{size * 10:,}",
                    f"{found['reference']:.2f}",
                    f"{found['tiers']:.2f}",
                    f"{found['tiers'] / found['reference']:.1f}",
                    f"{found['rules']:.2f}",
                    f"{per_contact[-1]:.0f}",
                    f"{per_contact[-1] / per_contact[0]:.2f}",
                    f"{found['order']:.2f}",
                ]
            )
    print_table(
        [
            "engine",
            "contacts",
            "interactions",
            "reference s",
            "tiers s",
            "tiers / ref",
            "rules s",
            "µs/contact",
            "growth",
            "order / note",
        ],
        table,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
