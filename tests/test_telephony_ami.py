"""The AMI translator on its own: Asterisk's event streams in, the calls a person sees out."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from ami_server import FIXTURES, SAMPLES, parse, read_wire_capture
from hypothesis import given, settings
from hypothesis import strategies as st
from kith.plugins.telephony.asterisk import AmiTranslator
from kith.plugins.telephony.provider_events import CallEvent
from structlog.testing import capture_logs

NEEDS_SAMPLES = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"the public AMI captures are not here ({SAMPLES})"
)


def events_of(path: Path, **fill: str) -> list[Mapping[str, Any]]:
    """A capture's events as header mappings (wire captures parsed as the client would)."""
    if path.suffix == ".json":
        text = path.read_text()
        for name, value in fill.items():
            text = text.replace("{" + name + "}", value)
        return list(json.loads(text))
    return [
        {key: values[-1] for key, values in parse(block).items()}  # type: ignore[misc]
        for block in read_wire_capture(path).events
        if isinstance(block, str)
    ]


def translate(
    messages: Iterable[Mapping[str, Any]], translator: AmiTranslator | None = None
) -> list[CallEvent]:
    translator = translator or AmiTranslator()
    return [event for message in messages for event in translator.feed(message)]


def all_streams() -> list[Path]:
    found = sorted(FIXTURES.glob("*.json"))
    if SAMPLES.is_dir():
        found += sorted(SAMPLES.glob("asterisk13_*.json"))
        found += [SAMPLES / "asterisk11_originate_with_events.yaml"]
    return found


FILL = {"call_id": "kith-call-1", "extension": "201", "number": "+447700900999"}


@pytest.mark.parametrize("path", all_streams(), ids=lambda path: path.name)
def test_replaying_a_stream_gives_the_same_unique_keys(path: Path) -> None:
    first = translate(events_of(path, **FILL))
    again = translate(events_of(path, **FILL))
    keys = [event.key for event in first]
    assert keys, "every stream holds a call"
    assert len(set(keys)) == len(keys)
    assert keys == [event.key for event in again]
    # Every call that rang also ended, exactly once.
    for call_id in {event.call_id for event in first}:
        kinds = [event.kind for event in first if event.call_id == call_id]
        assert kinds[0] == "ringing"
        assert kinds.count("ended") == 1


def test_unknown_event_types_are_logged_once_and_skipped() -> None:
    translator = AmiTranslator()
    with capture_logs() as logs:
        for _ in range(3):
            assert translator.feed({"Event": "FancyNewThing", "Uniqueid": "1.1"}) == []
        assert translator.feed({"Event": "RTCPSent", "Uniqueid": "1.1"}) == []
    assert translator.skipped_types == {"fancynewthing"}
    skipped = [entry for entry in logs if entry.get("ami_event") == "fancynewthing"]
    assert len(skipped) == 1


AMI_KEYS = [
    "Event", "Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid", "Channel", "DestChannel",
    "CallerIDNum", "DestCallerIDNum", "Exten", "ChannelState", "DialStatus", "SubEvent",
    "Variable", "Value", "Queue", "TargetUniqueid", "TransfereeUniqueid", "TransferTargetUniqueid",
    "Extension", "Result", "Timestamp", "Response", "ActionID", "Reason", "Uniqueid1", "Uniqueid2",
    "LocalOneUniqueid", "LocalTwoUniqueid", "Bridgestate", "Application", "Interface",
]  # fmt: skip
EVENT_NAMES = [
    "Newchannel", "Newstate", "DialBegin", "DialEnd", "Dial", "Hangup", "BridgeEnter", "Bridge",
    "LocalBridge", "VarSet", "Newexten", "QueueCallerJoin", "Join", "AgentCalled",
    "AgentConnect", "QueueCallerAbandon", "BlindTransfer", "AttendedTransfer", "Transfer",
    "Pickup", "OriginateResponse", "Rename",
]  # fmt: skip
VALUES = st.sampled_from(["1.1", "1.2", "1.3", "", "201", "+447700900123", "6", "ANSWER", "x;1"])
MESSAGE = st.fixed_dictionaries(
    {"Event": st.sampled_from(EVENT_NAMES)},
    optional={key: VALUES | st.text(max_size=8) for key in AMI_KEYS if key != "Event"},
)


