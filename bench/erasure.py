"""Erasure and export of one data subject, and a batch of erasures, on SQLite and PostgreSQL.

1. Erasure of a subject with 10 k interactions (and their 10 k delivered events): the whole job
   (suppression, recipients, plugins, legal holds, core rows, outbox, records, key), target
   under 1 s. Measured twice, among few and among many other subjects; the ratio many/few says
   whether the cost grows with the size of the database (it must stay near 1).
2. Export of the same kind of subject (ZIP with JSON, CSV, schema, README), against the
   reference of reading and decrypting the same rows without writing anything.
3. A batch of 1,000 erasures of small subjects (2 emails/phones, 5 interactions each).

    .venv/bin/python bench/erasure.py
    .venv/bin/python bench/erasure.py --engines sqlite --others 20000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import installation, postgres_unavailable
from kith.bootstrap import open_kith
from kith.ids import new_id
from kith.privacy.rights.erasure import ErasureService
from kith.privacy.rights.export import ExportBuilder
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, InteractionCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.settings import Settings
from kith.tables import Contact, EventDelivery, Interaction, OutboxEvent

TARGET_S = 1.0
BATCH = 500


async def _subject(kith: Kith, interactions: int, label: str) -> uuid.UUID:
    """A person with two emails, a phone, ``interactions`` calls (1 in 100 an order, held by
    the default legal hold) and one delivered event per interaction."""
    contact = await ContactService(kith).create(
        ContactCreate(
            name=f"Bench Subject {label}",
            emails=[EmailIn(f"subject.{label}@bench.example"), EmailIn(f"s2.{label}@b.example")],
            phones=[PhoneIn(f"+44 20 7946 {abs(hash(label)) % 10000:04d}")],
        )
    )
    table = Interaction._meta.tablename
    now = dt.datetime.now(dt.UTC)
    rows, events, deliveries = [], [], []
    for index in range(interactions):
        row_id = new_id()
        stored = await kith.protector.protect(
            contact.id,
            table,
            row_id,
            {"summary": f"call {index}", "body": f"talked about order {index} at length"},
        )
        rows.append(
            Interaction(
                id=row_id,
                contact=contact.id,
                kind="order" if index % 100 == 0 else "call",
                occurred_at=now - dt.timedelta(minutes=index),
                source="bench",
                created_at=now,
                updated_at=now,
                **stored,
            )
        )
        event_id = new_id()
        events.append(
            OutboxEvent(
                id=event_id,
                name="interaction.logged",
                occurred_at=now,
                contact_id=contact.id,
                payload=f'{{"interaction_id":"{row_id}"}}',
                fanned_out_at=now,
            )
        )
        deliveries.append(
            EventDelivery(
                event=event_id,
                subscriber="bench",
                contact_id=contact.id,
                state="delivered",
                next_attempt_at=now,
                delivered_at=now,
                updated_at=now,
            )
        )
        if len(rows) == BATCH:
            await _flush(rows, events, deliveries)
    await _flush(rows, events, deliveries)
    return contact.id


async def _flush(rows: list, events: list, deliveries: list) -> None:
    if rows:
        await Interaction.insert(*rows).run()
        await OutboxEvent.insert(*events).run()
        await EventDelivery.insert(*deliveries).run()
    rows.clear()
    events.clear()
    deliveries.clear()


async def _others(kith: Kith, count: int, per_subject: int = 5) -> None:
    """Other subjects' rows, inserted directly (erasure of one subject must never read them)."""
    now = dt.datetime.now(dt.UTC)
    contacts, rows, events = [], [], []
    for _ in range(count):
        contact_id = new_id()
        contacts.append(
            Contact(
                id=contact_id,
                kind="person",
                display_name="$k1$placeholder",
                created_at=now,
                updated_at=now,
            )
        )
        for _ in range(per_subject):
            rows.append(
                Interaction(
                    id=new_id(),
                    contact=contact_id,
                    kind="call",
                    occurred_at=now,
                    summary="$k1$placeholder",
                    body="$k1$placeholder",
                    created_at=now,
                    updated_at=now,
                )
            )
            events.append(
                OutboxEvent(
                    id=new_id(),
                    name="interaction.logged",
                    occurred_at=now,
                    contact_id=contact_id,
                    fanned_out_at=now,
                )
            )
        if len(rows) >= BATCH:
            await Contact.insert(*contacts).run()
            await Interaction.insert(*rows).run()
            await OutboxEvent.insert(*events).run()
            contacts, rows, events = [], [], []
    if contacts:
        await Contact.insert(*contacts).run()
    if rows:
        await Interaction.insert(*rows).run()
        await OutboxEvent.insert(*events).run()


