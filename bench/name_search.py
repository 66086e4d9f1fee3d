"""Name search latency as the contact table grows: p50 of ``ContactService.list(q=...)``.

For each engine and size it creates a fresh installation, loads that many contacts (names
encrypted under each contact's own data key, name index rows written in bulk), and then runs
name searches in-process, as the API's ``GET /api/contacts?q=`` does: through the name index,
decrypting and checking the candidates, reading the page and auditing each contact listed.
Target (docs/performance.md): p50 under 20 ms at 1 million contacts, flat from 10 thousand.

    .venv/bin/python bench/name_search.py                       # 10 k and 100 k, both engines
    .venv/bin/python bench/name_search.py --sizes 10000,100000,1000000 --engines sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable

from _common import installation, postgres_unavailable, print_table
from kith import name_index
from kith.actor import Actor, Role
from kith.bootstrap import open_kith
from kith.events import utcnow
from kith.ids import new_id
from kith.privacy.encryption.keys import LoadedKey, encode_wrapped, wrap_context
from kith.privacy.encryption.primitives import aes_gcm, random_key
from kith.privacy.encryption.protector import protector_of
from kith.privacy.encryption.tables import DataKey
from kith.runtime import Kith
from kith.services.contacts import ContactService
from kith.settings import Settings
from kith.tables import Contact

LOAD_BATCH = 1000
QUERIES = 120
TABLE = Contact._meta.tablename
ACTOR = Actor(kind="user", id=uuid.UUID(int=1), role=Role.ADMIN, name="bench")

_CONSONANTS = "bcdfghjklmnprstvz"
_VOWELS = "aeiou"
_CYRILLIC = "бвгдзклмнпрстфхц"
_CYRILLIC_VOWELS = "аеиоуя"


def _word(rng: random.Random, syllables: int, cyrillic: bool = False) -> str:
    consonants, vowels = (_CYRILLIC, _CYRILLIC_VOWELS) if cyrillic else (_CONSONANTS, _VOWELS)
    text = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables))
    return text.capitalize()


class Names:
    """Given names from a small pool, picked unevenly (a few are very common, as in life);
    family names from a large one, one in ten in Cyrillic letters."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.given = [_word(rng, rng.randint(2, 3)) for _ in range(2_000)]
        self.family = [
            _word(rng, rng.randint(2, 4), cyrillic=rng.random() < 0.1) for _ in range(200_000)
        ]
        # Family names some contact has, to search for.
        self.used: list[str] = []

    def person(self) -> tuple[str, str]:
        given = self.given[min(int(self.rng.paretovariate(1.2)) - 1, len(self.given) - 1)]
        family = self.rng.choice(self.family)
        if len(self.used) < 10_000:
            self.used.append(family)
        return given, family


async def data_keys(kith: Kith, subjects: list[uuid.UUID]) -> None:
    """Each contact's own data key, made as the key store makes one but stored with one
    insert per batch (the store makes them one by one, as contacts arrive)."""
    store = protector_of(kith).keys
    kek_id = await store.provider.current_kek_id()
    now = utcnow()
    rows = []
    for subject in subjects:
        key_id, raw = new_id(), random_key()
        wrapped = await store.provider.wrap(kek_id, raw, wrap_context(subject, key_id))
        rows.append(
            DataKey(
                id=key_id,
                subject=subject,
                kek_id=kek_id,
                wrapped=encode_wrapped(wrapped),
                created_at=now,
            )
        )
        store.cache.put(key_id, LoadedKey(key_id=key_id, subject=subject, cipher=aes_gcm(raw)))
    await DataKey.insert(*rows).run()