@settings(max_examples=300, deadline=None)
@given(st.lists(MESSAGE, max_size=40))
def test_any_sequence_of_known_events_is_read_without_an_error(
    messages: list[dict[str, str]],
) -> None:
    # Asterisk versions, lost events and reconnects give streams no capture shows.
    translator = AmiTranslator()
    translator.expect_originate("1.1", extension="201", number="+447700900999", action_id="a")
    for event in translate(messages, translator):
        assert event.provider == "asterisk"
        assert event.call_id


def test_the_event_time_is_asterisks_own_when_it_stamps_events() -> None:
    clock = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    translator = AmiTranslator(clock=lambda: clock)
    base = {"Uniqueid": "9.1", "Linkedid": "9.1", "CallerIDNum": "+447700900123"}
    translator.feed({"Event": "Newchannel", **base, "Exten": "+442079460000"})
    (ringing, ended) = translator.feed({"Event": "Hangup", **base, "Timestamp": "1733400000.5"})
    assert ended.at == dt.datetime.fromtimestamp(1733400000.5, dt.UTC)
    assert ringing.at == ended.at
    translator.feed({"Event": "Newchannel", **base, "Uniqueid": "9.2", "Linkedid": "9.2"})
    late = translator.feed({"Event": "Hangup", **base, "Uniqueid": "9.2", "Linkedid": "9.2"})
    assert {event.at for event in late} == {clock}


def test_a_late_event_of_a_finished_call_does_not_start_it_again() -> None:
    path = FIXTURES / "asterisk13_ringgroup_answered.json"
    messages = events_of(path)
    translator = AmiTranslator()
    translate(messages, translator)
    assert translate(messages[-3:], translator) == []
    assert translator.live_calls == 0


def test_an_office_phone_dialling_a_feature_code_is_no_call() -> None:
    head = {"Uniqueid": "7.1", "Linkedid": "7.1", "CallerIDNum": "201", "Exten": "*97"}
    assert translate([{"Event": "Newchannel", **head}, {"Event": "Hangup", **head}]) == []


@NEEDS_SAMPLES
def test_asterisk_11_click_to_call_carries_the_id_kith_gave_it() -> None:
    # Asterisk 11 cannot name a call after Kith's id: the Local channel of the extension Kith
    # asked to ring stands for it.
    translator = AmiTranslator()
    translator.expect_originate("kith-1", extension="259", number="254", action_id="a1")
    events = translate(events_of(SAMPLES / "asterisk11_originate_with_events.yaml"), translator)
    assert {event.call_id for event in events} == {"kith-1"}
    assert events[-1].outcome == "answered"
    assert (events[-1].from_number, events[-1].to_number) == ("259", "254")


def test_a_click_to_call_asterisk_refused_ends_at_once() -> None:
    translator = AmiTranslator()
    translator.expect_originate("kith-2", extension="201", number="+447700900999", action_id="a2")
    refused = {"Event": "OriginateResponse", "ActionID": "a2", "Response": "Failure"}
    (ringing, ended) = translator.feed({**refused, "Reason": "0"})
    assert (ringing.kind, ended.kind, ended.call_id) == ("ringing", "ended", "kith-2")
    assert ended.outcome == "failed"
    assert ended.direction == "outbound"
    translator.expect_originate("kith-3", extension="201", number="+447700900999", action_id="a3")
    (_, unanswered) = translator.feed({**refused, "ActionID": "a3", "Reason": "3"})
    assert unanswered.outcome == "cancelled"
