"""The suppression list: an erased person cannot be re-created through the API by accident (409
saying they asked to be erased); an operator's override is accepted and recorded; the list
holds nothing readable; a marketing objection outlives the contact it was made by."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from _privacy_subjects import EMAIL, EMAIL_2, PHONE, found_needles, make_person, run_request
from _privacy_workflow import NEWSLETTER, configure_privacy, make_user
from kith import SYSTEM
from kith.errors import Conflict
from kith.hookspecs import hookimpl
from kith.privacy.audit import AuditLog
from kith.privacy.consent import ConsentService
from kith.privacy.subject_tables import Suppression, SuppressionOverride
from kith.privacy.suppression import SuppressionList
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn
from kith.services.contacts import ContactService
from kith.tables import ContactPoint


class NoExampleDomain:
    """A plugin with a check of its own on new contacts (core calls every plugin's)."""

    @hookimpl
    def kith_check_new_contact(self, emails: list[str]) -> None:
        for email in emails:
            if email.endswith("@blocked.example"):
                raise Conflict("blocked.example addresses are not accepted here")


@pytest.fixture
def kith_plugins() -> list[Any]:
    return [("no-example-domain", NoExampleDomain())]


async def _erase(kith: Kith) -> uuid.UUID:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=1, orders=0)
    await run_request(kith, "erasure", contact_id, officer)
    return contact_id


async def test_an_erased_person_is_not_recreated_through_the_api(
    kith: Kith, kith_client, kith_auth
) -> None:
    await _erase(kith)
    headers = await kith_auth("agent")

    for body in (
        {"name": "P. Q.", "emails": [{"address": EMAIL.upper()}]},
        {"name": "P. Q.", "emails": [{"address": "new@fresh.example"}, {"address": EMAIL_2}]},
        {"name": "P. Q.", "phones": [{"number": "020 7946 0777"}]},
    ):
        refused = await kith_client.post("/api/contacts", json=body, headers=headers)
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert "asked to be erased" in problem["detail"]
        assert "override_suppression_reason" in problem["detail"]
        # The answer names the field, never the value.
        assert EMAIL.lower() not in refused.text.lower() and "7946" not in refused.text
    assert problem["field"] == "phones[0]"
    # Nothing was written by the refused attempts.
    assert await ContactPoint.count() == 0

    # Someone else entirely is fine, and so are other plugins' checks.
    fine = await kith_client.post(
        "/api/contacts",
        json={"name": "Other", "emails": [{"address": "o@x.example"}]},
        headers=headers,
    )
    assert fine.status_code == 201
    blocked = await kith_client.post(
        "/api/contacts",
        json={"name": "B", "emails": [{"address": "b@blocked.example"}]},
        headers=headers,
    )
    assert blocked.status_code == 409 and "blocked.example" in blocked.json()["detail"]


async def test_an_operator_override_is_accepted_and_recorded(
    kith: Kith, kith_client, kith_auth
) -> None:
    await _erase(kith)
    headers = await kith_auth("agent")
    reason = "She called us on 2026-03-01 and asked to become a customer again"
    created = await kith_client.post(
        "/api/contacts",
        json={
            "name": "Philomena Q.",
            "emails": [{"address": EMAIL}],
            "phones": [{"number": PHONE}],
            "override_suppression_reason": reason,
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    contact_id = uuid.UUID(created.json()["id"])
    overrides = await SuppressionList(kith).overrides(contact_id)
    assert sorted(o["kind"] for o in overrides) == ["email", "phone"]
    assert {o["reason"] for o in overrides} == {reason}
    assert all(o["actor"].startswith("user:") for o in overrides)
    # The reason is stored encrypted, and the audit log has the override.
    raw = await SuppressionOverride.select(SuppressionOverride.reason)
    assert all(row["reason"].startswith("$k1$") for row in raw)
    entries = await AuditLog(kith).entries(contact_id)
    assert "suppression_override" in [e.action for e in entries]
    # An empty reason is no override.
    blank = await kith_client.post(
        "/api/contacts",
        json={"name": "X", "emails": [{"address": EMAIL_2}], "override_suppression_reason": ""},
        headers=headers,
    )
    assert blank.status_code == 422


async def test_the_list_holds_nothing_readable(kith: Kith) -> None:
    contact_id = await _erase(kith)
    rows = await Suppression.select()
    assert sorted(row["kind"] for row in rows) == ["email", "email", "phone"]
    assert {row["reason"] for row in rows} == {"erasure"}
    text = repr(rows).encode()
    assert found_needles(text) == [] and str(contact_id).encode() not in text
    # A keyed hash in its own domain: not the blind index of the same value.
    lookups = {kith.protector.lookup_key("email", EMAIL.lower())}
    assert not lookups & {row["digest"] for row in rows}
    matched = await SuppressionList(kith).match("email", EMAIL.lower())
    assert matched is not None and matched["reason"] == "erasure"
    assert await SuppressionList(kith).match("email", "someone@else.example") is None


async def test_a_marketing_objection_outlives_the_contact(kith: Kith) -> None:
    configure_privacy(kith, purposes={"newsletter": NEWSLETTER})
    consent = ConsentService(kith)
    first = await make_person(kith, notes=0, orders=0)
    await consent.give(first, "newsletter", channel="form")
    await consent.withdraw(first, "newsletter", channel="link")
    await kith.bus.drain()  # the subscriber records the objection
    assert await SuppressionList(kith).count() == {"erasure": 0, "objection": 3}

    # The same address comes back with another contact (an import, say): it is created, but
    # the newsletter is refused until they consent again.
    contacts = ContactService(kith)
    second = await contacts.create(
        ContactCreate(name="P. Quackenbush", emails=[EmailIn(address=EMAIL_2)])
    )
    assert not await consent.can_process(second.id, "newsletter")
    await consent.give(second.id, "newsletter", channel="form")
    assert await consent.can_process(second.id, "newsletter")
    # The hook is also reachable directly through the plugin manager.
    assert kith.plugins is not None
    results = await kith.plugins.call_async(
        "kith_check_new_contact",
        kith=kith,
        contact_id=uuid.uuid4(),
        emails=["fresh@new.example"],
        phones=[],
        override_reason=None,
        actor=SYSTEM,
    )
    assert all(result.value is None for result in results)
