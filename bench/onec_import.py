"""1C order import speed and memory: a CommerceML orders file imported by the 1C plugin
against the raw storage of the same documents.

For each engine and size it writes N generated order documents (CommerceML 2.10, UTF-8, one
buyer for every ten orders, two lines each), then measures in the same run:

- the reference: the same file read with the plugin's streaming reader and its documents stored
  as plaintext rows with raw ``sqlite3.executemany`` (committed every 200 rows);
- the import itself, in a process of its own on a fresh installation with the privacy plugin:
  each document parsed, its buyer matched or made (encrypted, blind-indexed, audited), an order
  interaction logged (encrypted), its detail row and 1C link written, 200 documents per
  transaction;

and reports documents/s of both, their ratio, and the import's peak RSS, which must stay flat
from 1,000 to 10,000 documents (the file is never held in memory).

    .venv/bin/python bench/onec_import.py                              # 1 k and 10 k, SQLite
    .venv/bin/python bench/onec_import.py --sizes 1000 --engines sqlite,postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import installation, postgres_unavailable, print_table
from kith.bootstrap import open_kith
from kith.plugins.onec import commerceml
from kith.settings import load_settings

BATCH = 200
_SYLLABLES = ["ка", "ло", "ми", "ля", "то", "ве", "ни", "чу", "ду", "ша", "мы", "жи"]


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables)).capitalize()


def generate(path: Path, documents: int, seed: int = 7) -> None:
    """``documents`` orders as 1C writes them, one buyer for every ten."""
    rng = random.Random(seed)
    buyers = max(1, documents // 10)
    with path.open("wb") as raw:
        writer = commerceml.Writer(raw, version="2.10", encoding="utf-8")
        writer.start(dt.datetime(2026, 12, 1))
        for number in range(documents):
            buyer = number % buyers
            lines = [
                commerceml.OrderLine(
                    onec_id=f"p-{n}",
                    name=f"Товар {_word(rng, 3)}",
                    quantity="2",
                    price="150.00",
                    amount="300.00",
                    unit="шт",
                )
                for n in range(2)
            ]
            writer.document(
                commerceml.Document(
                    onec_id=f"doc-{number:08d}",
                    number=f"ТД-{number:06d}",
                    date=f"2026-{1 + number % 12:02d}-{1 + number % 28:02d}",
                    time="12:00:00",
                    operation="Заказ товара",
                    role="Продавец",
                    currency="руб",
                    amount="600.00",
                    counterparties=[
                        commerceml.Counterparty(
                            onec_id=f"buyer-{buyer:07d}",
                            name=f"{_word(rng, 3)}ов {_word(rng, 2)}",
                            role="Покупатель",
                            points=[
                                commerceml.ContactPoint(
                                    kind="email", value=f"buyer{buyer}@example.ru"
                                ),
                                commerceml.ContactPoint(
                                    kind="phone", value=f"+7 9{buyer % 10**9:09d}"
                                ),
                            ],
                        )
                    ],
                    lines=lines,
                    requisites={"Статус заказа": "Согласован", "Заказ оплачен": "false"},
                )
            )
        writer.end()


def sqlite_reference(path: Path, folder: Path) -> float:
    """Documents/s of reading the file and storing plaintext rows with executemany."""
    database = folder / "reference.sqlite3"
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(
        "CREATE TABLE orders (id TEXT PRIMARY KEY, number TEXT, date TEXT, amount TEXT, "
        "buyer TEXT, email TEXT, lines TEXT)"
    )
    started = time.perf_counter()
    rows: list[tuple[str, ...]] = []
    count = 0
    for item in commerceml.read_items(path):
        assert isinstance(item, commerceml.Document)
        buyer = item.counterparties[0]
        rows.append(
            (
                item.onec_id,
                item.number,
                item.date,
                item.amount,
                buyer.name,
                buyer.points[0].value,
                json.dumps([line.name for line in item.lines]),
            )
        )
        count += 1
        if len(rows) >= BATCH:
            connection.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            connection.commit()
            rows = []
    if rows:
        connection.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        connection.commit()
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed


def child(path: Path) -> None:
    """The import, in this process alone: prints seconds and peak RSS (bytes) as JSON."""
    from kith.plugins.onec.importer import OnecImporter

    settings = load_settings(dict(os.environ))

    async def run() -> tuple[float, int]:
        kith = open_kith(settings)
        await kith.start()
        try:
            started = time.perf_counter()
            commerceml.survey(path)
            counts, done, finished = await OnecImporter(kith).import_file(path)
            assert finished and counts.failed == 0, counts.errors
            return time.perf_counter() - started, done
        finally:
            await kith.close()

    elapsed, done = asyncio.run(run())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": elapsed, "documents": done, "peak": peak}))


def kith_import(path: Path, engine: str) -> tuple[float, float]:
    """(documents/s, peak RSS in MB) of the import on a fresh installation."""
    with installation(engine) as settings:
        env = {
            **os.environ,
            "KITH_HOME": str(settings.home),
            "KITH_DATABASE_URL": settings.database_url,
            "KITH_LOG_LEVEL": "warning",
        }
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(path)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["documents"] / result["seconds"], result["peak"] / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--engines", default="sqlite")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child))
        return
    rows = []
    for engine in args.engines.split(","):
        if engine == "postgresql" and (reason := postgres_unavailable()):
            print(f"skipping PostgreSQL: {reason}", file=sys.stderr)
            continue
        for size in (int(s) for s in args.sizes.split(",")):
            with tempfile.TemporaryDirectory(prefix="kith-onec-bench-") as folder:
                path = Path(folder) / "orders.xml"
                generate(path, size)
                reference = sqlite_reference(path, Path(folder))
                rate, peak = kith_import(path, engine)
                rows.append(
                    [
                        engine,
                        f"{size:,}",
                        f"{path.stat().st_size / 1024 / 1024:.1f} MB",
                        f"{reference:,.0f}",
                        f"{rate:,.0f}",
                        f"{rate / reference:.3f}",
                        f"{peak:.0f} MB",
                    ]
                )
    print_table(
        ["engine", "documents", "file", "reference docs/s", "import docs/s", "ratio", "peak RSS"],
        rows,
    )


if __name__ == "__main__":
    main()