async def _settle(kith: Kith) -> None:
    """Let the set-up's writes reach the database file first, so the erasure measured does
    not pay for checkpointing them (SQLite); PostgreSQL gets fresh planner statistics."""
    if kith.database.kind == "postgresql":
        await kith.database.engine.run_ddl("ANALYZE")
    else:
        await kith.database.engine.run_ddl("PRAGMA wal_checkpoint(TRUNCATE)")


async def _erase(kith: Kith, contact_id: uuid.UUID, settle: bool = True) -> float:
    if settle:
        await _settle(kith)
    started = time.perf_counter()
    await ErasureService(kith).run(contact_id, job_id=uuid.uuid4(), channel="bench")
    return time.perf_counter() - started


async def _read_all(kith: Kith, contact_id: uuid.UUID) -> float:
    """The export's reference: page through and decrypt the same interactions."""
    started = time.perf_counter()
    after = None
    while True:
        query = Interaction.select().where(Interaction.contact == contact_id)
        if after is not None:
            query = query.where(Interaction.id > after)
        rows = await query.order_by(Interaction.id).limit(500).run()
        if not rows:
            break
        for row in rows:
            await kith.protector.reveal(
                contact_id,
                Interaction._meta.tablename,
                row["id"],
                {"summary": row["summary"], "body": row["body"]},
            )
        after = rows[-1]["id"]
    return time.perf_counter() - started


async def run_engine(settings: Settings, interactions: int, others: int, batch: int) -> dict:
    kith = open_kith(settings)
    await kith.start()
    results: dict = {}
    try:
        # 1. Among few others.
        few = await _subject(kith, interactions, "few")
        results["erase_few"] = await _erase(kith, few)
        # Export of a subject of the same size, and its reference.
        exported = await _subject(kith, interactions, "export")
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "export.zip"
            started = time.perf_counter()
            await ExportBuilder(kith, exported).write(target)
            results["export"] = time.perf_counter() - started
            results["export_bytes"] = target.stat().st_size
        results["read_all"] = await _read_all(kith, exported)
        # 1b. Among many others.
        await _others(kith, others)
        many = await _subject(kith, interactions, "many")
        results["erase_many"] = await _erase(kith, many)
        # 3. A batch of small erasures.
        interactions_service = InteractionService(kith)
        small = []
        for number in range(batch):
            contact = await ContactService(kith).create(
                ContactCreate(
                    name=f"Small {number}",
                    emails=[EmailIn(f"small{number}@bench.example")],
                    phones=[PhoneIn(f"+44 20 7{number:03d} {number % 10}000")],
                )
            )
            for item in range(5):
                await interactions_service.log(
                    contact.id, InteractionCreate(kind="note", summary=f"note {item}")
                )
            small.append(contact.id)
        durations = []
        started = time.perf_counter()
        await _settle(kith)
        for contact_id in small:
            durations.append(await _erase(kith, contact_id, settle=False))
        results["batch_total"] = time.perf_counter() - started
        results["batch_p50"] = statistics.median(durations)
        results["batch_p95"] = sorted(durations)[int(len(durations) * 0.95) - 1]
    finally:
        await kith.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--interactions", type=int, default=10_000)
    parser.add_argument("--others", type=int, default=10_000, help="other subjects (x5 rows)")
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    print(f"# bench/erasure.py on {platform.platform()}, Python {platform.python_version()}")
    print(
        f"# subject: {args.interactions} interactions (1 in 100 an order), "
        f"{args.interactions} delivered events; others: {args.others} subjects x 5 interactions"
    )
    print()
    print(
        "| engine | erase 10 k (few others) | erase 10 k (many others) | many/few |"
        " export 10 k | export / read+decrypt | 1,000 erasures | p50 | p95 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        if engine == "postgresql" and (reason := postgres_unavailable()):
            print(f"| postgresql | skipped: {reason} |")
            continue
        with installation(engine) as settings:
            r = asyncio.run(run_engine(settings, args.interactions, args.others, args.batch))
        verdict = "ok" if max(r["erase_few"], r["erase_many"]) < TARGET_S else "OVER TARGET"
        print(
            f"| {engine} | {r['erase_few']:.3f} s | {r['erase_many']:.3f} s ({verdict}) "
            f"| {r['erase_many'] / r['erase_few']:.2f} | {r['export']:.2f} s "
            f"({r['export_bytes'] / 1e6:.1f} MB) | {r['export'] / r['read_all']:.2f} "
            f"| {r['batch_total']:.1f} s | {r['batch_p50'] * 1000:.1f} ms "
            f"| {r['batch_p95'] * 1000:.1f} ms |"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
