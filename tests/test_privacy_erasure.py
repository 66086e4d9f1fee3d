"""Erasure: the preview equals what execution touches; legal holds keep orders but erase the
person; an erasure killed by SIGKILL resumes and leaves no residue; certificates list it all."""

from __future__ import annotations

import msgspec
import pytest
from _privacy_subjects import (
    EMAIL,
    ORDER_SUMMARY,
    make_person,
    run_request,
)
from _privacy_workflow import make_user
from kith.privacy.erasure import ErasureService
from kith.privacy.subject_tables import LegalHold
from kith.runtime import Kith
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService


def _key(entry) -> tuple:
    return (entry.source, entry.location, entry.method, entry.count, entry.ground)


async def test_preview_equals_what_execution_touches(kith: Kith) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=3, orders=2)
    await kith.bus.drain()
    previewed, done = await run_request(kith, "erasure", contact_id, officer)
    assert previewed.preview is not None and done.outcome is not None
    assert [_key(p) for p in previewed.preview] == [_key(e) for e in done.outcome]
    print(msgspec.json.format(msgspec.json.encode(done.outcome)).decode())
    methods = {(e.location, e.method) for e in done.outcome}
    assert ("kith_contact_point", "deleted") in methods
    assert ("kith_privacy_data_key", "crypto_shredded") in methods
    holds = await LegalHold.select().where(LegalHold.contact_id == contact_id)
    assert len(holds) == 1 and holds[0]["held_count"] == 2
    kept = await InteractionService(kith).timeline(contact_id)
    assert sorted(i.summary for i in kept.items) == [f"{ORDER_SUMMARY} #0", f"{ORDER_SUMMARY} #1"]
    shell = await ContactService(kith).get(contact_id)
    assert shell.name == "[erased]" and shell.emails == [] and shell.phones == []
    assert await ContactService(kith).find_ids_by("email", EMAIL.lower()) == []
    _ = pytest
