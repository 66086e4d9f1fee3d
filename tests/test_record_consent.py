"""Consent given through a plugin's channel reaches the ledger: ``kith.record_consent`` calls
``kith_record_consent``, which the privacy rights plugin answers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from kith import (
    ConsentGiven,
    ContactCreate,
    ContactService,
    InteractionCreate,
    InteractionService,
    Kith,
    Purpose,
    hookimpl,
    record_consent,
)
from kith.privacy.rights.consent import ConsentService

PURPOSE = "newsletter"
NOTICE = "We send you our newsletter each month. Unsubscribe at any time."


class Newsletter:
    @hookimpl
    def kith_register_purposes(self, register: Callable[[Purpose], None]) -> None:
        register(Purpose(name=PURPOSE, description="Monthly news", lawful_basis="consent"))


@pytest.mark.kith_plugins(("newsletter", Newsletter()))
async def test_consent_is_tied_to_the_notice_text_shown_and_its_source(kith: Kith):
    contact = await ContactService(kith).create(ContactCreate(name="Ada"))
    source, _ = await InteractionService(kith).log(
        contact.id, InteractionCreate(kind="form_submission", summary="Form")
    )
    given = ConsentGiven(
        purpose=PURPOSE, notice_text=NOTICE, channel="webform", source_interaction_id=source.id
    )
    [receipt] = await record_consent(kith, contact.id, given)
    assert receipt.notice_sha256 == hashlib.sha256(NOTICE.encode()).hexdigest()
    [event] = await ConsentService(kith).history(contact.id)
    assert event.id == receipt.event_id
    assert (event.action, event.channel) == ("given", "webform")
    assert event.source_interaction_id == source.id
    # The same text again refers to the same notice version; new text makes a new one.
    [again] = await record_consent(kith, contact.id, given)
    assert again.notice_version == receipt.notice_version
    changed = ConsentGiven(purpose=PURPOSE, notice_text=NOTICE + " v2", channel="webform")
    [newer] = await record_consent(kith, contact.id, changed)
    assert newer.notice_version == (receipt.notice_version or 0) + 1
