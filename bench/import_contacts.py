"""CSV import speed and memory: ``kith import contacts`` against the database's own bulk load.

For each engine and size it writes N generated contacts (family and given name, email, phone,
company, two custom fields) as a windows-1251 CSV with ``;``, as a Russian CRM or 1C exports
them, then measures in the same run:

- the reference: the same plaintext rows read with the csv module and stored with raw
  ``sqlite3.executemany`` (SQLite, committed every 500 rows as the import commits) or with
  ``COPY`` (PostgreSQL, asyncpg's ``copy_records_to_table``);
- ``kith import contacts FILE``, the real command in its own process, into a fresh
  installation with the privacy plugin: encoding and delimiter detected, emails and phones
  normalised, suppression and duplicates checked, names, emails and phones encrypted under
  each contact's own key, blind indexes and the name index written, organizations matched or
  created, each contact audited and announced (``contact.created``);

and reports rows/s of both, their ratio (target: at least 0.3) and the import's peak RSS
(target: under 300 MB, flat as N grows, the parsing worker's included). Then, in this process,
the CPU time per row of the work no database is needed for (parsing and validating; the keyed
hashes and encryptions of :mod:`kith.import_digests`), and what ratio that work alone would
allow on two cores: a bound on what any split of the work between processes can reach.

    .venv/bin/python bench/import_contacts.py                          # 10 k, both engines
    .venv/bin/python bench/import_contacts.py --sizes 10000,100000 --engines sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from _common import installation, postgres_unavailable, print_table
from kith.bootstrap import open_kith
from kith.csv_reading import CsvFormat, records
from kith.import_digests import digest_keys
from kith.import_parsing import batches, parse_batch
from kith.schemas import FieldCreate
from kith.services.fields import FieldService
from kith.settings import Settings

KITH = str(Path(sys.executable).with_name("kith"))
HEADER = ["Фамилия", "Имя", "Эл. почта", "Телефон", "Организация", "Отрасль", "Сотрудники"]
BATCH = 500
INDUSTRIES = ["розница", "опт", "производство", "услуги", "строительство"]
_SYLLABLES = ["ка", "ло", "ми", "ля", "то", "ве", "ни", "чу", "ду", "ша", "мы", "жи"]


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables)).capitalize()


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """``rows`` contacts, one company for every 20 people, written as windows-1251 ``;``."""
    rng = random.Random(seed)
    companies = [f"Фирма {_word(rng, 3)}" for _ in range(max(1, rows // 20))]
    with open(path, "w", encoding="cp1251", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\r\n")
        writer.writerow(HEADER)
        for number in range(rows):
            writer.writerow(
                [
                    _word(rng, rng.randint(2, 4)) + "ов",
                    _word(rng, 2),
                    f"person{number}@example.ru",
                    f"+7 9{number % 10**9:09d}",
                    rng.choice(companies),
                    rng.choice(INDUSTRIES),
                    str(rng.randint(1, 500)),
                ]
            )


def _read(path: Path) -> Iterator[tuple[str, ...]]:
    with open(path, encoding="cp1251", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        next(reader)
        for row in reader:
            yield tuple(row)


def sqlite_reference(path: Path, folder: Path) -> float:
    """Rows/s of reading the file and ``executemany`` of its plaintext rows, 500 a commit."""
    database = sqlite3.connect(folder / "reference.sqlite3", isolation_level=None)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA synchronous=NORMAL")
    database.execute(
        "CREATE TABLE contact (family TEXT, given TEXT, email TEXT, phone TEXT, company TEXT, "
        "industry TEXT, employees TEXT)"
    )
    started = time.perf_counter()
    rows = _read(path)
    count = 0
    while batch := list(itertools.islice(rows, BATCH)):
        database.execute("BEGIN")
        database.executemany("INSERT INTO contact VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
        database.execute("COMMIT")
        count += len(batch)
    elapsed = time.perf_counter() - started
    database.close()
    return count / elapsed


async def _copy(url: str, path: Path) -> float:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "CREATE TABLE bench_reference (family TEXT, given TEXT, email TEXT, phone TEXT, "
            "company TEXT, industry TEXT, employees TEXT)"
        )
        started = time.perf_counter()
        rows = list(_read(path))
        await connection.copy_records_to_table("bench_reference", records=rows)
        elapsed = time.perf_counter() - started
        await connection.execute("DROP TABLE bench_reference")
        return len(rows) / elapsed
    finally:
        await connection.close()


def postgres_reference(path: Path, settings: Settings) -> float:
    """Rows/s of reading the file and ``COPY`` of its plaintext rows."""
    return asyncio.run(_copy(settings.database_url, path))


async def _declare_fields(settings: Settings) -> None:
    kith = open_kith(settings)
    await kith.start()
    try:
        fields = FieldService(kith)
        await fields.add(FieldCreate(name="industry", type="text", label="Отрасль"))
        await fields.add(FieldCreate(name="employees", type="number", label="Сотрудники"))
    finally:
        await kith.close()


def kith_import(path: Path, settings: Settings) -> tuple[float, float, str]:
    """Rows/s of ``kith import contacts``, its peak RSS in MB, and its summary line."""
    asyncio.run(_declare_fields(settings))
    env = {
        **os.environ,
        "KITH_HOME": str(settings.home),
        "KITH_DATABASE_URL": settings.database_url,
        "KITH_DEFAULT_REGION": "RU",
    }
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [KITH, "import", "contacts", str(path)], env=env, stdout=out, stderr=err
        )
        peak = 0
        while True:
            # The child's own high-water marks, and its parsing worker's: the rusage a parent
            # gets also counts the parent's own size at the fork.
            peak = max(
                peak, _high_water(process.pid) + sum(map(_high_water, _children(process.pid)))
            )
            if process.poll() is not None:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"kith import failed: {err.read()}")
        summary = out.read().strip()
    rows = sum(1 for _ in _read(path))
    return rows / elapsed, peak / 1024, summary


async def _cpu_per_row(path: Path, settings: Settings) -> tuple[float, float]:
    """CPU µs per row of parsing alone, and of parsing with the keyed hashes and encryptions
    (as the worker does them), on this process's core."""
    from kith.services.imports import ImportService

    kith = open_kith(settings)
    await kith.start()
    try:
        service = ImportService(kith)
        _, options = await service.prepare("contacts", path, None, BATCH)
        spec = service._spec({"kind": "contacts", "id": "bench"}, options)
        keys = await digest_keys(kith)
        rows = list(records(path, CsvFormat(options.encoding, options.delimiter)))
        figures = []
        for given in (None, keys):
            started = time.process_time()
            for batch in batches(iter(rows), BATCH):
                parse_batch("contacts", batch, spec, given)
            figures.append((time.process_time() - started) / len(rows) * 1e6)
        return figures[0], figures[1]
    finally:
        await kith.close()


