"""The event bus: how fast the dispatcher delivers, and what publishing costs a write.

For each engine, on a fresh installation, in one process (the bus runs in-process, as in
``kith serve``):

1. Publishing cost. The same writes through the services (contact create, note log) with the
   bus as the event sink (event written to the outbox in the write's transaction) and with a
   sink that discards events, switching sinks between consecutive writes so drift and load from
   elsewhere hit both alike. The figure is the ratio of the total times: 1.10 means publishing
   made the write 10 % slower.
2. Dispatch rate. A backlog of events is put in the outbox; the background dispatcher
   (``kith.bus.start()``, the same loops ``kith worker`` runs) delivers it to no-op async
   subscribers. Three shapes: events spread over many contacts, all for one contact (strict
   per-contact order: one at a time), and with no contact (no ordering). The rate is shown
   against the contact-create rate of step 1 ("keeps up": > 1 means the dispatcher delivers
   faster than the services can produce events).

    .venv/bin/python bench/events.py
    .venv/bin/python bench/events.py --engines sqlite --events 2000 --writes 200
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass, field

from _common import installation, postgres_unavailable, print_table
from kith.bootstrap import open_kith
from kith.events import Event
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, InteractionCreate
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.settings import Settings
from kith.subjects import Subscriber
from kith.unit_of_work import DiscardingSink, EventSink

ENGINES = ("sqlite", "postgresql")


@dataclass
class Row:
    engine: str
    create_with: float = 0.0
    create_without: float = 0.0
    note_with: float = 0.0
    note_without: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)
    skipped: str = ""


# -- publishing cost -------------------------------------------------------------------------


async def publishing_cost(kith: Kith, row: Row, writes: int, rounds: int) -> None:
    """Time each write alone, switching the sink between consecutive writes (and which goes
    first), so that load from elsewhere on the machine falls on both sides alike."""
    discard = DiscardingSink()
    sinks: list[tuple[bool, EventSink]] = [(True, kith.bus), (False, discard)]
    contacts = ContactService(kith)
    interactions = InteractionService(kith)
    created: dict[bool, list[uuid.UUID]] = {True: [], False: []}
    for number in range(20):  # warm caches, connections and prepared statements
        for with_bus, sink in sinks:
            kith.sink = sink
            await contacts.create(ContactCreate(name=f"Warm {with_bus} {number}"))
    for number in range(writes * rounds):
        for with_bus, sink in sinks if number % 2 else reversed(sinks):
            kith.sink = sink
            started = time.perf_counter()
            out = await contacts.create(
                ContactCreate(
                    name=f"Bench {number}",
                    emails=[EmailIn(f"bench.{with_bus}.{number}@example.com")],
                )
            )
            elapsed = time.perf_counter() - started
            created[with_bus].append(out.id)
            if with_bus:
                row.create_with += elapsed
            else:
                row.create_without += elapsed
    for number in range(writes * rounds):
        for with_bus, sink in sinks if number % 2 else reversed(sinks):
            kith.sink = sink
            started = time.perf_counter()
            await interactions.log(
                created[with_bus][number], InteractionCreate(kind="note", summary="bench")
            )
            elapsed = time.perf_counter() - started
            if with_bus:
                row.note_with += elapsed
            else:
                row.note_without += elapsed
    kith.sink = kith.bus


# -- dispatch rate ---------------------------------------------------------------------------


async def _backlog(kith: Kith, events: int, contacts: int | None) -> None:
    """``events`` events in the outbox, for ``contacts`` contacts (None: no contact)."""
    ids = [uuid.uuid4() for _ in range(contacts or 0)]
    per_unit = 200
    for start in range(0, events, per_unit):
        async with kith.unit_of_work() as uow:
            for number in range(start, min(events, start + per_unit)):
                contact_id = ids[number % len(ids)] if ids else None
                uow.publish("contact.updated", contact_id, fields=["name"])


async def dispatch_rate(
    kith: Kith, events: int, contacts: int | None, subscribers: int, shape: str
) -> float:
    """Deliveries per second of the background dispatcher emptying a backlog."""
    kith.subscribers = []
    await _backlog(kith, events, contacts)
    done = asyncio.Event()
    delivered = 0
    expected = events * subscribers

    async def handler(kith: Kith, event: Event) -> None:
        nonlocal delivered
        delivered += 1
        if delivered >= expected:
            done.set()

    for number in range(subscribers):
        kith.bus.subscribe(
            Subscriber(name=f"bench.{shape}.{number}", events=("contact.*",), handler=handler)
        )
    started = time.perf_counter()
    await kith.bus.start(scheduler=False)
    try:
        await asyncio.wait_for(done.wait(), timeout=600)
    finally:
        elapsed = time.perf_counter() - started
        await kith.bus.stop()
    for subscriber in list(kith.bus.subscribers):
        await kith.bus.forget(subscriber.name)
    return expected / elapsed


SHAPES = {
    # label: (contacts, subscribers, share of --events)
    "many contacts, 1 subscriber": (500, 1, 1.0),
    "many contacts, 4 subscribers": (500, 4, 0.5),
    "no contact (unordered)": (None, 1, 1.0),
    "one contact (strict order)": (1, 1, 0.2),
}


async def measure(settings: Settings, row: Row, options: argparse.Namespace) -> None:
    kith = open_kith(settings)
    await kith.start()
    try:
        kith.subscribers = []
        await publishing_cost(kith, row, options.writes, options.rounds)
        # The writes above published events; with no subscriber recorded yet, fanning them out
        # now settles them, so the dispatch figures count only their own backlogs.
        await kith.bus.dispatcher.fan_out()
        for shape, (contacts, subscribers, share) in SHAPES.items():
            print(f"    {row.engine}: {shape} ...", file=sys.stderr, flush=True)
            row.rates[shape] = await dispatch_rate(
                kith, int(options.events * share), contacts, subscribers, shape.split(",")[0]
            )
    finally:
        await kith.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--events", type=int, default=5000, help="backlog per dispatch shape")
    parser.add_argument("--writes", type=int, default=300, help="writes per round and sink")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of --writes")
    options = parser.parse_args(argv)
    engines = [e.strip() for e in options.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(unknown)}; use {', '.join(ENGINES)}")

    print(f"Kith event bus benchmark, {dt.date.today().isoformat()}")
    print(f"  machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, one process")
    print(
        f"  publishing: {options.rounds * options.writes} writes of each kind per sink, "
        f"interleaved; dispatch: a backlog of up to {options.events} events per shape, "
        "no-op handlers"
    )
    print()

    rows = []
    for engine in engines:
        row = Row(engine)
        rows.append(row)
        if engine == "postgresql" and (reason := postgres_unavailable()):
            row.skipped = reason
            continue
        print(f"  measuring {engine} ...", file=sys.stderr, flush=True)
        with installation(engine) as settings:
            asyncio.run(measure(settings, row, options))

    print("Publishing an event, as a share of the write it goes with (time with / without):")
    table = []
    for row in rows:
        if row.skipped:
            table.append([row.engine, "skipped", row.skipped, "", ""])
            continue
        writes = options.writes * options.rounds
        table.append(
            [
                row.engine,
                f"{writes / row.create_without:,.0f}/s",
                f"{row.create_with / row.create_without:.2f}",
                f"{writes / row.note_without:,.0f}/s",
                f"{row.note_with / row.note_without:.2f}",
            ]
        )
    print_table(
        ["engine", "contact create", "with event", "note log", "with event"],
        table,
    )
    print()
    print("Dispatch, in-process background dispatcher (deliveries/s; keeps up = / creates/s):")
    table = []
    for row in rows:
        if row.skipped:
            continue
        creates = options.writes * options.rounds / row.create_with
        for shape, rate in row.rates.items():
            table.append([row.engine, shape, f"{rate:,.0f}/s", f"{rate / creates:.1f}x"])
    print_table(["engine", "backlog", "delivered", "keeps up"], table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
