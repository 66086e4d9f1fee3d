"""CSV export of contacts: rows per second and peak memory, against a plain ``csv.writer``.

For each engine and size it creates a fresh installation and loads that many contacts (name,
an email, a phone, one in ten at one of a hundred organizations, tags and two custom fields;
names, emails and phones encrypted under each contact's own data key, as Kith stores them).
Then, each in a process of its own so that its peak memory is its own:

- the reference: ``csv.writer`` writing the same plaintext rows, generated as it goes;
- the export: ``ExportService`` as ``kith export contacts`` runs it, reading a page at a time,
  decrypting, writing and recording each contact in the audit log.

Both write to ``/dev/null``. Reported: rows per second, their ratio, and the peak resident
memory of each process (and its growth over the process's memory before the export began).
Target (docs/performance.md): memory flat from 10 thousand to 100 thousand contacts.

    .venv/bin/python bench/export_contacts.py                        # 10 k and 100 k, both engines
    .venv/bin/python bench/export_contacts.py --sizes 2000 --engines sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from _common import bench_settings, installation, postgres_unavailable, print_table
from kith.bootstrap import open_kith
from kith.events import utcnow
from kith.ids import new_id
from kith.runtime import Kith
from kith.schemas import FieldCreate
from kith.services.contacts import ContactFilter
from kith.services.exports import CORE_COLUMNS, ExportService
from kith.services.fields import FieldService
from kith.tables import Contact, ContactPoint, CustomFieldValue
from name_search import data_keys

LOAD_BATCH = 1000
ORGANIZATIONS = 100
INDUSTRIES = ["retail", "b2b", "public", "farming"]
CONTACT_TABLE = Contact._meta.tablename
POINT_TABLE = ContactPoint._meta.tablename


def people(count: int, seed: int = 11) -> Iterator[dict[str, object]]:
    """The contacts to load (and the reference's rows), the same on every call."""
    rng = random.Random(seed)
    for number in range(count):
        given, family = f"Given{number}", f"Family{rng.randrange(10**6)}"
        yield {
            "given": given,
            "family": family,
            "email": f"{given.lower()}.{family.lower()}@mail{number % 97}.example.org",
            "phone": f"+4420{7000000 + number:08d}"[:13],
            "organization": rng.randrange(ORGANIZATIONS) if rng.random() < 0.1 else None,
            "tags": ["customer", "newsletter"] if number % 3 == 0 else ["lead"],
            "industry": rng.choice(INDUSTRIES),
            "employees": rng.randint(1, 5000),
        }


async def load(kith: Kith, count: int) -> None:
    fields = FieldService(kith)
    industry = await fields.add(FieldCreate(name="industry", type="choice", choices=INDUSTRIES))
    employees = await fields.add(FieldCreate(name="employees", type="number"))
    now = utcnow()
    organizations = [new_id() for _ in range(ORGANIZATIONS)]
    await data_keys(kith, organizations)
    await Contact.insert(
        *[
            Contact(
                id=org,
                kind="organization",
                tags=[],
                source="bench",
                archived=False,
                created_at=now,
                updated_at=now,
                **await kith.protector.protect(
                    org,
                    CONTACT_TABLE,
                    org,
                    {"display_name": f"Company {i}", "given_name": None, "family_name": None},
                ),
            )
            for i, org in enumerate(organizations)
        ]
    ).run()
    generated = people(count)
    for start in range(0, count, LOAD_BATCH):
        ids = [new_id() for _ in range(min(LOAD_BATCH, count - start))]
        contacts, points, values = [], [], []
        async with Contact._meta.db.transaction():
            await data_keys(kith, ids)
            for contact_id in ids:
                person = next(generated)
                names = {
                    "display_name": f"{person['given']} {person['family']}",
                    "given_name": str(person["given"]),
                    "family_name": str(person["family"]),
                }
                organization = person["organization"]
                contacts.append(
                    Contact(
                        id=contact_id,
                        kind="person",
                        organization=None if organization is None else organizations[organization],
                        tags=person["tags"],
                        source="bench",
                        archived=False,
                        created_at=now,
                        updated_at=now,
                        **await kith.protector.protect(
                            contact_id, CONTACT_TABLE, contact_id, names
                        ),
                    )
                )
                for position, kind in enumerate(("email", "phone")):
                    row_id = new_id()
                    value = str(person[kind])
                    stored = await kith.protector.protect(
                        contact_id, POINT_TABLE, row_id, {"value": value}
                    )
                    points.append(
                        ContactPoint(
                            id=row_id,
                            contact=contact_id,
                            kind=kind,
                            value=stored["value"],
                            lookup=kith.protector.lookup_key(kind, value),
                            label="",
                            is_primary=True,
                            position=position,
                        )
                    )
                values.append(
                    CustomFieldValue(
                        id=new_id(),
                        contact=contact_id,
                        field=industry.id,
                        value=person["industry"],
                        set_at=now,
                    )
                )
                values.append(
                    CustomFieldValue(
                        id=new_id(),
                        contact=contact_id,
                        field=employees.id,
                        value=str(person["employees"]),
                        number=float(str(person["employees"])),
                        set_at=now,
                    )
                )
            await Contact.insert(*contacts).run()
            await ContactPoint.insert(*points).run()
            await CustomFieldValue.insert(*values).run()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reference(count: int) -> dict[str, float]:
    """A plain csv.writer over the same plaintext rows, generated as they are written."""
    before = _current_mb()
    started = time.perf_counter()
    with open(os.devnull, "w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink)
        writer.writerow([*CORE_COLUMNS, "employees", "industry"])
        for number, person in enumerate(people(count)):
            names = (str(person["given"]), str(person["family"]))
            writer.writerow(
                [
                    str(uuid.UUID(int=number)),
                    "person",
                    " ".join(names),
                    *names,
                    "",
                    "" if person["organization"] is None else f"Company {person['organization']}",
                    person["email"],
                    "",
                    person["phone"],
                    "",
                    ", ".join(person["tags"]),  # type: ignore[arg-type]
                    "",
                    "bench",
                    "2026-12-05T10:00:00+00:00",
                    "2026-12-05T10:00:00+00:00",
                    "false",
                    person["employees"],
                    person["industry"],
                ]
            )
    seconds = time.perf_counter() - started
    return {"rows": count, "seconds": seconds, "peak_mb": _peak_mb(), "before_mb": before}


async def export(home: str, database_url: str) -> dict[str, float]:
    kith = open_kith(bench_settings(Path(home), database_url))
    await kith.start()
    try:
        before = _current_mb()
        started = time.perf_counter()
        contacts = await ExportService(kith, "bench").contacts(ContactFilter())
        with open(os.devnull, "wb") as sink:
            async for chunk in contacts.chunks():
                sink.write(chunk)
        seconds = time.perf_counter() - started
        return {
            "rows": contacts.count,
            "seconds": seconds,
            "peak_mb": _peak_mb(),
            "before_mb": before,
        }
    finally:
        await kith.close()


def _child(*args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the measuring process failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(engine: str, size: int, rows: list[list[str]]) -> None:
    with installation(engine) as settings:

        async def seed() -> None:
            kith = open_kith(settings)
            await kith.start()
            try:
                await load(kith, size)
            finally:
                await kith.close()

        started = time.perf_counter()
        asyncio.run(seed())
        print(
            f"  {engine} {size}: loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr
        )
        plain = _child("reference", str(size))
        exported = _child("export", str(settings.home), settings.database_url)
        assert exported["rows"] == size + ORGANIZATIONS, exported
        plain_rate = plain["rows"] / plain["seconds"]
        export_rate = exported["rows"] / exported["seconds"]
        rows.append(
            [
                engine,
                f"{size:,}",
                f"{plain_rate:,.0f}",
                f"{export_rate:,.0f}",
                f"{export_rate / plain_rate:.3f}",
                f"{plain['peak_mb']:.0f}",
                f"{exported['peak_mb']:.0f}",
                f"{exported['peak_mb'] - exported['before_mb']:.0f}",
            ]
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        if kind == "reference":
            result = reference(int(rest[0]))
        else:
            result = asyncio.run(export(rest[0], rest[1]))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    rows: list[list[str]] = []
    for engine in args.engines.split(","):
        if engine == "postgresql" and (reason := postgres_unavailable()):
            print(f"postgresql skipped: {reason}", file=sys.stderr)
            continue
        for size in (int(s) for s in args.sizes.split(",")):
            run(engine, size, rows)
    print("CSV export of contacts (and their organizations) to /dev/null; target: flat memory")
    print_table(
        [
            "engine",
            "contacts",
            "csv.writer rows/s",
            "export rows/s",
            "ratio",
            "csv.writer peak MB",
            "export peak MB",
            "export growth MB",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