def _high_water(pid: int) -> int:
    """A process's peak resident set in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if fields[1] == str(pid):
                found.append(int(entry.name))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000", help="comma-separated row counts")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    engines = args.engines.split(",")
    if "postgresql" in engines and (reason := postgres_unavailable()):
        print(f"skipping PostgreSQL: {reason}", file=sys.stderr)
        engines.remove("postgresql")
    results = []
    bounds = []
    with tempfile.TemporaryDirectory(prefix="kith-import-bench-") as scratch:
        folder = Path(scratch)
        for size in sizes:
            path = folder / f"contacts-{size}.csv"
            generate(path, size)
            for engine in engines:
                with installation(engine) as settings:
                    if engine == "sqlite":
                        reference, label = sqlite_reference(path, folder), "executemany"
                        (folder / "reference.sqlite3").unlink()
                    else:
                        reference, label = postgres_reference(path, settings), "COPY"
                    rate, peak, summary = kith_import(path, settings)
                    parse_us, keyed_us = asyncio.run(_cpu_per_row(path, settings))
                print(f"{engine} {size}: {summary}", file=sys.stderr)
                results.append(
                    [
                        engine,
                        f"{size:,}",
                        f"{label} {reference:,.0f}",
                        f"{rate:,.0f}",
                        f"{rate / reference:.3f}",
                        f"{peak:,.0f}",
                    ]
                )
                # Two cores doing nothing but this work, perfectly split, against the reference.
                bound = 2 / (keyed_us * 1e-6)
                bounds.append(
                    [
                        engine,
                        f"{size:,}",
                        f"{parse_us:.0f}",
                        f"{keyed_us - parse_us:.0f}",
                        f"{1e6 / reference:.1f}",
                        f"{bound / reference:.2f}",
                    ]
                )
    print_table(
        ["engine", "rows", "reference rows/s", "kith import rows/s", "ratio", "peak RSS MB"],
        results,
    )
    print()
    print_table(
        [
            "engine",
            "rows",
            "parse µs/row",
            "hashes + encryption µs/row",
            "reference µs/row",
            "bound on the ratio (2 cores, this work alone)",
        ],
        bounds,
    )


if __name__ == "__main__":
    main()
