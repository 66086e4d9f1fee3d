"""The suppression list: an erased person cannot be re-created through the API by accident (409
saying they asked to be erased); an operator's override is accepted and recorded; the list
holds nothing readable; a marketing objection outlives the contact it was made by."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from _privacy_subjects import (
    EMAIL,
    EMAIL_2,
    PHONE,
    PHONE_E164,
    found_needles,
    make_person,
    run_request,
)
from _privacy_workflow import NEWSLETTER, configure_privacy, make_user
from kith import SYSTEM
from kith.bootstrap import open_kith
from kith.errors import Conflict
from kith.events import utcnow
from kith.hookspecs import hookimpl
from kith.plugin_manager import load_plugin_manager
from kith.privacy.encryption import reindex, root_keys, rotation
from kith.privacy.encryption.primitives import hkdf_sha256, hmac_sha256
from kith.privacy.encryption.protector import protector_of
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.consent import ConsentService
from kith.privacy.rights.suppression import Suppressed, SuppressionList
from kith.privacy.rights.tables import Suppression, SuppressionOverride
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, PhoneIn
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


async def _existing(kith_client, headers: dict[str, str]) -> dict[str, Any]:
    created = await kith_client.post(
        "/api/contacts",
        json={
            "name": "Somebody Else",
            "emails": [{"address": "somebody@else.example"}],
            "phones": [{"number": "020 7946 0123"}],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_an_erased_persons_address_is_not_added_to_an_existing_contact(
    kith: Kith, kith_client, kith_auth
) -> None:
    await _erase(kith)
    headers = await kith_auth("agent")
    before = await _existing(kith_client, headers)
    url = f"/api/contacts/{before['id']}"

    for body, field in (
        # The contact's own email first: the answer names the new one's place in the request.
        (
            {
                "name": "Renamed",
                "emails": [{"address": "somebody@else.example"}, {"address": EMAIL.upper()}],
            },
            "emails[1]",
        ),
        ({"phones": [{"number": "020 7946 0123"}, {"number": PHONE}]}, "phones[1]"),
        ({"emails": [{"address": EMAIL_2}]}, "emails[0]"),
    ):
        refused = await kith_client.patch(url, json=body, headers=headers)
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["title"] == "Suppressed: the person asked to be erased"
        assert "asked to be erased" in problem["detail"]
        assert "override_suppression_reason" in problem["detail"]
        assert problem["field"] == field and problem["suppressed"] == [field]
        assert f"in {field} belongs" in problem["detail"]
        # The answer names the field, never the value.
        assert EMAIL.lower() not in refused.text.lower() and "7946" not in refused.text

    # Nothing changed, not even the name sent with the refused address, and nothing recorded.
    after = await kith_client.get(url, headers=headers)
    assert after.json() == before
    assert await SuppressionOverride.count() == 0

    # Other plugins' checks see the new addresses of a change too.
    blocked = await kith_client.patch(
        url, json={"emails": [{"address": "b@blocked.example"}]}, headers=headers
    )
    assert blocked.status_code == 409 and "blocked.example" in blocked.json()["detail"]


async def test_an_override_adds_an_erased_persons_address_and_is_recorded(
    kith: Kith, kith_client, kith_auth
) -> None:
    await _erase(kith)
    headers = await kith_auth("agent")
    before = await _existing(kith_client, headers)
    contact_id = uuid.UUID(before["id"])
    reason = "She wrote from her old address on 2026-03-01; it is hers again"
    changed = await kith_client.patch(
        f"/api/contacts/{contact_id}",
        json={
            "emails": [{"address": "somebody@else.example"}, {"address": EMAIL}],
            "override_suppression_reason": reason,
        },
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert [e["address"] for e in changed.json()["emails"]] == [
        "somebody@else.example",
        EMAIL.lower(),
    ]
    # One override, for the one erased address that was new, under this contact.
    overrides = await SuppressionList(kith).overrides(contact_id)
    assert [(o["kind"], o["reason"]) for o in overrides] == [("email", reason)]
    assert overrides[0]["actor"].startswith("user:")
    raw = await SuppressionOverride.select(SuppressionOverride.reason)
    assert all(row["reason"].startswith("$k1$") for row in raw)
    entries = await AuditLog(kith).entries(contact_id)
    actions = [e.action for e in entries]
    assert "suppression_override" in actions
    # The override is not one of the contact's fields: the change lists the emails only.
    update = next(e for e in entries if e.action == "update")
    assert isinstance(update.details, dict) and update.details["fields"] == ["emails"]

    # An empty reason is no override.
    blank = await kith_client.patch(
        f"/api/contacts/{contact_id}",
        json={"phones": [{"number": PHONE}], "override_suppression_reason": ""},
        headers=headers,
    )
    assert blank.status_code == 422


async def test_a_contacts_own_suppressed_values_can_be_sent_again(
    kith: Kith, kith_client, kith_auth
) -> None:
    await _erase(kith)
    headers = await kith_auth("agent")
    created = await kith_client.post(
        "/api/contacts",
        json={
            "name": "Philomena Q.",
            "emails": [{"address": EMAIL}],
            "phones": [{"number": PHONE}],
            "override_suppression_reason": "She asked to become a customer again",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    contact_id = uuid.UUID(created.json()["id"])
    assert len(await SuppressionList(kith).overrides(contact_id)) == 2

    # The same values (written differently, relabelled, reordered) with an ordinary change:
    # they are the contact's own, so nothing is refused and no override is asked for.
    for body in (
        {"phones": [{"number": "020 7946 0777", "label": "mobile"}]},
        {
            "name": "Philomena Quackenbush",
            "emails": [{"address": "extra@fresh.example"}, {"address": EMAIL.upper()}],
            "phones": [{"number": PHONE}],
        },
    ):
        changed = await kith_client.patch(f"/api/contacts/{contact_id}", json=body, headers=headers)
        assert changed.status_code == 200, changed.text
    contact = (await kith_client.get(f"/api/contacts/{contact_id}", headers=headers)).json()
    assert contact["name"] == "Philomena Quackenbush"
    assert [e["address"] for e in contact["emails"]] == ["extra@fresh.example", EMAIL.lower()]
    assert await SuppressionOverride.count() == 2
    # Dropping an address and adding it back is adding it: refused again without a reason.
    dropped = await kith_client.patch(
        f"/api/contacts/{contact_id}", json={"phones": []}, headers=headers
    )
    assert dropped.status_code == 200, dropped.text
    again = await kith_client.patch(
        f"/api/contacts/{contact_id}", json={"phones": [{"number": PHONE}]}, headers=headers
    )
    assert again.status_code == 409 and again.json()["field"] == "phones[0]"


async def _refused(kith: Kith) -> bool:
    try:
        await ContactService(kith).create(
            ContactCreate(name="P. Q.", emails=[EmailIn(address=EMAIL)])
        )
    except Suppressed:
        return True
    return False


async def _rotate_reindex_prune(kith: Kith) -> str:
    old = (await rotation.status(kith)).current
    await rotation.rotate(kith)
    await reindex.reindex(kith)
    assert await rotation.prune(kith) == [old]
    assert old not in await protector_of(kith).context["provider"].kek_ids()
    return old


async def test_the_list_survives_rotate_reindex_prune(kith: Kith, kith_settings) -> None:
    await _erase(kith)
    await _rotate_reindex_prune(kith)
    # The documented key rotation retired the KEK the list was made under: still refused,
    # here and in a process started afterwards.
    assert await _refused(kith)
    restarted = open_kith(kith_settings, plugin_manager=load_plugin_manager())
    await restarted.start()
    try:
        assert await _refused(restarted)
        assert await SuppressionList(restarted).match("phone", PHONE_E164) is not None
    finally:
        await restarted.close()


async def test_entries_from_before_root_keys_are_carried_over(kith: Kith, kith_settings) -> None:
    # An entry as older versions made it: its key derived from the KEK of the day.
    provider = protector_of(kith).context["provider"]
    kek_id = await provider.current_kek_id()
    root = await provider.derive(kek_id, b"kith/suppression/v1")
    kind_key = hkdf_sha256(root, b"kith/suppression/v1/kind=email")
    await Suppression.insert(
        Suppression(
            kind="email",
            digest=hmac_sha256(kind_key, EMAIL.lower().encode()).hex(),
            kek_id=kek_id,
            reason="erasure",
            created_at=utcnow(),
        )
    ).run()
    restarted = open_kith(kith_settings, plugin_manager=load_plugin_manager())
    await restarted.start()  # carries the entry over to a root key of its own
    try:
        row = await Suppression.select().first()
        assert row is not None and row["root_key_id"] is not None
        await _rotate_reindex_prune(restarted)
        assert await _refused(restarted)
    finally:
        await restarted.close()


async def test_a_root_key_another_process_makes_is_matched_at_once(
    kith: Kith, kith_settings
) -> None:
    # This process has checked a contact already, so it knows the suppression root keys (none).
    await ContactService(kith).create(
        ContactCreate(name="Earlier", emails=[EmailIn(address="earlier@fresh.example")])
    )
    other = open_kith(kith_settings, plugin_manager=load_plugin_manager())
    await other.start()
    try:
        # Another process erases someone: the first entry, under a root key made there.
        elsewhere = SuppressionList(other)
        assert await elsewhere.add("email", EMAIL.lower(), "erasure")
        assert await _refused(kith)
        # Two processes that made the first root at once each add under their own: an entry
        # under a root this process has never seen is refused too.
        provider = protector_of(other).context["provider"]
        second = await root_keys.create(provider, root_keys.SUPPRESSION)
        await Suppression.insert(
            Suppression(
                kind="email",
                digest=await elsewhere.digest(second, "email", EMAIL_2.lower()),
                root_key_id=second,
                reason="erasure",
                created_at=utcnow(),
            )
        ).run()
        with pytest.raises(Suppressed):
            await ContactService(kith).create(
                ContactCreate(name="P. Q.", emails=[EmailIn(address=EMAIL_2)])
            )
        assert (await SuppressionList(kith).match("email", EMAIL_2.lower())) is not None
    finally:
        await other.close()


async def test_a_root_key_of_a_rolled_back_erasure_does_not_break_later_checks(
    kith: Kith,
) -> None:
    suppression = SuppressionList(kith)
    with pytest.raises(RuntimeError):
        async with kith.unit_of_work():
            # The first entries make the first root key; the second look-up sees it.
            assert await suppression.add("email", EMAIL.lower(), "erasure")
            assert await suppression.add("email", EMAIL_2.lower(), "erasure")
            raise RuntimeError("the erasure failed")
    # Nobody was suppressed, and a new contact with a phone is checked as usual.
    created = await ContactService(kith).create(
        ContactCreate(name="P. Q.", emails=[EmailIn(address=EMAIL)], phones=[PhoneIn(PHONE)])
    )
    assert created.emails[0].address == EMAIL.lower()
