"""Duplicate scan time as the contact table grows, and how close to linear it stays.

For each engine and size it creates a fresh installation and loads that many people (names
encrypted under each contact's own data key, name index rows written in bulk, as
bench/name_search.py does: given names from a small uneven pool, family names of three or four
syllables from a large one, one in ten in Cyrillic letters), of which one in a hundred is a
planted duplicate of another: the same name in the other script, with a typo, or in the other
order. It then measures:

- the reference, in the same run: reading, decrypting and recording in the audit log every
  contact once, as a scan does for each contact it compares: the least a scan that compared
  everyone would cost (it would then still make n²/2 comparisons);
- a full scan (``DuplicateService.scan(full=True)``): candidates from the blocking keys, only
  their contacts decrypted (and reported to the audit log), scored, stored;
- an incremental scan after 100 new contacts (10 of them duplicates).

Target (docs/performance.md): the full scan's time per contact close to flat from 10 k to 100 k
contacts (the ratio of µs per contact at the largest size to the smallest near 1).

    .venv/bin/python bench/duplicates.py                               # 10 k, 30 k; SQLite
    .venv/bin/python bench/duplicates.py --sizes 10000,30000,100000 --engines sqlite,postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import time
import uuid

from _common import installation, postgres_unavailable, print_table
from anyascii import anyascii
from kith import name_index
from kith.actor import Actor, Role
from kith.bootstrap import open_kith
from kith.duplicate_keys import canonical
from kith.events import utcnow
from kith.ids import new_id
from kith.privacy.encryption.protector import protector_of
from kith.privacy.rights.audit import STATE_KEY as AUDIT_WRITER
from kith.runtime import Kith
from kith.services.duplicates import DuplicateService
from kith.settings import Settings
from kith.tables import Contact, DuplicatePair, DuplicateScan
from name_search import Names, _word, data_keys

LOAD_BATCH = 1000
TABLE = Contact._meta.tablename
ACTOR = Actor(kind="user", id=uuid.UUID(int=1), role=Role.ADMIN, name="bench")
_CYRILLIC = str.maketrans("abvgdeziklmnoprstufh", "абвгдезиклмнопрстуфх")


class People(Names):
    """bench/name_search.py's names, with family names made up afresh of three or four
    syllables: two people share a whole name rarely (mostly through the few very common given
    names), rather than ever more often as a fixed pool of family names is drawn again."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)

    def person(self) -> tuple[str, str]:
        given, _ = super().person()
        return given, _word(self.rng, self.rng.randint(3, 4), cyrillic=self.rng.random() < 0.1)


def _typo(word: str, rng: random.Random) -> str:
    """One letter after the third changed: a typo late in a word."""
    if len(word) < 5:
        return word + word[-1]
    at = rng.randrange(3, len(word))
    return (
        word[:at] + rng.choice("aeiou" if word[at] not in "aeiou" else "bcdklmnt") + word[at + 1 :]
    )


def _other_script(word: str) -> str:
    latin = anyascii(word)
    return latin if latin != word else word.lower().translate(_CYRILLIC).capitalize()


def people(
    names: Names,
    count: int,
    rng: random.Random,
    every: int = 100,
    earlier: list[tuple[str, str]] | None = None,
) -> tuple[list[tuple[str, str]], list[tuple[int, int]]]:
    """``count`` (given, family) names, one in ``every`` a variant of an earlier one (of this
    list or of ``earlier``); and the planted pairs, as (copy, original) positions in
    ``earlier + this list``."""
    before = list(earlier or [])
    found: list[tuple[str, str]] = []
    planted: list[tuple[int, int]] = []
    for n in range(count):
        pool = len(before) + len(found)
        if pool >= every and n % every == every - 1:
            original = rng.randrange(pool)
            given, family = (
                (before + found)[original]
                if original < len(before)
                else found[original - len(before)]
            )
            variant = len(planted) % 3
            if variant == 0:
                found.append((_other_script(given), _other_script(family)))
            elif variant == 1:
                found.append((given, _typo(family, rng)))
            else:
                found.append((family, given))
            planted.append((pool, original))
        else:
            found.append(names.person())
    return found, planted


async def recall(ids: list[uuid.UUID], planted: list[tuple[int, int]]) -> int:
    """How many planted pairs a scan proposed."""
    pairs = {
        (row["contact_a"], row["contact_b"])
        for row in await DuplicatePair.select(DuplicatePair.contact_a, DuplicatePair.contact_b)
    }
    return sum(1 for copy, original in planted if canonical(ids[copy], ids[original]) in pairs)


