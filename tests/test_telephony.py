"""The telephony plugin on SQLite and PostgreSQL: calls built from provider events (repeated,
out of order, concurrent), matching and leads, missed-call callbacks, erasure of recordings,
click-to-call against a stand-in provider API, and the status command."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from _telephony import (
    ANN,
    BOB,
    TWILIO_SID,
    StandIn,
    twilio_post,
    write_settings,
    zadarma_post,
)
from kith import ContactCreate, ContactService, InteractionService, PhoneIn, UserService
from kith.plugins.telephony.provider_events import CallEvent
from kith.plugins.telephony.services import CallService
from kith.plugins.telephony.tables import TelephonyCall, TelephonyEvent
from kith.privacy.rights.erasure import ErasureService
from kith.privacy.rights.tables import RecipientNoticeRecord
from kith.runtime import Kith
from kith.settings import Settings
from kith.tables import Contact, Interaction, OutboxEvent
from kith.testing import settings_for
from test_web_sessions import PASSWORD, browser_like, post_form, sign_in

# A Saturday evening in London (UTC in January).
SATURDAY_EVENING = dt.datetime(2030, 1, 5, 19, 0, tzinfo=dt.UTC)
T0 = dt.datetime(2030, 1, 2, 10, 0, tzinfo=dt.UTC)
NEW_NUMBER = "+447700900123"


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path, stand_in: StandIn) -> Settings:
    home = tmp_path / "kith-home"
    write_settings(home, stand_in.url)
    return settings_for(home, kith_database_url)


@pytest.fixture
async def staff(kith: Kith) -> dict[str, uuid.UUID]:
    users = UserService(kith)
    return {email: (await users.add(email, "agent")).id for email in (ANN, BOB)}


def event(kind: str, at: dt.datetime, call_id: str = "CA-1", **values: Any) -> CallEvent:
    values.setdefault("direction", "inbound")
    values.setdefault("from_number", NEW_NUMBER)
    return CallEvent(
        provider="twilio", call_id=call_id, key=f"{call_id}:{kind}", kind=kind, at=at, **values
    )


async def call_events(name: str | None = None) -> list[dict[str, Any]]:
    rows = await OutboxEvent.select(OutboxEvent.name, OutboxEvent.payload).where(
        OutboxEvent.name.like("call.%")
    )
    found = [{"name": row["name"], **json.loads(row["payload"])} for row in rows]
    return [item for item in found if name is None or item["name"] == name]


async def interactions_of(contact_id: uuid.UUID, kind: str) -> list[dict[str, Any]]:
    return await Interaction.select().where(
        (Interaction.contact == contact_id) & (Interaction.kind == kind)
    )


async def test_the_same_event_twice_is_one_call_and_one_interaction(kith, staff):
    calls = CallService(kith)
    ringing = event("ringing", T0, extension="101")
    first = await calls.record(ringing)
    assert first is not None and first.contact_id is not None
    assert await calls.record(ringing) is None

    assert await TelephonyCall.count() == 1
    assert await TelephonyEvent.count() == 1
    [logged] = await interactions_of(first.contact_id, "call")
    assert logged["source"] == "telephony.twilio" and logged["external_id"] == "CA-1"
    [started] = await call_events("call.started")
    assert started["contact_id"] == str(first.contact_id)
    assert started["interaction_id"] == str(logged["id"])
    assert started["extension"] == "101" and started["user_id"] == str(staff[ANN])
    assert started["direction"] == "inbound" and started["new_lead"] is True
    assert started["call_id"] == str(first.id)


async def test_events_out_of_order_converge_on_one_call(kith, staff):
    calls = CallService(kith)
    await calls.record(event("answered", T0 + dt.timedelta(seconds=10), extension="101"))
    await calls.record(event("ended", T0 + dt.timedelta(seconds=70)))
    final = await calls.record(event("ringing", T0, extension="102"))
    assert final is not None
    assert final.outcome == "answered"
    assert (final.started_at, final.answered_at) == (T0, T0 + dt.timedelta(seconds=10))
    assert (final.duration_s, final.talk_s) == (70, 60)
    assert final.extension == "101" and final.user_id == staff[ANN]
    assert final.callback_task_id is None
    assert sorted(e["name"] for e in await call_events()) == [
        "call.answered",
        "call.ended",
        "call.started",
    ]
    [logged] = await interactions_of(final.contact_id, "call")
    timeline = await InteractionService(kith).get(logged["id"])
    assert timeline.summary == "Inbound call, answered, 1 min 0 s (extension 101)"
    assert timeline.duration_s == 60
    assert timeline.occurred_at == T0


async def test_an_end_before_the_answer_leaves_no_open_callback(kith, staff):
    calls = CallService(kith)
    ended = await calls.record(event("ended", T0 + dt.timedelta(seconds=70)))
    assert ended is not None and ended.outcome == "missed" and ended.callback_task_id
    late = await calls.record(event("answered", T0 + dt.timedelta(seconds=10), extension="101"))
    assert late is not None and late.outcome == "answered"
    assert late.callback_closed_by == late.id
    task = await InteractionService(kith).get(ended.callback_task_id)
    assert task.done_at == T0 + dt.timedelta(seconds=10)


async def test_national_and_international_forms_find_the_same_contact(kith, staff):
    grace = await ContactService(kith).create(
        ContactCreate(name="Grace", phones=[PhoneIn(number="+44 20 7946 0958")])
    )
    calls = CallService(kith)
    national = await calls.record(event("ringing", T0, "CA-2", from_number="020 7946 0958"))
    international = await calls.record(event("ringing", T0, "CA-3", from_number="+442079460958"))
    assert national is not None and international is not None
    assert national.contact_id == international.contact_id == grace.id
    assert await Contact.count() == 1
    assert {e["new_lead"] for e in await call_events("call.started")} == {False}


async def test_twenty_concurrent_webhooks_from_one_new_number_make_one_lead(
    kith, kith_client, staff
):
    async def ring(n: int) -> int:
        form = {
            "CallSid": f"CA{n:032d}",
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": NEW_NUMBER,
            "To": "+442079460000",
        }
        answer = await kith_client.post(
            "/api/telephony/twilio/status", **twilio_post("/api/telephony/twilio/status", form)
        )
        return answer.status_code

    assert await asyncio.gather(*(ring(n) for n in range(20))) == [200] * 20
    holders = await ContactService(kith).find_ids_by("phone", NEW_NUMBER)
    assert len(holders) == 1
    lead = await Contact.select(Contact.source).where(Contact.id == holders[0]).first()
    assert lead["source"] == "telephony.twilio"
    assert await TelephonyCall.count().where(TelephonyCall.contact_id == holders[0]) == 20
    assert len(await interactions_of(holders[0], "call")) == 20
    assert sum(e["new_lead"] for e in await call_events("call.started")) == 1


async def test_a_missed_call_becomes_a_task_the_callback_closes(kith, kith_client, staff):
    path = "/api/telephony/twilio/status"
    base = {
        "CallSid": "CA" + "7" * 32,
        "Direction": "inbound",
        "From": NEW_NUMBER,
        "To": "+442079460000",
    }
    ringing = {**base, "CallStatus": "ringing", "Timestamp": "Sat, 05 Jan 2030 19:00:00 +0000"}
    missed = {**base, "CallStatus": "no-answer", "Timestamp": "Sat, 05 Jan 2030 19:00:40 +0000"}
    for form in (ringing, missed):
        answer = await kith_client.post(path, **twilio_post(path, form))
        assert answer.status_code == 200, answer.text
    call = await CallService(kith).find("twilio", base["CallSid"])
    assert call is not None and call.outcome == "missed" and call.callback_task_id is not None
    task = await InteractionService(kith).get(call.callback_task_id)
    assert task.kind == "task" and task.done_at is None
    # Saturday evening: Monday 7 January is a holiday, so Tuesday at 09:00 London time.
    assert task.due_at == dt.datetime(2030, 1, 8, 9, 0, tzinfo=dt.UTC)
    assert task.assignee_id == staff[ANN]
    [event_missed] = await call_events("call.missed")
    assert event_missed["callback_task_id"] == str(task.id)

    # Bob calls back from extension 102 through Zadarma, dialling the national form.
    common = {
        "pbx_call_id": "out-1",
        "internal": "102",
        "destination": "07700 900123",
        "call_start": "2030-01-08 09:05:00",
    }
    start = {**common, "event": "NOTIFY_OUT_START"}
    end = {**common, "event": "NOTIFY_OUT_END", "disposition": "answered", "duration": "95"}
    for form in (start, end):
        answer = await kith_client.post("/api/telephony/zadarma", **zadarma_post(form))
        assert answer.status_code == 200, answer.text
    back = await CallService(kith).find("zadarma", "out-1")
    assert back is not None and back.outcome == "answered" and back.direction == "outbound"
    assert back.contact_id == call.contact_id and back.user_id == staff[BOB]
    assert back.talk_s == 95
    closed = await InteractionService(kith).get(call.callback_task_id)
    assert closed.done_at is not None
    assert (await CallService(kith).get(call.id)).callback_closed_by == back.id


async def test_erasing_a_caller_deletes_recordings_and_tells_the_provider(
    kith, kith_client, staff, stand_in
):
    path = "/api/telephony/twilio/status"
    sid = "CA" + "5" * 32
    base = {"CallSid": sid, "Direction": "inbound", "From": NEW_NUMBER, "To": "+442079460000"}
    for status in ("ringing", "in-progress", "completed"):
        form = {**base, "CallStatus": status}
        assert (await kith_client.post(path, **twilio_post(path, form))).status_code == 200
    recording_sid = "RE" + "a" * 32
    recording = {
        "CallSid": sid,
        "RecordingSid": recording_sid,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Recordings/"
        f"{recording_sid}",
        "RecordingStatus": "completed",
        "RecordingDuration": "42",
    }
    rec_path = "/api/telephony/twilio/recording"
    answer = await kith_client.post(rec_path, **twilio_post(rec_path, recording))
    assert answer.status_code == 200, answer.text
    call = await CallService(kith).find("twilio", sid)
    assert call is not None and call.has_recording and call.recording_seconds == 42
    stored = await TelephonyCall.select(TelephonyCall.recording_ref).first()
    assert "api.twilio.com" not in stored["recording_ref"]  # sealed, not readable
    assert [e["recording_seconds"] for e in await call_events("call.recording_ready")] == [42]

    contact_id = call.contact_id
    assert contact_id is not None
    job = await ErasureService(kith).run(contact_id, job_id=uuid.uuid4())
    assert job.state == "done"
    assert await TelephonyCall.count().where(TelephonyCall.contact_id == contact_id) == 0
    deleted = [s for s in stand_in.seen if s.method == "DELETE"]
    assert [s.path for s in deleted] == [
        f"/2010-04-01/Accounts/{TWILIO_SID}/Recordings/{recording_sid}.json"
    ]
    notices = {
        row["recipient"]: row
        for row in await RecipientNoticeRecord.select().where(
            RecipientNoticeRecord.contact_id == contact_id
        )
    }
    assert notices["Twilio"]["outcome"] == "done" and notices["Twilio"]["endpoints"] == 1
    assert notices["Zadarma"]["outcome"] == "not_applicable"


async def test_old_recording_references_are_forgotten(kith, staff):
    calls = CallService(kith)
    await calls.record(event("ringing", T0))
    await calls.record(
        CallEvent(
            provider="twilio",
            call_id="CA-1",
            key="rec",
            kind="recording_ready",
            at=T0,
            recording_ref="RE-file",
        )
    )
    assert await calls.forget_old_recordings(dt.datetime.now(dt.UTC)) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=91)
    assert await calls.forget_old_recordings(later) == 1
    assert not (await calls.find("twilio", "CA-1")).has_recording


async def test_click_to_call_through_the_provider_logs_the_outbound_call(
    kith, kith_client, kith_auth, staff, stand_in
):
    grace = await ContactService(kith).create(
        ContactCreate(name="Grace", phones=[PhoneIn(number="020 7946 0958", primary=True)])
    )
    ann = await kith_auth("agent", email="carol@firm.example")
    refused = await kith_client.post(f"/api/contacts/{grace.id}/call", headers=ann)
    assert refused.status_code == 422 and "extension" in refused.json()["detail"]

    token = await UserService(kith).create_token(ANN)
    headers = {"Authorization": f"Bearer {token.secret}"}
    placed = await kith_client.post(f"/api/contacts/{grace.id}/call", headers=headers)
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["provider"] == "twilio" and body["extension"] == "101"
    assert body["direction"] == "outbound" and body["contact_id"] == str(grace.id)
    [request] = [s for s in stand_in.seen if s.path.endswith("/Calls.json")]
    assert request.form["To"] == "101" and "+442079460958" in request.form["Twiml"]
    assert request.headers["authorization"].startswith("Basic ")
    [logged] = await interactions_of(grace.id, "call")
    assert logged["direction"] == "outbound" and logged["external_id"] == "CA" + "1" * 32

    nobody = await ContactService(kith).create(ContactCreate(name="No phone"))
    answer = await kith_client.post(f"/api/contacts/{nobody.id}/call", headers=headers)
    assert answer.status_code == 422 and "no phone" in answer.json()["detail"]


async def test_status_over_the_api(kith, kith_client, kith_auth, staff):
    await CallService(kith).record(event("ringing", dt.datetime.now(dt.UTC)))
    admin = await kith_auth("admin")
    answer = await kith_client.get("/api/telephony/status", headers=admin)
    assert answer.status_code == 200
    by_name = {item["provider"]: item for item in answer.json()}
    assert by_name["twilio"]["enabled"] and by_name["twilio"]["events"] == 1
    assert by_name["twilio"]["lag_seconds"] is not None
    assert by_name["mango"]["events"] == 0 and by_name["mango"]["last_event_at"] is None
    agent = await kith_auth("agent")
    assert (await kith_client.get("/api/telephony/status", headers=agent)).status_code == 403


def test_status_and_call_on_the_command_line(kith_cli, kith_settings):
    env = {"KITH_HOME": str(kith_settings.home), "KITH_DATABASE_URL": kith_settings.database_url}
    result = kith_cli("telephony", "status", "--json", env=env)
    assert result.exit_code == 0, result.output
    printed = {item["provider"]: item for item in json.loads(result.stdout)}
    assert printed["zadarma"]["enabled"] and printed["twilio"]["events"] == 0
    table = kith_cli("telephony", "status", env=env)
    assert table.exit_code == 0 and "never" in table.stdout

    refused = kith_cli("call", "not-an-id", "--user", ANN, env=env)
    assert refused.exit_code == 1 and "is not a contact id" in refused.output
    unknown = kith_cli("call", str(uuid.uuid4()), "--user", "nobody@firm.example", env=env)
    assert unknown.exit_code == 1 and "kith:" in unknown.output


async def test_unknown_events_are_logged_once_per_type_and_skipped(kith, kith_client, staff):
    form = {"event": "NOTIFY_IVR", "pbx_call_id": "in-9", "caller_id": NEW_NUMBER}
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            answer = await kith_client.post("/api/telephony/zadarma", data=form)
            assert answer.status_code == 200 and answer.json() == {"events": 0, "new": 0}
    skipped = [entry for entry in logs if entry["event"] == "telephony.event_skipped"]
    assert len(skipped) == 1 and skipped[0]["event_type"] == "NOTIFY_IVR"
    assert await TelephonyEvent.count() == 0 and await Contact.count() == 0


async def test_the_card_calls_from_the_signed_in_persons_extension(kith, staff, stand_in):
    """The plugin's section of the web UI's card: a button for staff with an extension that
    places the call as the API does; nothing for those without one or for compliance."""
    grace = await ContactService(kith).create(
        ContactCreate(name="Grace", phones=[PhoneIn(number="020 7946 0958", primary=True)])
    )
    users = UserService(kith)
    await users.set_password(staff[ANN], PASSWORD)
    await users.add("carol@firm.example", "agent", "", PASSWORD)
    await users.add("cora@firm.example", "compliance", "", PASSWORD)
    card = f"/contacts/{grace.id}"
    async with browser_like(kith) as client:
        await sign_in(client, ANN)
        page = await client.get(card)
        assert "Call from extension 101" in page.text
        placed = await post_form(client, card, f"{card}/card/call", {})
        assert placed.status_code == 303
    [request] = [s for s in stand_in.seen if s.path.endswith("/Calls.json")]
    assert request.form["To"] == "101" and "+442079460958" in request.form["Twiml"]
    [logged] = await interactions_of(grace.id, "call")
    assert logged["direction"] == "outbound"
    # No extension: no button, and no section to post to. Compliance may not place calls.
    for other, status in (("carol@firm.example", 404), ("cora@firm.example", 403)):
        async with browser_like(kith) as client:
            await sign_in(client, other)
            page = await client.get(card)
            assert page.status_code == 200 and "Call from extension" not in page.text
            refused = await post_form(client, card, f"{card}/card/call", {})
            assert refused.status_code == status