async def load(kith: Kith, count: int, names: Names, progress: Callable[[int], None]) -> None:
    # An empty installation: the index is complete from the first contact on.
    assert await name_index.name_index(kith).complete()
    now = utcnow()
    engine = Contact._meta.db
    for start in range(0, count, LOAD_BATCH):
        contacts, rows = [], []
        ids = [new_id() for _ in range(min(LOAD_BATCH, count - start))]
        async with engine.transaction():
            await data_keys(kith, ids)
            for contact_id in ids:
                given, family = names.person()
                plain = {
                    "display_name": f"{given} {family}",
                    "given_name": given,
                    "family_name": family,
                }
                stored = await kith.protector.protect(contact_id, TABLE, contact_id, plain)
                contacts.append(
                    Contact(
                        id=contact_id,
                        kind="person",
                        tags=[],
                        source="bench",
                        archived=False,
                        created_at=now,
                        updated_at=now,
                        **stored,
                    )
                )
                rows.append((contact_id, TABLE, contact_id, plain))
            await Contact.insert(*contacts).run()
            await name_index.index_rows(kith, rows)
        progress(start + len(contacts))


async def settle(kith: Kith) -> None:
    """What a live installation's autovacuum does soon after a bulk load, done at once: on
    PostgreSQL a freshly loaded index is read through the table (no visibility map yet) and
    planned without statistics. SQLite has neither."""
    engine = kith.database.engine
    if kith.database.kind == "postgresql":
        await engine.run_ddl("VACUUM (ANALYZE) kith_name_token")


def queries(names: Names, rng: random.Random) -> dict[str, list[str]]:
    """What people type: the start of a common given name, a family name, both, and nothing
    anyone is called."""
    common = names.given[:20]
    return {
        "given name, 3 letters": [rng.choice(common)[:3] for _ in range(QUERIES)],
        "family name": [rng.choice(names.used)[:6] for _ in range(QUERIES)],
        "given and family": [
            f"{rng.choice(common)[:3]} {rng.choice(names.used)[:2]}" for _ in range(QUERIES)
        ],
        "no match": [f"qx{rng.randrange(10**6)}" for _ in range(QUERIES)],
    }


async def measure(kith: Kith, texts: list[str], limit: int) -> tuple[float, float, float]:
    """(p50 ms, p90 ms, mean contacts found) of searching each text once."""
    service = ContactService(kith, channel="bench")
    # Data keys are read from the database as a server that has not seen these contacts does.
    protector_of(kith).keys.cache.clear()
    await service.list(q=texts[0], limit=limit, actor=ACTOR)  # warm-up
    times, found = [], []
    for text in texts:
        started = time.perf_counter()
        page = await service.list(q=text, limit=limit, actor=ACTOR)
        times.append((time.perf_counter() - started) * 1000)
        found.append(len(page.items))
    deciles = statistics.quantiles(times, n=10)
    return statistics.median(times), deciles[8], statistics.mean(found)


async def run(
    settings: Settings, engine: str, size: int, limit: int, rows: list[list[str]]
) -> None:
    rng = random.Random(13)
    names = Names(rng)
    kith = open_kith(settings)
    await kith.start()
    try:
        started = time.perf_counter()
        last = [started]

        def progress(done: int) -> None:
            if time.perf_counter() - last[0] > 10:
                last[0] = time.perf_counter()
                print(f"  {engine} {size}: loaded {done}", file=sys.stderr)

        await load(kith, size, names, progress)
        await settle(kith)
        load_seconds = time.perf_counter() - started
        print(f"  {engine} {size}: loaded in {load_seconds:.0f} s", file=sys.stderr)
        for kind, texts in queries(names, rng).items():
            p50, p90, found = await measure(kith, texts, limit)
            rows.append(
                [
                    engine,
                    f"{size:,}",
                    kind,
                    f"{p50:.1f}",
                    f"{p90:.1f}",
                    f"{found:.1f}",
                    f"{load_seconds:.0f}",
                ]
            )
    finally:
        await kith.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--limit", type=int, default=50, help="contacts a page holds")
    args = parser.parse_args()
    rows: list[list[str]] = []
    for engine in args.engines.split(","):
        if engine == "postgresql" and (reason := postgres_unavailable()):
            print(f"postgresql skipped: {reason}", file=sys.stderr)
            continue
        for size in (int(s) for s in args.sizes.split(",")):
            with installation(engine) as settings:
                asyncio.run(run(settings, engine, size, args.limit, rows))
    print(f"Name search, {QUERIES} searches a kind, pages of {args.limit}; target p50 < 20 ms")
    print_table(["engine", "contacts", "search", "p50 ms", "p90 ms", "found", "load s"], rows)


if __name__ == "__main__":
    main()
