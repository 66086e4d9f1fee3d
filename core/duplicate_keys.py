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
from collections.abc import Iterable, Sequence
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
    (an empty set: only a name key is shared), and how many keys were too common to use."""

    pairs: dict[Pair, set[str]] = field(default_factory=dict)
    skipped_keys: int = 0

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


# -- everyone (a full scan) ----------------------------------------------------------------------


async def _all_blocks(source: _KeySource, max_block: int, with_kind: bool) -> list[list[Any]]:
    """Every block of 2 to ``max_block`` contacts of one key source, as [holder rows]."""
    kind = ", kind" if with_kind else ""
    rows = await _raw(
        f"SELECT {source.key} AS k, contact{kind} FROM {source.table} "
        f"WHERE {source.where} AND {source.key} IN ("
        f"SELECT {source.key} FROM {source.table} WHERE {source.where} "
        f"GROUP BY {source.key} HAVING COUNT(DISTINCT contact) BETWEEN 2 AND {{}}"
        f") ORDER BY {source.key}",
        max_block,
    )
    blocks: list[list[Any]] = []
    last: Any = object()
    for row in rows:
        if row["k"] != last:
            blocks.append([])
            last = row["k"]
        blocks[-1].append(row)
    return blocks


async def _too_common(source: _KeySource, max_block: int) -> int:
    rows = await _raw(
        f"SELECT COUNT(*) AS n FROM (SELECT {source.key} FROM {source.table} "
        f"WHERE {source.where} GROUP BY {source.key} "
        f"HAVING COUNT(DISTINCT contact) > {{}}) common",
        max_block,
    )
    return int(rows[0]["n"]) if rows else 0


async def everyone(max_block: int, *, names: bool = True) -> Candidates:
    """The candidate pairs among all contacts (``names``: through name keys too; off while
    the name index cannot be trusted)."""
    found = Candidates()
    for block in await _all_blocks(_POINTS, max_block, with_kind=True):
        holders = sorted({_uuid(row["contact"]) for row in block})
        reason = EXACT_REASONS.get(block[0]["kind"])
        for i, first in enumerate(holders):
            for second in holders[i + 1 :]:
                found.add(first, second, reason)
    found.skipped_keys += await _too_common(_POINTS, max_block)
    if names:
        for block in await _all_blocks(_NAME_PAIRS, max_block, with_kind=False):
            holders = sorted({_uuid(row["contact"]) for row in block})
            for i, first in enumerate(holders):
                for second in holders[i + 1 :]:
                    found.add(first, second)
        found.skipped_keys += await _too_common(_NAME_PAIRS, max_block)
    return found


# -- some contacts (an incremental scan) ---------------------------------------------------------


async def _blocks_of(
    source: _KeySource, contact_ids: Sequence[uuid.UUID], max_block: int, found: Candidates
) -> list[tuple[Any, set[uuid.UUID], set[uuid.UUID]]]:
    """The usable blocks the given contacts are in: (key, their members, all holders)."""
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
    keys = list(mine)
    usable: list[Any] = []
    for chunk in _chunks(keys):
        for row in await _raw(
            f"SELECT {source.key} AS k, COUNT(DISTINCT contact) AS n FROM {source.table} "
            f"WHERE {source.key} IN ({_marks(len(chunk))}) GROUP BY {source.key}",
            *chunk,
        ):
            if int(row["n"]) > max_block:
                found.skipped_keys += 1
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
    contact_ids: Sequence[uuid.UUID], max_block: int, *, names: bool = True
) -> Candidates:
    """The candidate pairs that include at least one of ``contact_ids``."""
    found = Candidates()
    for kind, members, holders in await _blocks_of(_POINTS, contact_ids, max_block, found):
        for first in members:
            for second in holders:
                found.add(first, second, EXACT_REASONS.get(kind))
    if names:
        for _, members, holders in await _blocks_of(_NAME_PAIRS, contact_ids, max_block, found):
            for first in members:
                for second in holders:
                    found.add(first, second)
    return found
