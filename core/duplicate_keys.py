"""Candidate duplicate pairs from keyed blocking keys, without decrypting anything.

Two kinds of key are stored beside the contacts already, as keyed hashes:

- the name index's *pair tokens* (:mod:`kith.name_index`): two words of a name together, whole
  and cut to their first letters, in Latin letters ("Иван Иванов" and "Ivan Ivanov" hold the
  same ones); the only negative values of ``kith_name_token.token``;
- the blind indexes of emails and phones (``kith_contact_point.lookup``).

Contacts holding the same key form a *block*, and each two contacts of a block are a candidate
pair. A key held by more than ``max_block`` contacts (a pair of very common words, a company's
switchboard number) is skipped and counted: comparing everyone in it with everyone would cost
n² and tell nobody apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from kith.tables import NameToken

Pair = tuple[uuid.UUID, uuid.UUID]
# Ids per IN (...) list: well under SQLite's limit of bound values.
CHUNK = 500
# Reasons a shared blind index gives, by contact point kind.
EXACT_REASONS = {"email": "same_email", "phone": "same_phone"}


@dataclass(frozen=True)
class _KeySource:
    """Where one kind of blocking key is stored: table, key column, and which rows hold keys."""

    table: str
    key: str
    where: str


_NAME_PAIRS = _KeySource("kith_name_token", "token", "token < 0")
_POINTS = _KeySource("kith_contact_point", "lookup", "lookup IS NOT NULL")


@dataclass
class Candidates:
    """Candidate pairs (smaller id first) with the exact reasons a shared email or phone gave
    (an empty set: only a name key is shared), and the keys that were too common to use."""

    pairs: dict[Pair, set[str]] = field(default_factory=dict)
    skipped: set[tuple[str, Any]] = field(default_factory=set)

    def add(self, first: uuid.UUID, second: uuid.UUID, reason: str | None = None) -> None:
        if first == second:
            return
        reasons = self.pairs.setdefault(canonical(first, second), set())
        if reason is not None:
            reasons.add(reason)


def canonical(first: uuid.UUID, second: uuid.UUID) -> Pair:
    """A pair in its stored order: the smaller id first."""
    return (first, second) if first < second else (second, first)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _marks(count: int) -> str:
    return ", ".join("{}" for _ in range(count))


async def _raw(sql: str, *args: Any) -> list[dict[str, Any]]:
    return list(await NameToken.raw(sql, *args).run())


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def _blocks_of(
    source: _KeySource,
    contact_ids: Sequence[uuid.UUID],
    max_block: int,
    found: Candidates,
    common: Set[tuple[str, Any]],
) -> list[tuple[Any, set[uuid.UUID], set[uuid.UUID]]]:
    """The usable blocks the given contacts are in: (kind, their members, all holders).
    Keys in ``common`` are known to be too common already: they are not counted again (a scan
    in batches would otherwise count a common key's holders once for every batch)."""
    mine: dict[Any, set[uuid.UUID]] = {}
    kinds: dict[Any, str] = {}
    extra = ", kind" if source is _POINTS else ""
    for chunk in _chunks(contact_ids):
        for row in await _raw(
            f"SELECT {source.key} AS k, contact{extra} FROM {source.table} "
            f"WHERE contact IN ({_marks(len(chunk))}) AND {source.where}",
            *chunk,
        ):
            mine.setdefault(row["k"], set()).add(_uuid(row["contact"]))
            if extra:
                kinds[row["k"]] = row["kind"]
    keys = [key for key in mine if (source.table, key) not in common]
    usable: list[Any] = []
    for chunk in _chunks(keys):
        for row in await _raw(
            f"SELECT {source.key} AS k, COUNT(DISTINCT contact) AS n FROM {source.table} "
            f"WHERE {source.key} IN ({_marks(len(chunk))}) GROUP BY {source.key}",
            *chunk,
        ):
            if int(row["n"]) > max_block:
                found.skipped.add((source.table, row["k"]))
            elif int(row["n"]) >= 2:
                usable.append(row["k"])
    holders: dict[Any, set[uuid.UUID]] = {}
    for chunk in _chunks(usable):
        for row in await _raw(
            f"SELECT {source.key} AS k, contact FROM {source.table} "
            f"WHERE {source.key} IN ({_marks(len(chunk))})",
            *chunk,
        ):
            holders.setdefault(row["k"], set()).add(_uuid(row["contact"]))
    return [(kinds.get(key, ""), mine[key], holders[key]) for key in usable if key in holders]


async def of_contacts(
    contact_ids: Sequence[uuid.UUID],
    max_block: int,
    *,
    names: bool = True,
    common: Set[tuple[str, Any]] = frozenset(),
) -> Candidates:
    """The candidate pairs that include at least one of ``contact_ids`` (``names``: through
    name keys too; ``common``: keys found too common before, as :attr:`Candidates.skipped`)."""
    found = Candidates()
    for kind, members, holders in await _blocks_of(_POINTS, contact_ids, max_block, found, common):
        for first in members:
            for second in holders:
                found.add(first, second, EXACT_REASONS.get(kind))
    if names:
        for _, members, holders in await _blocks_of(
            _NAME_PAIRS, contact_ids, max_block, found, common
        ):
            for first in members:
                for second in holders:
                    found.add(first, second)
    return found


# -- everyone, batch by batch (a full scan) ------------------------------------------------------


async def mark_blocks(scan_id: uuid.UUID, max_block: int, *, names: bool = True) -> int:
    """Write the usable keys (held by 2 to ``max_block`` contacts) for a full scan to
    ``kith_duplicate_block``, in SQL; how many keys were too common."""
    sources = [(_POINTS, "lookup")] + ([(_NAME_PAIRS, "token")] if names else [])
    common = 0
    for source, column in sources:
        grouped = (
            f"SELECT {source.key} FROM {source.table} WHERE {source.where} "
            f"GROUP BY {source.key} HAVING COUNT(DISTINCT contact)"
        )
        await _raw(
            f"INSERT INTO kith_duplicate_block (scan, {column}) "
            f"SELECT {{}}, {source.key} FROM ({grouped} BETWEEN 2 AND {{}}) usable",
            scan_id,
            max_block,
        )
        rows = await _raw(f"SELECT COUNT(*) AS n FROM ({grouped} > {{}}) common", max_block)
        common += int(rows[0]["n"]) if rows else 0
    return common


async def pairs_from(
    scan_id: uuid.UUID, first: uuid.UUID, last: uuid.UUID, *, names: bool = True
) -> Candidates:
    """The candidate pairs whose smaller id is from ``first`` to ``last``, through the keys
    :func:`mark_blocks` wrote for the scan: each pair once, whatever the number of keys its
    contacts share."""
    found = Candidates()
    for row in await _raw(
        "SELECT x.contact AS a, y.contact AS b, x.kind AS kind FROM kith_contact_point x "
        "JOIN kith_duplicate_block k ON k.scan = {} AND k.lookup = x.lookup "
        "JOIN kith_contact_point y ON y.lookup = x.lookup AND y.contact > x.contact "
        "WHERE x.contact >= {} AND x.contact <= {}",
        scan_id,
        first,
        last,
    ):
        found.add(_uuid(row["a"]), _uuid(row["b"]), EXACT_REASONS.get(row["kind"]))
    if names:
        for row in await _raw(
            "SELECT x.contact AS a, y.contact AS b FROM kith_name_token x "
            "JOIN kith_duplicate_block k ON k.scan = {} AND k.token = x.token "
            "JOIN kith_name_token y ON y.token = x.token AND y.contact > x.contact "
            "WHERE x.contact >= {} AND x.contact <= {} AND x.token < 0 "
            "GROUP BY x.contact, y.contact",
            scan_id,
            first,
            last,
        ):
            found.add(_uuid(row["a"]), _uuid(row["b"]))
    return found
