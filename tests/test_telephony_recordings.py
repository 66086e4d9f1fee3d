"""Call recordings on SQLite and PostgreSQL: fetched from stand-in provider APIs over real
HTTP, kept sealed in pieces, played back through the API (audited), retried and dead-lettered,
deleted by retention and erasure; and click-to-call through Zadarma and Mango Office linked to
the provider's call."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from _telephony import (
    ANN,
    MANGO_KEY,
    MANGO_SALT,
    TWILIO_SID,
    ZADARMA_KEY,
    ZADARMA_SECRET,
    StandIn,
    mango_post,
    settings_toml,
    twilio_post,
    zadarma_post,
)
from _threaded_http import QuietHandler, base_url, close, serve
from kith import (
    ContactCreate,
    ContactService,
    InteractionService,
    PhoneIn,
    UserService,
    protect_bytes,
    reveal_bytes,
    utcnow,
)
from kith.plugins.telephony import mango, privacy, zadarma
from kith.plugins.telephony.provider_events import CallEvent
from kith.plugins.telephony.recordings import FETCH_ATTEMPTS, PIECE_BYTES, SUBSCRIBER
from kith.plugins.telephony.services import CallService
from kith.plugins.telephony.tables import TelephonyCall, TelephonyRecordingPiece
from kith.privacy.encryption.errors import FieldDecryptionError
from kith.privacy.rights.erasure import ErasureService
from kith.privacy.rights.tables import AuditEntry
from kith.runtime import Kith
from kith.services.merges import MergeService
from kith.settings import Settings
from kith.tables import Interaction
from kith.testing import settings_for

CALLER = "+447700900123"
# Longer than one piece, with a marker that must never be stored readable.
AUDIO = b"ID3" + b"KITH-AUDIO-MARKER" * ((PIECE_BYTES + 5000) // 17)
RECORDING_SID = "RE" + "b" * 32


class Recordings:
    """Serves recordings as the providers do: Twilio's media URL (basic auth), Zadarma's
    link request (signed) and the link, Mango's recording/post (signed). ``failing`` makes
    every answer a 503."""

    def __init__(self) -> None:
        self.failing = False
        self.seen: list[str] = []
        self.server = serve(self._handler())

    @property
    def url(self) -> str:
        return base_url(self.server)

    def answer(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        form: dict[str, str],
        headers: dict[str, str],
    ) -> tuple[int, str, bytes]:
        self.seen.append(f"{method} {path}")
        if self.failing:
            return 503, "text/plain", b"busy"
        if path.endswith(f"/Recordings/{RECORDING_SID}.mp3"):
            if not headers.get("authorization", "").startswith("Basic "):
                return 401, "text/plain", b"no"
            return 200, "audio/mpeg", AUDIO
        if path == "/v1/pbx/record/request/":
            key, _, given = headers.get("authorization", "").partition(":")
            if key != ZADARMA_KEY or given != zadarma.api_signature(ZADARMA_SECRET, path, query):
                return 401, "application/json", b'{"status":"error"}'
            link = json.dumps({"status": "success", "link": f"{self.url}/files/z.mp3"})
            return 200, "application/json", link.encode()
        if path == "/files/z.mp3":
            return 200, "application/octet-stream", AUDIO
        if path == "/vpbx/queries/recording/post":
            if form.get("sign") != mango.sign(MANGO_KEY, form.get("json", ""), MANGO_SALT):
                return 401, "application/json", b'{"result":3102}'
            return 200, "audio/mpeg", AUDIO
        return 404, "text/plain", b""

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(QuietHandler):
            def _reply(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode() if length else ""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, media, data = outer.answer(
                    method,
                    parts.path,
                    dict(parse_qsl(parts.query)),
                    dict(parse_qsl(body)),
                    headers,
                )
                self.send_response(status)
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

        return Handler

    def stop(self) -> None:
        close(self.server)


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(scope="module")
def provider() -> Iterator[Recordings]:
    server = Recordings()
    yield server
    server.stop()


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kith_settings(
    kith_database_url: str,
    tmp_path: Path,
    provider: Recordings,
    stand_in: StandIn,
    request: pytest.FixtureRequest,
) -> Settings:
    """Recordings come from the recordings stand-in; with ``click`` (a provider's name) its
    API is the click-to-call stand-in instead. ``extra`` is added to kith.toml."""
    provider.failing = False
    options: dict[str, str] = getattr(request, "param", {})
    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    if "click" in options:
        toml = settings_toml(stand_in.url, click_to_call=options["click"])
    else:
        toml = settings_toml(provider.url)
    extra = options.get("extra", "").replace("{url}", provider.url)
    (home / "kith.toml").write_text(toml + extra, encoding="utf-8")
    return settings_for(home, kith_database_url)


async def twilio_call_with_recording(kith_client: Any) -> None:
    path = "/api/telephony/twilio/status"
    sid = "CA" + "7" * 32
    base = {"CallSid": sid, "Direction": "inbound", "From": CALLER, "To": "+442079460000"}
    for status in ("ringing", "in-progress", "completed"):
        form = {**base, "CallStatus": status}
        assert (await kith_client.post(path, **twilio_post(path, form))).status_code == 200
    recording = {
        "CallSid": sid,
        "RecordingSid": RECORDING_SID,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Recordings/"
        f"{RECORDING_SID}",
        "RecordingStatus": "completed",
        "RecordingDuration": "42",
    }
    rec = "/api/telephony/twilio/recording"
    assert (await kith_client.post(rec, **twilio_post(rec, recording))).status_code == 200


async def record_with_recording(kith: Kith, provider: str, ref: str) -> None:
    calls = CallService(kith)
    call_id = f"{provider}-1"
    common: dict[str, Any] = {"provider": provider, "call_id": call_id, "at": utcnow()}
    await calls.record(
        CallEvent(**common, key="r", kind="ringing", direction="inbound", from_number=CALLER)
    )
    await calls.record(CallEvent(**common, key="rec", kind="recording_ready", recording_ref=ref))


async def only_call() -> dict[str, Any]:
    [row] = await TelephonyCall.select()
    return row


async def test_a_recording_is_fetched_sealed_and_played_back_audited(kith, kith_client, kith_auth):
    await twilio_call_with_recording(kith_client)
    await kith.bus.drain()
    call = await only_call()
    pieces = await TelephonyRecordingPiece.select().order_by(TelephonyRecordingPiece.seq)
    assert [p["seq"] for p in pieces] == [0, 1]
    assert all(b"KITH-AUDIO-MARKER" not in bytes(p["data"]) for p in pieces)

    agent = await kith_auth("agent")
    answer = await kith_client.get(f"/api/calls/{call['id']}/recording", headers=agent)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("audio/mpeg")
    assert answer.content == AUDIO
    [audit] = await AuditEntry.select().where(AuditEntry.action == "read_call_recording")
    assert audit["contact_id"] == call["contact_id"]
    # Compliance officers hand recordings over on access requests; nobody signed out hears one.
    compliance = await kith_auth("compliance")
    heard = await kith_client.get(f"/api/calls/{call['id']}/recording", headers=compliance)
    assert heard.status_code == 200 and heard.content == AUDIO
    anonymous = await kith_client.get(f"/api/calls/{call['id']}/recording")
    assert anonymous.status_code == 401
    out = (await kith_client.get(f"/api/telephony/calls/{call['id']}", headers=agent)).json()
    assert out["recording_stored"] and out["has_recording"]

    missing = await kith_client.get(f"/api/calls/{uuid.uuid4()}/recording", headers=agent)
    assert missing.status_code == 404 and missing.json()["status"] == 404


async def test_zadarma_and_mango_recordings_are_fetched_through_their_apis(kith, provider):
    for name, ref in (("zadarma", "1700000000.123"), ("mango", "MToxMDQ2OTk")):
        await record_with_recording(kith, name, ref)
    await kith.bus.drain()
    rows = await TelephonyCall.select().where(TelephonyCall.recording_stored_at.is_not_null())
    assert sorted(r["provider"] for r in rows) == ["mango", "zadarma"]
    assert {r["recording_type"] for r in rows} == {"audio/mpeg"}
    assert {r["recording_bytes"] for r in rows} == {len(AUDIO)}
    assert "GET /files/z.mp3" in provider.seen


async def test_a_fetch_that_keeps_failing_is_retried_then_dead_lettered(kith, provider):
    clock = Clock()
    kith.bus.clock = clock
    provider.failing = True
    await record_with_recording(
        kith, "twilio", f"/2010-04-01/Accounts/{TWILIO_SID}/Recordings/{RECORDING_SID}"
    )
    for _ in range(FETCH_ATTEMPTS):
        await kith.bus.drain()
        clock.now += dt.timedelta(days=1)
    [event] = await kith.bus.list_events(name="call.recording_ready")
    detail = await kith.bus.get_event(event.event.id)
    [delivery] = [d for d in detail.deliveries if d.subscriber == SUBSCRIBER]
    assert (delivery.state, delivery.attempts) == ("dead", FETCH_ATTEMPTS)
    assert "HTTP 503" in (delivery.last_error or "")
    assert await TelephonyRecordingPiece.count() == 0

    provider.failing = False
    assert await kith.bus.replay(event.event.id) == 1
    await kith.bus.drain()
    assert (await only_call())["recording_stored_at"] is not None


@pytest.mark.parametrize(
    "kith_settings", [{"extra": "\n[telephony.recordings]\nfetch = false\n"}], indirect=True
)
async def test_with_fetching_off_only_the_reference_is_kept(kith, kith_client, provider):
    await twilio_call_with_recording(kith_client)
    await kith.bus.drain()
    call = await only_call()
    assert call["recording_ref"] is not None and call["recording_stored_at"] is None
    assert await TelephonyRecordingPiece.count() == 0


async def test_retention_deletes_the_stored_audio_and_playback_says_gone(
    kith, kith_client, kith_auth
):
    await twilio_call_with_recording(kith_client)
    await kith.bus.drain()
    later = utcnow() + dt.timedelta(days=91)
    assert await CallService(kith).forget_old_recordings(later) == 1
    assert await TelephonyRecordingPiece.count() == 0
    call = await only_call()
    assert call["recording_ref"] is None and call["recording_stored_at"] is None
    agent = await kith_auth("agent")
    gone = await kith_client.get(f"/api/calls/{call['id']}/recording", headers=agent)
    assert gone.status_code == 410 and "retention" in gone.json()["detail"]


async def test_erasure_destroys_recordings_and_the_export_lists_them(kith, kith_client, kith_auth):
    await twilio_call_with_recording(kith_client)
    await kith.bus.drain()
    call = await only_call()
    contact_id = call["contact_id"]
    section = await privacy.export(kith, contact_id)
    assert section is not None
    [item] = section.tables["calls"]
    kept = item["recording_kept"]
    assert kept["stored_in_kith"] and kept["bytes"] == len(AUDIO)
    assert kept["playback"] == f"/api/calls/{call['id']}/recording"

    job = await ErasureService(kith).run(contact_id, job_id=uuid.uuid4())
    assert job.state == "done"
    assert await TelephonyRecordingPiece.count() == 0
    assert await TelephonyCall.count() == 0
    agent = await kith_auth("agent")
    answer = await kith_client.get(f"/api/calls/{call['id']}/recording", headers=agent)
    assert answer.status_code == 404


@pytest.mark.parametrize(
    "kith_settings", [{"click": "zadarma"}, {"click": "mango"}], indirect=True, ids=str
)
async def test_click_to_call_is_linked_to_the_providers_call(kith, kith_client, stand_in):
    provider_name = CallService(kith).settings.click_to_call_provider
    grace = await ContactService(kith).create(
        ContactCreate(name="Grace", phones=[PhoneIn(number="020 7946 0958", primary=True)])
    )
    await UserService(kith).add(ANN, "agent")
    token = await UserService(kith).create_token(ANN)
    headers = {"Authorization": f"Bearer {token.secret}"}
    answer = await kith_client.post(f"/api/contacts/{grace.id}/call", headers=headers)
    assert answer.status_code == 201, answer.text
    placed = answer.json()
    if provider_name == "zadarma":
        start = {
            "event": "NOTIFY_OUT_START",
            "call_start": "2030-01-02 10:00:00",
            "pbx_call_id": "pbx-77",
            "internal": "101",
            "destination": "442079460958",
        }
        end = {**start, "event": "NOTIFY_OUT_END", "disposition": "answered", "duration": "30"}
        for form in (start, end):
            answer = await kith_client.post("/api/telephony/zadarma", **zadarma_post(form))
            assert answer.status_code == 200, answer.text
    else:
        [command] = [s for s in stand_in.seen if s.path.endswith("/commands/callback")]
        command_id = json.loads(command.form["json"])["command_id"]
        for seq, state in enumerate(("Appeared", "Connected", "Disconnected")):
            data = {
                "entry_id": "pbx-77",
                "call_id": "leg-1",
                "seq": seq,
                "call_state": state,
                "timestamp": 1893578400 + seq,
                "command_id": command_id,
                "from": {"extension": "101"},
                "to": {"number": "442079460958"},
            }
            answer = await kith_client.post("/api/telephony/mango/events/call", **mango_post(data))
            assert answer.status_code == 200, answer.text
    [row] = await TelephonyCall.select()
    assert row["call_id"] == "pbx-77" and str(row["id"]) == placed["id"]
    assert row["ended_at"] is not None and row["contact_id"] == grace.id
    assert (
        len(
            await Interaction.select().where(
                (Interaction.contact == grace.id) & (Interaction.kind == "call")
            )
        )
        == 1
    )


async def test_the_contact_card_plays_the_recording_to_a_signed_in_user(kith, kith_client):
    await twilio_call_with_recording(kith_client)
    await kith.bus.drain()
    call = await only_call()
    page = f"/calls/{call['id']}/recording"
    # The page comes from kith_register_pages; the card asks kith_timeline_audio for it.
    assert kith.plugins.implements("kith_register_pages")
    entry = await InteractionService(kith).get(call["interaction_id"])
    answers = await kith.plugins.call_async("kith_timeline_audio", kith=kith, interactions=[entry])
    assert [answer.value for answer in answers] == [{entry.id: page}]
    refused = await kith_client.get(page)
    assert refused.status_code != 200 and AUDIO not in refused.content

    password = "correct horse battery"
    await UserService(kith).add("agent@firm.example", "agent", "", password)
    signin = await kith_client.get("/signin")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', signin.text)
    assert token is not None
    form = {"_csrf_token": token[1], "email": "agent@firm.example", "password": password}
    assert (await kith_client.post("/signin", data=form)).status_code in (302, 303)

    card = await kith_client.get(f"/contacts/{call['contact_id']}")
    assert f'<audio controls preload="none" src="{page}">' in card.text
    played = await kith_client.get(page)
    assert played.status_code == 200 and played.content == AUDIO
    assert played.headers["content-type"].startswith("audio/mpeg")


async def test_sealed_bytes_open_only_in_their_place_and_never_after_erasure(kith):
    contact = await ContactService(kith).create(ContactCreate(name="Ada"))
    here, there = b"telephony_recording_piece\x00a\x000", b"telephony_recording_piece\x00a\x001"
    sealed = await protect_bytes(kith.protector, contact.id, here, b"spoken words")
    assert b"spoken words" not in sealed
    assert await reveal_bytes(kith.protector, contact.id, here, sealed) == b"spoken words"
    with pytest.raises(FieldDecryptionError):
        await reveal_bytes(kith.protector, contact.id, there, sealed)

    job = await ErasureService(kith).run(contact.id, job_id=uuid.uuid4())
    assert job.state == "done"
    assert await reveal_bytes(kith.protector, contact.id, here, sealed) is None


async def test_a_merge_moves_the_recording_sealed_under_the_survivors_key(
    kith, kith_client, kith_auth
):
    await twilio_call_with_recording(kith_client)
    await kith.bus.drain()
    call = await only_call()
    survivor = await ContactService(kith).create(ContactCreate(name="Kept"))
    await MergeService(kith).merge(survivor.id, [call["contact_id"]])
    assert {p["contact_id"] for p in await TelephonyRecordingPiece.select()} == {survivor.id}
    agent = await kith_auth("agent")
    answer = await kith_client.get(f"/api/calls/{call['id']}/recording", headers=agent)
    assert answer.status_code == 200 and answer.content == AUDIO


@pytest.mark.parametrize(
    "kith_settings",
    [{"extra": '\n[telephony.recordings]\nasterisk_url = "{url}/files"\n'}],
    indirect=True,
)
async def test_an_asterisk_mixmonitor_file_is_fetched_from_the_pbx_web_server(kith, provider):
    await record_with_recording(kith, "asterisk", "/var/spool/asterisk/monitor/z.mp3")
    await kith.bus.drain()
    call = await only_call()
    assert call["recording_bytes"] == len(AUDIO) and call["recording_type"] == "audio/mpeg"
