"""Duplicate detection: candidate pairs from keyed blocking keys (name word pairs, email and
phone blind indexes), scored with rapidfuzz across scripts; listed, dismissed for good, erased
with the person. SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn
from kith.services.contacts import ContactService
from kith.services.duplicates import DuplicateService


async def _add(kith: Kith, name: str, **fields: Any) -> uuid.UUID:
    return (await ContactService(kith).create(ContactCreate(name=name, **fields))).id


def _pairs(page: Any) -> dict[frozenset[uuid.UUID], Any]:
    return {frozenset((p.contact_a.id, p.contact_b.id)): p for p in page.items}


async def test_cyrillic_and_latin_spellings_meet(kith: Kith) -> None:
    ivan = await _add(kith, "Иван Иванов")
    latin = await _add(kith, "Ivan Ivanov")
    await _add(kith, "Grace Hopper")
    service = DuplicateService(kith)
    result = await service.scan()
    assert result.mode == "full"
    pairs = _pairs(await service.list())
    assert set(pairs) == {frozenset((ivan, latin))}
    [pair] = pairs.values()
    assert pair.score == 100
    assert pair.reasons == ["similar_name"]
