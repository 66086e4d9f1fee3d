"""The Asterisk provider against a stand-in AMI over TCP: login, replayed captures, Ping,
Originate and reconnection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from ami_server import FIXTURES, SAMPLES, AmiServer, Event, read_json_capture, read_wire_capture
from kith import Conflict, InvalidInput, SettingsError
from kith.plugins.telephony.asterisk import AsteriskProvider, AsteriskSettings
from kith.plugins.telephony.provider_events import CallEvent
from structlog.testing import capture_logs

NEEDS_SAMPLES = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"the public AMI captures are not here ({SAMPLES})"
)


def provider_for(server: AmiServer, **changes: Any) -> AsteriskProvider:
    values: dict[str, Any] = {
        "port": server.port,
        "username": server.username,
        "secret": server.secret,
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
        "connect_timeout_seconds": 2.0,
        **changes,
    }
    return AsteriskProvider.from_settings(AsteriskSettings(**values))


class Running:
    def __init__(self, provider: AsteriskProvider) -> None:
        self.provider = provider
        self.events: list[CallEvent] = []

    async def emit(self, event: CallEvent) -> None:
        self.events.append(event)

    async def until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        async def wait() -> None:
            while not done():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(wait(), timeout)

    def ended(self, count: int = 1) -> Callable[[], bool]:
        return lambda: sum(event.kind == "ended" for event in self.events) >= count


@contextlib.asynccontextmanager
async def running(provider: AsteriskProvider) -> AsyncIterator[Running]:
    run = Running(provider)
    task = asyncio.create_task(provider.run(run.emit))
    try:
        yield run
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled(), "run ends only when cancelled"


def summary(events: Iterable[CallEvent], call_id: str) -> dict[str, Any]:
    own = [event for event in events if event.call_id == call_id]
    ended = next(event for event in own if event.kind == "ended")
    return {
        "direction": ended.direction,
        "from": ended.from_number,
        "to": ended.to_number,
        "extension": ended.extension,
        "outcome": ended.outcome,
    }


# Every public capture and what it must read as; a capture added without an entry fails.
SAMPLE_CALLS: dict[str, dict[str, Any] | None] = {
    "asterisk13_simple_a_created_no_answer.json": {
        "e25ad522d444-1553503669.94": {
            "direction": "inbound",
            "from": "+31150010001",
            "to": "+31150010004",
            "extension": None,
            "outcome": "missed",
        }
    },
    "asterisk13_simple_ab_reject.json": {
        "195176c06ab8-1529936241.98": {
            "direction": "internal",
            "from": "201",
            "to": "202",
            "extension": "202",
            "outcome": "busy",
        }
    },
    "asterisk13_simple_ab_success_a_hangup.json": {
        "195176c06ab8-1529936170.42": {
            "direction": "internal",
            "from": "201",
            "to": "202",
            "extension": "202",
            "outcome": "answered",
        }
    },
    "asterisk11_originate_with_events.yaml": {
        "1414510600.0": {
            "direction": "internal",
            "from": "259",
            "to": "254",
            "extension": "259",
            "outcome": "answered",
        }
    },
    # Login captures: no calls (tested below for what they do).
    "asterisk11_login_ok.yaml": None,
    "asterisk11_login_failed.yaml": None,
}


def capture_of(path: Path) -> Any:
    return read_json_capture(path) if path.suffix == ".json" else read_wire_capture(path)


@NEEDS_SAMPLES
def test_every_public_capture_has_its_expected_calls() -> None:
    assert {path.name for path in SAMPLES.iterdir()} == set(SAMPLE_CALLS)


@NEEDS_SAMPLES
@pytest.mark.parametrize("name", [name for name, calls in SAMPLE_CALLS.items() if calls], ids=str)
async def test_a_public_capture_replayed_over_tcp(name: str) -> None:
    capture = capture_of(SAMPLES / name)
    async with AmiServer(events=capture.events) as server, running(provider_for(server)) as run:
        expected = SAMPLE_CALLS[name]
        assert expected is not None
        await run.until(run.ended(len(expected)))
        for call_id, call in expected.items():
            assert summary(run.events, call_id) == call


@NEEDS_SAMPLES
async def test_the_asterisk_11_login_capture_is_accepted() -> None:
    capture = read_wire_capture(SAMPLES / "asterisk11_login_ok.yaml")
    async with AmiServer.replaying(capture) as server:
        provider = provider_for(server, auth="plain")
        async with running(provider) as run:
            await run.until(lambda: provider.status().connected)
            assert provider.status().ami_version == "1.3"
            assert provider.status().last_error is None


@NEEDS_SAMPLES
async def test_the_asterisk_11_refused_login_is_retried_with_backoff() -> None:
    capture = read_wire_capture(SAMPLES / "asterisk11_login_failed.yaml")
    async with AmiServer.replaying(capture) as server:
        provider = provider_for(server, auth="plain")
        async with running(provider) as run:
            await run.until(lambda: len(server.logins) >= 3)
            status = provider.status()
            assert not status.connected
            assert status.last_error == "login refused: Authentication failed"


@NEEDS_SAMPLES
async def test_asterisk_11_click_to_call_replayed() -> None:
    capture = read_wire_capture(SAMPLES / "asterisk11_originate_with_events.yaml")

    def events(_action: dict[str, str]) -> list[Event]:
        return capture.events

    async with AmiServer(
        responses={"originate": capture.responses["originate"]}, on_originate=events
    ) as server:
        provider = provider_for(server, originate_channel="Local/{extension}@default")
        async with running(provider) as run:
            await run.until(lambda: provider.status().connected)
            call_id = await provider.originate(extension="259", number="254")
            await run.until(run.ended())
            assert summary(run.events, call_id) == {
                "direction": "internal",
                "from": "259",
                "to": "254",
                "extension": "259",
                "outcome": "answered",
            }


FIXTURE_CALLS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "asterisk13_queue_answered.json": (
        {"direction": "inbound", "extension": "202", "outcome": "answered"},
        ["ringing", "ringing", "ringing", "answered", "ended", "recording_ready"],
    ),
    "asterisk13_queue_abandoned.json": (
        {"direction": "inbound", "extension": "201", "outcome": "missed"},
        ["ringing", "ringing", "ended"],
    ),
    "asterisk13_ringgroup_answered.json": (
        {"direction": "inbound", "extension": "203", "outcome": "answered"},
        ["ringing", "ringing", "ringing", "answered", "ended"],
    ),
    "asterisk13_blind_transfer.json": (
        {"direction": "inbound", "extension": "202", "outcome": "answered"},
        ["ringing", "answered", "transferred", "ringing", "answered", "ended"],
    ),
    "asterisk13_attended_transfer.json": (
        {"direction": "inbound", "extension": "202", "outcome": "answered"},
        ["ringing", "answered", "transferred", "answered", "ended"],
    ),
    "asterisk13_pickup.json": (
        {"direction": "inbound", "extension": "202", "outcome": "answered"},
        ["ringing", "answered", "ended"],
    ),
    "asterisk13_voicemail.json": (
        {"direction": "inbound", "extension": "201", "outcome": "voicemail"},
        ["ringing", "ended"],
    ),
    "asterisk13_outbound_busy.json": (
        {"direction": "outbound", "extension": "201", "outcome": "busy"},
        ["ringing", "ended"],
    ),
}


def test_every_own_capture_is_replayed() -> None:
    names = {path.name for path in FIXTURES.glob("*.json")}
    assert names == set(FIXTURE_CALLS) | {"asterisk13_click_to_call.json"}


@pytest.mark.parametrize("name", sorted(FIXTURE_CALLS), ids=str)
async def test_an_own_capture_replayed_over_tcp(name: str) -> None:
    capture = read_json_capture(FIXTURES / name)
    call_id = capture.events[0]["Linkedid"]  # type: ignore[index]
    expected, kinds = FIXTURE_CALLS[name]
    async with AmiServer(events=capture.events) as server, running(provider_for(server)) as run:
        await run.until(lambda: any(e.call_id == call_id and e.kind == "ended" for e in run.events))
        await asyncio.sleep(0.05)
        call = summary(run.events, call_id)
        assert {key: call[key] for key in expected} == expected
        assert [e.kind for e in run.events if e.call_id == call_id] == kinds
        outside = "+447700900"
        if call["direction"] == "inbound":
            assert call["from"].startswith(outside)
        else:
            assert call["to"].startswith(outside)
    transfers = [e for e in run.events if e.kind == "transferred"]
    assert all(e.transferred_to == "202" for e in transfers)


def click_to_call(action: dict[str, str]) -> list[Event]:
    text = (FIXTURES / "asterisk13_click_to_call.json").read_text()
    extension = action["channel"].split("/", 1)[1].split("@", 1)[0]
    for name, value in (
        ("call_id", action["channelid"]),
        ("extension", extension),
        ("number", action["exten"]),
    ):
        text = text.replace("{" + name + "}", value)
    import json

    return list(json.loads(text))


async def test_click_to_call_rings_the_agent_then_the_number() -> None:
    async with AmiServer(on_originate=click_to_call) as server:
        provider = provider_for(server)
        async with running(provider) as run:
            await run.until(lambda: provider.status().connected)
            call_id = await provider.originate(extension="201", number="+447700900999")
            await run.until(run.ended())
            await run.until(lambda: run.events[-1].kind == "recording_ready")
    originate = next(a for a in server.actions if a.get("action") == "Originate")
    assert originate["channel"] == "Local/201@from-internal"
    assert originate["exten"] == "+447700900999"
    assert originate["context"] == "from-internal"
    assert originate["channelid"] == call_id
    assert summary(run.events, call_id) == {
        "direction": "outbound",
        "from": "201",
        "to": "+447700900999",
        "extension": "201",
        "outcome": "answered",
    }
    assert run.events[-1].recording_ref == f"/var/spool/asterisk/monitor/out-{call_id}.wav"


async def test_click_to_call_refused_or_unreachable() -> None:
    refused = "Response: Error\nActionID: x\nMessage: Extension does not exist."
    async with AmiServer() as closed:
        unreachable = provider_for(closed, connect_timeout_seconds=0.5)
    with pytest.raises(Conflict):
        await unreachable.originate(extension="201", number="+447700900999")
    async with AmiServer(responses={"originate": refused}) as server:
        provider = provider_for(server)
        async with running(provider):
            await Running(provider).until(lambda: provider.status().connected)
            with pytest.raises(InvalidInput, match="Extension does not exist"):
                await provider.originate(extension="201", number="+447700900999")
            for extension, number in (("201\r\nAction: Logoff", "+4477"), ("201", "12;3")):
                with pytest.raises(InvalidInput):
                    await provider.originate(extension=extension, number=number)
    assert [a.get("action") for a in server.actions].count("Originate") == 1


@pytest.mark.parametrize("auth", ["plain", "md5"])
async def test_login_plain_and_by_md5_challenge(auth: str) -> None:
    async with AmiServer() as server:
        provider = provider_for(server, auth=auth)
        async with running(provider):
            await server.wait_logins(1)
    login = next(a for a in server.actions if a.get("action") == "Login")
    if auth == "md5":
        assert "secret" not in login and login["authtype"] == "MD5"
        assert server.actions[0]["action"] == "Challenge"
    else:
        assert login["secret"] == server.secret
    assert login["events"] == "call,agent,dialplan"


async def test_a_wrong_secret_is_refused_and_tried_again() -> None:
    async with AmiServer() as server:
        provider = provider_for(server, secret="not-the-secret", auth="md5")
        async with running(provider) as run:
            await run.until(lambda: len(server.logins) >= 2)
            assert provider.status().last_error == "login refused: Authentication failed"
            assert not any(ok for _, ok in server.logins)


async def test_the_stream_goes_on_after_the_server_drops_the_connection() -> None:
    events = read_json_capture(FIXTURES / "asterisk13_ringgroup_answered.json").events
    half = len(events) // 2
    call_id = events[0]["Linkedid"]  # type: ignore[index]
    async with AmiServer(events=events[:half]) as server:
        provider = provider_for(server)
        async with running(provider) as run:
            await run.until(lambda: len(run.events) >= 3)
            server.events = events[half:]
            server.drop()
            await run.until(run.ended())
            assert provider.status().reconnects >= 1
    assert server.connections >= 2
    assert summary(run.events, call_id)["outcome"] == "answered"
    assert [e.kind for e in run.events].count("answered") == 1


async def test_a_server_that_stops_answering_pings_is_left_for_a_new_connection() -> None:
    async with AmiServer() as server:
        provider = provider_for(server, ping_interval_seconds=0.05, ping_timeout_seconds=0.1)
        async with running(provider) as run:
            await server.wait_logins(1)
            await run.until(lambda: [a.get("action") for a in server.actions].count("Ping") >= 2)
            server.answer_pings = False
            await run.until(lambda: server.connections >= 2)


async def test_unknown_and_broken_events_do_not_stop_the_stream() -> None:
    events = read_json_capture(FIXTURES / "asterisk13_outbound_busy.json").events
    noise: list[Event] = [
        {"Event": "SomethingAsteriskAddedLater", "Uniqueid": "x"},
        {"Event": "Hangup"},
        {"Event": "DialBegin", "Uniqueid": "y", "Timestamp": "not a time"},
    ]
    async with AmiServer(events=noise + events) as server, running(provider_for(server)) as run:
        await run.until(run.ended())
        assert run.provider.translator.skipped_types == {"somethingasteriskaddedlater"}


def test_settings_without_a_login_are_refused_by_name() -> None:
    with pytest.raises(SettingsError, match=r"\[telephony.asterisk\] username and secret"):
        AsteriskProvider.from_settings(AsteriskSettings())
    with pytest.raises(SettingsError, match="originate_channel"):
        AsteriskProvider.from_settings(
            AsteriskSettings(username="u", secret="s", originate_channel="Local/201")
        )


async def test_click_to_call_from_a_process_without_a_connection_opens_one() -> None:
    # ``kith call`` runs in its own process: it logs in, originates and leaves.
    async with AmiServer() as server:
        provider = provider_for(server)
        call_id = await provider.originate(extension="201", number="+447700900999")
        await asyncio.sleep(0.05)
    assert [a["action"] for a in server.actions] == ["Challenge", "Login", "Originate"]
    assert server.actions[-1]["channelid"] == call_id
    assert not provider.status().connected


async def test_the_adapter_logs_no_phone_number() -> None:
    events = read_json_capture(FIXTURES / "asterisk13_queue_answered.json").events
    noise: list[Event] = [{"Event": "NotKnownYet", "CallerIDNum": "+447700900123"}]
    with capture_logs() as logs:
        async with AmiServer(events=noise + events) as server, running(provider_for(server)) as run:
            await run.until(run.ended())
    assert logs, "the adapter logs its connection"
    assert "+447700900" not in repr(logs)