async def load(kith: Kith, persons: list[tuple[str, str]]) -> list[uuid.UUID]:
    now = utcnow()
    engine = Contact._meta.db
    ids: list[uuid.UUID] = []
    for start in range(0, len(persons), LOAD_BATCH):
        batch = persons[start : start + LOAD_BATCH]
        chunk = [new_id() for _ in batch]
        contacts, rows = [], []
        async with engine.transaction():
            await data_keys(kith, chunk)
            for contact_id, (given, family) in zip(chunk, batch, strict=True):
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
        ids += chunk
    return ids


async def read_everyone(service: DuplicateService) -> float:
    """Seconds to read, decrypt and record in the audit log every contact once, as a scan does
    for each contact it compares: the least a scan that compared everyone would cost before
    making its n² comparisons."""
    protector_of(service.kith).keys.cache.clear()
    started = time.perf_counter()
    after = None
    while True:
        query = Contact.select(Contact.id)
        if after is not None:
            query = query.where(Contact.id > after)
        ids = [row["id"] for row in await query.order_by(Contact.id).limit(500).run()]
        if not ids:
            break
        await service.sides(ids, ACTOR)
        after = ids[-1]
    await settle(service.kith)
    return time.perf_counter() - started


async def settle(kith: Kith) -> None:
    """Wait until the audit log has written what it was given (write-behind)."""
    writer = kith.state.get(AUDIT_WRITER)
    if writer is not None:
        await writer.settle()


async def run(settings: Settings, engine: str, size: int, rows: list[list[str]]) -> float:
    rng = random.Random(29)
    names = People(rng)
    persons, planted = people(names, size, rng)
    kith = open_kith(settings)
    await kith.start()
    try:
        assert await name_index.name_index(kith).complete()
        started = time.perf_counter()
        ids = await load(kith, persons)
        print(
            f"  {engine} {size}: loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr
        )
        service = DuplicateService(kith, channel="bench")
        reference = await read_everyone(service)
        protector_of(kith).keys.cache.clear()
        started = time.perf_counter()
        full = await service.scan(full=True, actor=ACTOR)
        await settle(kith)
        full_s = time.perf_counter() - started
        found = int(await DuplicatePair.count())
        caught = await recall(ids, planted)
        # An hour later: 100 new contacts, one in ten a variant of someone already there.
        hour = dt.timedelta(hours=1)
        await Contact.update({Contact.updated_at: utcnow() - 2 * hour}, force=True)
        await DuplicateScan.update({DuplicateScan.started_at: utcnow() - hour}, force=True)
        more, extra = people(names, 100, rng, every=10, earlier=persons)
        ids += await load(kith, more)
        protector_of(kith).keys.cache.clear()
        started = time.perf_counter()
        incremental = await service.scan(actor=ACTOR)
        await settle(kith)
        incremental_s = time.perf_counter() - started
        caught_later = await recall(ids, extra)
        per_contact = full_s / size * 1e6
        rows.append(
            [
                engine,
                f"{size:,}",
                f"{reference:.2f}",
                f"{full_s:.2f}",
                f"{per_contact:.0f}",
                f"{full_s / reference:.2f}",
                f"{full.compared:,}",
                f"{full.compared / size:.2f}",
                f"{found:,}",
                f"{caught}/{len(planted)}",
                f"{full.skipped_keys:,}",
                f"{incremental_s * 1000:.0f}",
                f"{incremental.contacts}",
                f"{incremental.new} ({caught_later}/{len(extra)})",
            ]
        )
        return per_contact
    finally:
        await kith.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="sqlite")
    parser.add_argument("--sizes", default="10000,30000")
    args = parser.parse_args()
    rows: list[list[str]] = []
    growth: list[str] = []
    for engine in args.engines.split(","):
        if engine == "postgresql" and (reason := postgres_unavailable()):
            print(f"postgresql skipped: {reason}", file=sys.stderr)
            continue
        sizes = [int(s) for s in args.sizes.split(",")]
        per_contact = []
        for size in sizes:
            with installation(engine) as settings:
                per_contact.append(asyncio.run(run(settings, engine, size, rows)))
        if len(sizes) > 1:
            growth.append(
                f"{engine}: µs per contact at {sizes[-1]:,} / at {sizes[0]:,} = "
                f"{per_contact[-1] / per_contact[0]:.2f} (time ratio "
                f"{per_contact[-1] * sizes[-1] / (per_contact[0] * sizes[0]):.1f} for "
                f"{sizes[-1] / sizes[0]:.0f} times the contacts)"
            )
    print("Duplicate scan; target: µs per contact close to flat from 10 k to 100 k contacts")
    print_table(
        [
            "engine",
            "contacts",
            "read all s",
            "full scan s",
            "µs/contact",
            "scan/read all",
            "pairs compared",
            "compared/contact",
            "pairs found",
            "planted found",
            "keys skipped",
            "incremental ms",
            "contacts checked",
            "new pairs (planted found)",
        ],
        rows,
    )
    for line in growth:
        print(line)


if __name__ == "__main__":
    main()
