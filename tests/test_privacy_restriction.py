"""Restriction (Art. 18): a restricted contact refuses writes over the API (409, saying why),
webhook deliveries and any purpose; lifting needs the notice given to the person and tells
the recipients. Rectification corrects through the services and tells the recipients too."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
from _privacy_subjects import GIVEN, make_person, run_request, stored_bytes
from _privacy_workflow import make_user
from kith.errors import InvalidInput
from kith.events import Event
from kith.plugins.webhooks.delivery import WebhookDeliverer
from kith.plugins.webhooks.schemas import SubscriptionCreate
from kith.plugins.webhooks.service import WebhookService
from kith.plugins.webhooks.tables import WebhookDelivery
from kith.privacy.requests.service import RequestCreate, RequestService
from kith.privacy.rights.consent import ConsentService, can_process
from kith.privacy.rights.rectification import RectificationService
from kith.privacy.rights.restriction import RestrictionService
from kith.privacy.rights.tables import LegalHold
from kith.runtime import Kith
from kith.schemas import FieldCreate
from kith.services.contacts import ContactService
from kith.services.fields import FieldService
from kith.subject_checks import processing_refusals

# Recipients the built-in plugins register (others, such as 1C's, may be installed too).
RECIPIENTS = {"webhook receivers", "Twilio", "Zadarma", "Mango Office"}


async def _restricted(kith: Kith) -> tuple[uuid.UUID, uuid.UUID]:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=1, orders=0)
    _, done = await run_request(
        kith, "restriction", contact_id, officer, parameters={"ground": "accuracy_contested"}
    )
    assert done.state == "done"
    return contact_id, done.id


async def test_a_restricted_contact_refuses_writes_over_the_api(
    kith: Kith, kith_client, kith_auth
) -> None:
    contact_id, request_id = await _restricted(kith)
    headers = await kith_auth("agent")
    timeline = await kith_client.get(f"/api/contacts/{contact_id}/timeline", headers=headers)
    interaction_id = timeline.json()["items"][0]["id"]

    for method, path, body in (
        ("PATCH", f"/api/contacts/{contact_id}", {"tags": ["x"]}),
        ("DELETE", f"/api/contacts/{contact_id}", None),
        ("POST", f"/api/contacts/{contact_id}/interactions", {"kind": "note", "summary": "hi"}),
        ("PATCH", f"/api/interactions/{interaction_id}", {"summary": "changed"}),
    ):
        response = await kith_client.request(method, path, json=body, headers=headers)
        assert response.status_code == 409, (method, path, response.text)
        detail = response.json()["detail"]
        assert "restricted (Art. 18 GDPR)" in detail and "only be stored" in detail
        assert f"since {dt.datetime.now(dt.UTC).date().isoformat()}" in detail
    # Storage and reading stay.
    assert (
        await kith_client.get(f"/api/contacts/{contact_id}", headers=headers)
    ).status_code == 200
    # No purpose may be pursued, and every plugin sees the refusal through the hook.
    assert not await can_process(kith, contact_id, "customer_relationship")
    reasons = await processing_refusals(kith, contact_id, "marketing.send")
    assert len(reasons) == 1 and "restricted" in reasons[0]
    assert kith.plugins is not None
    direct = await kith.plugins.call_async(
        "kith_check_processing", kith=kith, contact_id=contact_id, activity="export"
    )
    assert [r.value for r in direct if r.value]
    # The certificate of the request says what was done.
    signed = await kith_client.get(
        f"/api/privacy/requests/{request_id}/certificate", headers=await kith_auth("compliance")
    )
    entries = signed.json()["certificate"]["entries"]
    assert entries[0]["method"] == "restricted" and "Art. 18(1)(a)" in entries[0]["ground"]


async def test_restriction_stops_webhook_deliveries(kith: Kith) -> None:
    contact_id = await make_person(kith, notes=0, orders=0)
    await kith.bus.drain()
    # The person agreed to their data going to connected systems (the webhooks purpose).
    ledger = ConsentService(kith)
    await ledger.publish_notice("webhooks", "We pass your details to the systems we connect.")
    await ledger.give(contact_id, "webhooks", channel="api")
    await WebhookService(kith).create(
        SubscriptionCreate(
            url="https://hooks.example/in", events=["contact.*"], include_personal_data=True
        )
    )
    sent: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    deliverer = WebhookDeliverer(kith, transport=httpx.MockTransport(receive))

    def changed() -> Event:
        return Event(
            name="contact.updated", contact_id=contact_id, payload={"contact_id": str(contact_id)}
        )

    # Handed to a deliverer with a mock receiver (the bus is not drained: no real network).
    await deliverer.enqueue(changed())
    await deliverer.run_due()
    assert len(sent) == 1 and GIVEN.encode() in sent[0].content  # personal data went out

    officer = await make_user(kith)
    await run_request(kith, "restriction", contact_id, officer)
    sent.clear()
    # An event about the contact after the restriction is not delivered at all.
    later = changed()
    await deliverer.enqueue(later)
    await deliverer.run_due()
    refused = await WebhookDelivery.select().where(WebhookDelivery.event_id == later.id)
    assert [r["state"] for r in refused] == ["failed"]
    assert (
        refused[0]["error"].startswith("not sent: contact") and "restricted" in refused[0]["error"]
    )
    assert not refused[0]["shared_personal_data"]
    # Only the Art. 19 notice went out (ids only), not the contact's data.
    assert [r.headers["Kith-Event"] for r in sent] == ["subject.notice"]
    assert GIVEN.encode() not in sent[0].content

    # Lifted: the refused delivery can be retried by hand and goes out.
    await RestrictionService(kith).lift(contact_id, "told by phone on 2026-03-02", officer)
    await WebhookService(kith).retry(refused[0]["id"])
    sent.clear()
    await deliverer.run_due()
    assert [r.headers["Kith-Event"] for r in sent] == ["contact.updated"]


async def test_lifting_needs_a_notice_and_is_recorded(kith: Kith, kith_client, kith_auth) -> None:
    contact_id, _ = await _restricted(kith)
    officer = await make_user(kith)
    service = RestrictionService(kith)
    with pytest.raises(InvalidInput, match=r"Art\. 18\(3\)"):
        await service.lift(contact_id, "  ", officer)
    headers = await kith_auth("compliance")
    lifted = await kith_client.post(
        f"/api/privacy/restrictions/{contact_id}/lift",
        json={"notice": "Letter of 2026-03-02 telling her the check is over"},
        headers=headers,
    )
    assert lifted.status_code == 200, lifted.text
    body = lifted.json()
    assert body["restriction"]["lift_notice"].startswith("Letter of 2026-03-02")
    # Every installed recipient is told (other built-in plugins register theirs too).
    assert {r["location"] for r in body["recipients"]} >= RECIPIENTS
    again = await kith_client.post(
        f"/api/privacy/restrictions/{contact_id}/lift", json={"notice": "x"}, headers=headers
    )
    assert again.status_code == 409
    # Writes work again.
    agent = await kith_auth("agent")
    changed = await kith_client.patch(
        f"/api/contacts/{contact_id}", json={"tags": ["ok"]}, headers=agent
    )
    assert changed.status_code == 200
    history = await service.history(contact_id)
    assert [h.lifted_by is not None for h in history] == [True]


async def test_rectification_corrects_and_tells_recipients(
    kith: Kith, kith_client, kith_auth, kith_engine
) -> None:
    contact_id, _ = await _restricted(kith)  # allowed while restricted: it is the request
    officer = await make_user(kith)
    headers = await kith_auth("compliance")
    requests = RequestService(kith)
    request = await requests.create(
        RequestCreate(kind="rectification", contact_id=contact_id), officer
    )
    await requests.verify(request.id, "video call", officer)
    # An address the contact service would refuse at the run is refused now.
    refused = await kith_client.put(
        f"/api/privacy/requests/{request.id}/rectification",
        json={"family_name": "Zwicky-Ortolan", "emails": [{"address": "not an address"}]},
        headers=headers,
    )
    assert refused.status_code == 422 and "not a valid email address" in refused.text
    assert await RectificationService(kith).patch_of(request.id) is None
    patched = await kith_client.put(
        f"/api/privacy/requests/{request.id}/rectification",
        json={"family_name": "Zwicky-Ortolan", "emails": [{"address": "pz@new-address.example"}]},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["fields"] == ["emails", "family_name"]
    # The corrections are personal data: stored encrypted.
    assert b"Zwicky-Ortolan" not in stored_bytes(kith, kith_engine)
    previewed = await requests.preview(request.id, officer)
    assert previewed.preview is not None
    assert previewed.preview[0].ground == "fields: emails, family_name"
    await requests.approve(request.id, officer)
    done = await requests.run(request.id, officer)
    contact = await ContactService(kith).get(contact_id)
    assert contact.family_name == "Zwicky-Ortolan" and contact.given_name == GIVEN
    assert [e.address for e in contact.emails] == ["pz@new-address.example"]
    assert done.outcome is not None
    assert done.outcome[0].location == "kith_contact"
    assert done.outcome[0].method == "rectified"
    # Every installed recipient is told; this contact never reached any of them.
    told = {e.location: e for e in done.outcome[1:]}
    assert set(told) >= RECIPIENTS
    assert {e.method for e in told.values()} == {"notified_of_rectification"}
    assert {e.outcome for e in told.values()} == {"not_applicable"}


async def test_custom_field_corrections_are_checked_when_set_not_when_run(
    kith: Kith, kith_client, kith_auth
) -> None:
    fields = FieldService(kith)
    await fields.add(FieldCreate(name="seats", type="number"))
    await fields.add(FieldCreate(name="plan", type="choice", choices=["Basic", "Pro"]))
    await fields.add(FieldCreate(name="vip", type="boolean"))
    await fields.add(FieldCreate(name="passport", type="text", personal=True))
    contact_id = await make_person(kith, notes=0, orders=0)
    officer = await make_user(kith)
    headers = await kith_auth("compliance")
    requests = RequestService(kith)
    request = await requests.create(
        RequestCreate(kind="rectification", contact_id=contact_id), officer
    )
    path = f"/api/privacy/requests/{request.id}/rectification"
    for given, named in (
        ({"seats": "many"}, "fields.seats: 'many' is not a number"),
        ({"plan": "Gold"}, "fields.plan: "),
        ({"shoe_size": 42}, "there is no custom field named 'shoe_size'"),
    ):
        refused = await kith_client.put(
            path, json={"family_name": "King", "fields": given}, headers=headers
        )
        assert refused.status_code == 422, refused.text
        assert named in refused.json()["detail"]
        assert await RectificationService(kith).patch_of(request.id) is None

    # A value is kept as the contact will hold it.
    taken = await kith_client.put(
        path,
        json={"fields": {"seats": "12", "vip": "yes", "passport": " K7654321 "}},
        headers=headers,
    )
    assert taken.status_code == 200, taken.text
    assert taken.json()["fields"] == ["fields.passport", "fields.seats", "fields.vip"]
    stored = await RectificationService(kith).patch_of(request.id)
    assert stored is not None
    assert stored.fields == {"seats": 12, "vip": True, "passport": "K7654321"}
    await requests.verify(request.id, "video call", officer)
    await requests.preview(request.id, officer)
    await requests.approve(request.id, officer)
    await requests.run(request.id, officer)
    contact = await ContactService(kith).get(contact_id)
    assert contact.fields == {"seats": 12, "vip": True, "passport": "K7654321"}


async def test_a_contact_under_a_legal_hold_refuses_changes_naming_the_ground(kith: Kith) -> None:
    contact_id = await make_person(kith, notes=0, orders=0)
    assert await processing_refusals(kith, contact_id, "interaction.log") == []
    now = dt.datetime.now(dt.UTC)
    hold = LegalHold(
        contact_id=contact_id,
        rule="orders",
        ground="tax law: 10 years",
        held_until=now + dt.timedelta(days=3650),
        created_at=now,
    )
    await LegalHold.insert(hold).run()
    reasons = await processing_refusals(kith, contact_id, "interaction.log")
    assert len(reasons) == 1
    assert "legal hold" in reasons[0] and "(tax law: 10 years)" in reasons[0]
    # A restriction, where both apply, is the reason given.
    await RestrictionService(kith).restrict(contact_id, "accuracy_contested")
    reasons = await processing_refusals(kith, contact_id, "interaction.log")
    assert len(reasons) == 1 and "restricted (Art. 18 GDPR)" in reasons[0]
