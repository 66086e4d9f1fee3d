"""AMI events in, :class:`CallEvent` values out: the whole of Asterisk's call logic, without I/O.

Asterisk reports channels (one per leg: a phone, a trunk, each half of a Local channel), not
calls. The translator groups channels into calls and decides what a person would call the call:
who called whom, which extension rang and answered, how it ended. It reads both event sets:

- Asterisk 13 and later: ``DialBegin``/``DialEnd``, ``BridgeEnter``, ``Hangup``; every channel
  carries ``Linkedid``, the id of the call, which becomes the ``call_id``.
- Asterisk 11: ``Dial`` with ``SubEvent: Begin/End``, ``Bridge``, ``LocalBridge``, ``Hangup``
  and no Linkedid; a call is the first channel's ``Uniqueid`` and grows by dials and Local
  channel pairs.

A call whose first channel is a Local channel was originated (click-to-call, a call file): its
first real leg is the agent's phone, and the call is what that agent dials next.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kith import get_logger, utcnow
from kith.plugins.telephony.provider_events import (
    CallDirection,
    CallEvent,
    CallEventKind,
    CallOutcome,
)

PROVIDER = "asterisk"
# How many finished calls are remembered, so that a late event of one does not start it anew.
_FINISHED_MEMORY = 10_000
_PENDING_ORIGINATES = 1_000
_NO_NUMBER = {"", "<unknown>", "unknown", "anonymous", "<none>"}
_UP = "6"
_FAILED_DIAL = {"CONGESTION", "CHANUNAVAIL", "DONTCALL", "TORTURE", "INVALIDARGS"}
# OriginateResponse reasons: 3 no answer, 5 busy (the agent's phone); the rest is a failure.
_AGENT_DID_NOT_ANSWER = {"3", "5"}

# Events the translator reads, and those it knows and has no use for (never reported).
_IGNORED = frozenset(
    name.lower()
    for name in (
        "FullyBooted",
        "AGIExec",
        "AsyncAGI",
        "AsyncAGIStart",
        "AsyncAGIExec",
        "AsyncAGIEnd",
        "AgentComplete",
        "AgentDump",
        "AgentRingNoAnswer",
        "BridgeCreate",
        "BridgeDestroy",
        "BridgeLeave",
        "BridgeMerge",
        "BridgeVideoSourceUpdate",
        "Cdr",
        "CEL",
        "ChallengeSent",
        "ChanSpyStart",
        "ChanSpyStop",
        "ChannelUpdate",
        "ContactStatus",
        "DeviceStateChange",
        "DTMF",
        "DTMFBegin",
        "DTMFEnd",
        "ExtensionStatus",
        "Hold",
        "HangupHandlerPop",
        "HangupHandlerPush",
        "HangupHandlerRun",
        "HangupRequest",
        "LocalOptimizationBegin",
        "LocalOptimizationEnd",
        "Masquerade",
        "MixMonitorStart",
        "MixMonitorStop",
        "MusicOnHold",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
        "NewAccountCode",
        "NewCallerid",
        "NewConnectedLine",
        "NewPeerAccount",
        "PeerStatus",
        "PresenceStateChange",
        "QueueCallerLeave",
        "QueueMemberAdded",
        "QueueMemberPause",
        "QueueMemberPenalty",
        "QueueMemberRemoved",
        "QueueMemberRinginuse",
        "QueueMemberStatus",
        "Registry",
        "Reload",
        "RTCPReceived",
        "RTCPSent",
        "SIPRinging",
        "SoftHangupRequest",
        "SuccessfulAuth",
        "Unhold",
        "Unlink",
        "User",
        "UserEvent",
        "VarSet",
        "Leave",
        "Shutdown",
        "FailedACL",
        "InvalidPassword",
        "ChallengeResponseFailed",
        "UnexpectedAddress",
        "InvalidAccountID",
        "RequestBadFormat",
        "RequestNotAllowed",
        "AuthMethodNotAllowed",
        "Link",
        "MeetmeJoin",
        "MeetmeLeave",
        "ConfbridgeJoin",
        "ConfbridgeLeave",
        "ConfbridgeStart",
        "ConfbridgeEnd",
        "ConfbridgeTalking",
        "MessageWaiting",
        "VoicemailPasswordChange",
        "Pong",
        "Status",
        "StatusComplete",
        "CoreShowChannel",
        "CoreShowChannelsComplete",
    )
)


@dataclass
class _Channel:
    uid: str
    name: str = ""
    number: str = ""
    exten: str = ""
    # Set when another channel dials this one: the number it was dialled as.
    leg: str | None = None
    local: bool = False


@dataclass
class _Call:
    call_id: str
    root: str
    channels: set[str] = field(default_factory=set)
    caller: str = ""
    dialled: str = ""
    originated: bool = False
    agent: str | None = None
    target: str | None = None
    agent_legs: set[str] = field(default_factory=set)
    agent_answered: bool = False
    originate_failure: str | None = None
    direction: CallDirection | None = None
    started: bool = False
    answered: bool = False
    talking: str | None = None
    last_rang: str | None = None
    queue: str | None = None
    dial_status: str | None = None
    voicemail: bool = False
    abandoned: bool = False
    picked_legs: set[str] = field(default_factory=set)
    recordings: list[str] = field(default_factory=list)
    emitted: set[str] = field(default_factory=set)


@dataclass
class _Expected:
    extension: str
    number: str
    action_id: str | None


Headers = dict[str, str]


class AmiTranslator:
    """Turns a stream of AMI events (header mappings, any key case) into call events.

    Feed it every event in the order received; it keeps the state of each live call. Keys are
    built from Asterisk's own ids, so replaying a stream gives the same keys again.
    """

    def __init__(
        self,
        *,
        extension_pattern: str = r"^[0-9]{2,5}$",
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._extension = re.compile(extension_pattern)
        self._clock = clock
        self._calls: dict[str, _Call] = {}
        self._channels: dict[str, _Channel] = {}
        self._channel_call: dict[str, str] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._expected: OrderedDict[str, _Expected] = OrderedDict()
        self._skipped: set[str] = set()
        self._log = get_logger("kith.telephony.asterisk")
        self._out: list[CallEvent] = []
        self._at = dt.datetime.min
        self._handlers: dict[str, Callable[[Headers], None]] = {
            "newchannel": self._newchannel,
            "newstate": self._newstate,
            "rename": self._rename,
            "dialbegin": self._dial_begin,
            "dialend": self._dial_end,
            "dial": self._dial_v11,
            "localbridge": self._local_bridge,
            "bridgeenter": self._bridge_enter,
            "bridge": self._bridge_v11,
            "hangup": self._hangup,
            "varset": self._varset,
            "newexten": self._newexten,
            "queuecallerjoin": self._queue_join,
            "join": self._queue_join,
            "agentcalled": self._agent_called,
            "agentconnect": self._agent_connect,
            "queuecallerabandon": self._queue_abandon,
            "blindtransfer": self._blind_transfer,
            "attendedtransfer": self._attended_transfer,
            "transfer": self._transfer_v11,
            "pickup": self._pickup,
            "originateresponse": self._originate_response,
        }

    # -- the public face ----------------------------------------------------------------------

    @property
    def skipped_types(self) -> frozenset[str]:
        """The event types seen that the translator does not know (each logged once)."""
        return frozenset(self._skipped)

    @property
    def live_calls(self) -> int:
        return len(self._calls)

    def expect_originate(
        self, call_id: str, *, extension: str, number: str, action_id: str | None = None
    ) -> None:
        """Say that Kith originated ``call_id`` from ``extension`` to ``number``: its events
        then carry that id, the agent and the number, even where Asterisk cannot name them."""
        self._expected[call_id] = _Expected(extension, number, action_id)
        while len(self._expected) > _PENDING_ORIGINATES:
            self._expected.popitem(last=False)

    def forget_originate(self, call_id: str) -> None:
        self._expected.pop(call_id, None)

    def feed(self, message: Mapping[str, Any]) -> list[CallEvent]:
        """The call events ``message`` (one AMI event) completes, in order."""
        headers = {
            str(key).lower(): value for key, value in message.items() if isinstance(value, str)
        }
        name = headers.get("event", "").lower()
        if not name:
            return []
        handler = self._handlers.get(name)
        if handler is None:
            if name not in _IGNORED and name not in self._skipped:
                self._skipped.add(name)
                self._log.info("asterisk event type not used, skipped", ami_event=name)
            return []
        self._out = []
        self._at = self._time(headers)
        handler(headers)
        return self._out

    # -- channels and calls -------------------------------------------------------------------

    def _time(self, headers: Headers) -> dt.datetime:
        stamp = headers.get("timestamp")
        if stamp:
            try:
                return dt.datetime.fromtimestamp(float(stamp), dt.UTC)
            except (ValueError, OverflowError, OSError):
                pass
        return self._clock()

    def _is_extension(self, number: str | None) -> bool:
        return bool(number) and self._extension.match(number or "") is not None

    @staticmethod
    def _number(value: str | None) -> str:
        value = (value or "").strip()
        return "" if value.lower() in _NO_NUMBER else value

    def _channel(self, uid: str) -> _Channel:
        channel = self._channels.get(uid)
        if channel is None:
            channel = self._channels[uid] = _Channel(uid)
        return channel

    def _call_of(self, uid: str, linked: str = "") -> _Call | None:
        """The call ``uid`` belongs to, created when the channel is new; None for a channel of
        a call that has finished."""
        if not uid:
            return None
        call_id = self._channel_call.get(uid)
        if call_id is not None:
            return self._calls[call_id]
        call_id = linked or uid
        if call_id in self._finished:
            return None
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = _Call(call_id, root=uid)
            self._adopt_expected(call, call_id)
        call.channels.add(uid)
        self._channel_call[uid] = call_id
        return call

    def _adopt_expected(self, call: _Call, call_id: str) -> None:
        expected = self._expected.pop(call_id, None)
        if expected is not None:
            call.originated = True
            call.agent = expected.extension
            call.target = expected.number

    def _rename_call(self, call: _Call, call_id: str) -> None:
        """Give a call that has emitted nothing yet the id Kith chose for it."""
        if call.started or call_id == call.call_id or call_id in self._calls:
            return
        del self._calls[call.call_id]
        call.call_id = call_id
        self._calls[call_id] = call
        for uid in call.channels:
            self._channel_call[uid] = call_id
        self._adopt_expected(call, call_id)

    def _join(self, into: _Call, uid: str) -> None:
        """Make channel ``uid`` part of ``into`` (with the rest of its call when that call has
        not started: an Asterisk 11 leg before anyone dialled it)."""
        other_id = self._channel_call.get(uid)
        if other_id == into.call_id:
            return
        other = self._calls.get(other_id) if other_id else None
        moving = {uid} if other is None or other.started else set(other.channels)
        if other is not None:
            other.channels -= moving
            if not other.channels and not other.started:
                del self._calls[other.call_id]
        for moved in moving:
            self._channel_call[moved] = into.call_id
        into.channels |= moving
        if other is not None and other.started and not other.channels:
            self._finish(other)

    # -- what a call looks like to a person ---------------------------------------------------

    def _start(self, call: _Call, first_leg: str | None = None) -> None:
        if call.started:
            return
        call.started = True
        if call.originated:
            target = call.target or first_leg or ""
            call.target = target
            call.direction = "internal" if self._is_extension(target) else "outbound"
            return
        callee = call.dialled or first_leg or ""
        call.dialled = callee
        if not self._is_extension(call.caller):
            call.direction = "inbound"
        elif self._is_extension(callee):
            call.direction = "internal"
        else:
            call.direction = "outbound"

    def _parties(self, call: _Call) -> tuple[str | None, str | None]:
        if call.originated:
            return call.agent or None, call.target or None
        return call.caller or None, call.dialled or None

    def _office_extension(self, call: _Call, leg: str | None) -> str | None:
        if call.originated:
            return call.agent
        if call.direction == "outbound":
            return call.caller or None
        return leg if self._is_extension(leg) else None

    def _emit(
        self,
        call: _Call,
        kind: CallEventKind,
        discriminator: str,
        **values: Any,
    ) -> None:
        key = (
            f"{call.call_id}:{kind}:{discriminator}" if discriminator else f"{call.call_id}:{kind}"
        )
        if key in call.emitted:
            return
        call.emitted.add(key)
        source, destination = self._parties(call)
        values.setdefault("queue", call.queue)
        self._out.append(
            CallEvent(
                provider=PROVIDER,
                call_id=call.call_id,
                key=key,
                kind=kind,
                at=self._at,
                direction=call.direction,
                from_number=source,
                to_number=destination,
                **values,
            )
        )

    def _ring(self, call: _Call, leg_uid: str, number: str) -> None:
        """A real phone or trunk leg ``leg_uid`` starts ringing, dialled as ``number``."""
        channel = self._channel(leg_uid)
        channel.leg = number
        if call.originated and (
            call.agent is None or number == call.agent or (not call.agent_answered)
        ):
            # The first leg of an originated call rings the agent, not the other party.
            call.agent = call.agent or number
            call.agent_legs.add(leg_uid)
            return
        self._start(call, number)
        call.last_rang = number
        self._emit(call, "ringing", leg_uid, extension=self._office_extension(call, number) or None)

    def _answer(self, call: _Call, leg_uid: str, number: str | None = None) -> None:
        if leg_uid in call.agent_legs:
            call.agent_answered = True
            return
        if leg_uid in call.picked_legs:
            return
        channel = self._channels.get(leg_uid)
        number = number or (channel.leg if channel else None)
        if number is None:
            return
        self._start(call, number)
        call.answered = True
        call.talking = number
        self._emit(call, "answered", leg_uid, extension=self._office_extension(call, number))

    def _outcome(self, call: _Call) -> CallOutcome:
        if call.answered:
            return "answered"
        if call.voicemail:
            return "voicemail"
        if call.originated and not call.agent_answered:
            failure = call.originate_failure
            return "failed" if failure and failure not in _AGENT_DID_NOT_ANSWER else "cancelled"
        if call.direction == "inbound":
            return "missed"
        status = call.dial_status
        if status == "BUSY":
            return "busy"
        if status == "NOANSWER":
            return "missed"
        if status in _FAILED_DIAL:
            return "failed"
        return "cancelled"

    def _worth_telling(self, call: _Call) -> bool:
        """Whether a call that never rang anyone is a call to a person: a caller from outside
        who hung up in the greeting, or a click-to-call whose agent never answered. An office
        phone that only dialled a feature code is not."""
        if call.originated:
            return call.target is not None
        has_party = bool(call.caller or call.dialled)
        return has_party and not self._is_extension(call.caller)

    def _finish(self, call: _Call) -> None:
        """The call's last channel hung up: say how it ended, then forget it."""
        self._calls.pop(call.call_id, None)
        self._finished[call.call_id] = None
        while len(self._finished) > _FINISHED_MEMORY:
            self._finished.popitem(last=False)
        for uid in call.channels:
            self._channel_call.pop(uid, None)
        if not call.started:
            if not self._worth_telling(call):
                return
            self._start(call)
            self._emit(call, "ringing", "", extension=None)
        outcome = self._outcome(call)
        detail = {"dial_status": call.dial_status} if call.dial_status else {}
        if call.abandoned:
            detail["queue_abandoned"] = "yes"
        extension = call.talking if call.answered else call.last_rang
        self._emit(
            call,
            "ended",
            "",
            outcome=outcome,
            extension=self._office_extension(call, extension),
            detail=detail,
        )
        for reference in call.recordings:
            self._emit(
                call,
                "recording_ready",
                reference,
                recording_ref=reference,
                extension=self._office_extension(call, extension),
            )

    # -- Asterisk 13+ and 11 channel events ---------------------------------------------------

    def _newchannel(self, h: Headers) -> None:
        uid = h.get("uniqueid", "")
        call = self._call_of(uid, h.get("linkedid", ""))
        if call is None:
            return
        channel = self._channel(uid)
        channel.name = h.get("channel", "")
        channel.number = self._number(h.get("calleridnum"))
        channel.exten = h.get("exten", "")
        channel.local = channel.name.startswith("Local/")
        if call.root == uid and not call.started:
            call.caller = channel.number
            call.dialled = "" if channel.exten == "s" else channel.exten
            call.originated = call.originated or channel.local
            if channel.name.endswith(";1") and "linkedid" not in h:
                self._adopt_by_channel(call, channel.name)

    def _adopt_by_channel(self, call: _Call, name: str) -> None:
        """Asterisk 11 cannot take the call's id from Kith: the first Local channel Kith asked
        for (``Local/<extension>@...``) stands for the pending originate of that extension."""
        for call_id, expected in self._expected.items():
            if name.startswith(f"Local/{expected.extension}@"):
                self._rename_call(call, call_id)
                return

    def _newstate(self, h: Headers) -> None:
        uid = h.get("uniqueid", "")
        call = self._call_of(uid, h.get("linkedid", ""))
        if call is None:
            return
        channel = self._channel(uid)
        number = self._number(h.get("calleridnum"))
        if number:
            channel.number = number
        if h.get("channelstate") == _UP and channel.leg is not None and not channel.local:
            self._answer(call, uid)

    def _rename(self, h: Headers) -> None:
        channel = self._channels.get(h.get("uniqueid", ""))
        if channel is not None:
            # An Asterisk 11 masquerade: a Local channel's id now stands for a real phone.
            channel.name = h.get("newname", channel.name)
            channel.local = channel.name.startswith("Local/")

    def _dial_begin(self, h: Headers) -> None:
        source = h.get("uniqueid", "")
        dest = h.get("destuniqueid", "")
        call = self._call_of(source, h.get("linkedid", "")) if source else None
        if call is None:
            call = self._call_of(dest, h.get("destlinkedid", ""))
        if call is None or not dest:
            return
        self._join(call, dest)
        if source == call.root and not call.started:
            call.caller = self._number(h.get("calleridnum")) or call.caller
        dest_name = h.get("destchannel") or h.get("destination") or ""
        channel = self._channel(dest)
        channel.name = dest_name or channel.name
        channel.local = channel.name.startswith("Local/")
        if channel.local:
            return
        self._ring(
            call,
            dest,
            self._leg_number(
                self._number(h.get("destcalleridnum")),
                channel.number,
                h.get("dialstring", ""),
            ),
        )

    def _leg_number(self, *candidates: str) -> str:
        """The number a dialled leg stands for: an extension when one of the candidates is
        one, else the first number given (an outside number dialled through a trunk)."""
        numbers = [self._dialstring_number(value) for value in candidates if value]
        for number in numbers:
            if self._is_extension(number):
                return number
        return next((number for number in numbers if number), "")

    @staticmethod
    def _dialstring_number(value: str) -> str:
        # "trunk/+4930123" or "PJSIP/201" or "201@context" -> the number part.
        part = value.rsplit("/", 1)[-1].split("@", 1)[0].split("!", 1)[0]
        return part.strip()

    def _dial_end(self, h: Headers) -> None:
        source = h.get("uniqueid", "")
        dest = h.get("destuniqueid", "")
        call = self._call_of(source, h.get("linkedid", ""))
        if call is None:
            return
        status = h.get("dialstatus", "").upper()
        channel = self._channels.get(dest)
        if channel is not None and not channel.local and dest not in call.agent_legs:
            call.dial_status = status or call.dial_status
            if status == "ANSWER":
                self._answer(call, dest)
        elif channel is None and status:
            source_channel = self._channels.get(source)
            if source_channel is None or not source_channel.local:
                call.dial_status = status

    def _dial_v11(self, h: Headers) -> None:
        if h.get("subevent", "").lower() == "begin":
            self._dial_begin(h)
            return
        source = h.get("uniqueid", "")
        call = self._call_of(source)
        status = h.get("dialstatus", "").upper()
        if call is None or not status:
            return
        # Asterisk 11 does not say which leg ended; the agent's leg of an originated call is
        # dialled by the Local channel, every other leg by a real one.
        source_channel = self._channels.get(source)
        if not (call.originated and source_channel is not None and source_channel.local):
            call.dial_status = status

    def _local_bridge(self, h: Headers) -> None:
        one = h.get("localoneuniqueid") or h.get("uniqueid1", "")
        two = h.get("localtwouniqueid") or h.get("uniqueid2", "")
        call = self._call_of(one, h.get("localonelinkedid", ""))
        if call is not None and two:
            self._join(call, two)

    def _bridge_enter(self, h: Headers) -> None:
        uid = h.get("uniqueid", "")
        call = self._call_of(uid, h.get("linkedid", ""))
        channel = self._channels.get(uid)
        if (
            call is not None
            and channel is not None
            and channel.leg is not None
            and not channel.local
        ):
            self._answer(call, uid)

    def _bridge_v11(self, h: Headers) -> None:
        if h.get("bridgestate", "").lower() != "link":
            return
        for uid in (h.get("uniqueid1", ""), h.get("uniqueid2", "")):
            channel = self._channels.get(uid)
            call_id = self._channel_call.get(uid)
            if channel is not None and call_id and channel.leg is not None and not channel.local:
                self._answer(self._calls[call_id], uid)

    def _hangup(self, h: Headers) -> None:
        uid = h.get("uniqueid", "")
        call_id = self._channel_call.pop(uid, None)
        self._channels.pop(uid, None)
        if call_id is None:
            return
        call = self._calls[call_id]
        call.channels.discard(uid)
        if not call.channels:
            self._finish(call)

    def _varset(self, h: Headers) -> None:
        variable = h.get("variable", "")
        if variable == "MIXMONITOR_FILENAME":
            call = self._call_of(h.get("uniqueid", ""), h.get("linkedid", ""))
            value = h.get("value", "")
            if call is not None and value and value not in call.recordings:
                call.recordings.append(value)
        elif variable == "KITH_CALL_ID":
            call = self._call_of(h.get("uniqueid", ""), h.get("linkedid", ""))
            if call is not None and h.get("value"):
                self._rename_call(call, h["value"])

    def _newexten(self, h: Headers) -> None:
        if h.get("application", "").lower() != "voicemail":
            return
        call = self._call_of(h.get("uniqueid", ""), h.get("linkedid", ""))
        if call is not None:
            call.voicemail = True

    # -- queues -------------------------------------------------------------------------------

    def _queue_join(self, h: Headers) -> None:
        call = self._call_of(h.get("uniqueid", ""), h.get("linkedid", ""))
        if call is None:
            return
        call.queue = h.get("queue") or call.queue
        if not call.started:
            call.caller = self._number(h.get("calleridnum")) or call.caller
        self._start(call)
        self._emit(call, "ringing", f"queue-{call.queue}", extension=None)

    def _member(self, h: Headers) -> str:
        return self._leg_number(
            self._number(h.get("destcalleridnum")),
            h.get("interface", ""),
            h.get("agentcalled", ""),
            h.get("membername", "") if self._is_extension(h.get("membername")) else "",
        )

    def _member_leg(self, h: Headers) -> str:
        return h.get("destuniqueid", "") or f"{h.get('uniqueid', '')}/{self._member(h)}"

    def _agent_called(self, h: Headers) -> None:
        call = self._call_of(h.get("uniqueid", ""), h.get("linkedid", ""))
        if call is None:
            return
        call.queue = h.get("queue") or call.queue
        leg = self._member_leg(h)
        if h.get("destuniqueid"):
            self._join(call, leg)
        self._ring(call, leg, self._member(h))

    def _agent_connect(self, h: Headers) -> None:
        call = self._call_of(h.get("uniqueid", ""), h.get("linkedid", ""))
        if call is None:
            return
        call.queue = h.get("queue") or call.queue
        self._answer(call, self._member_leg(h), self._member(h))

    def _queue_abandon(self, h: Headers) -> None:
        call = self._call_of(h.get("uniqueid", ""), h.get("linkedid", ""))
        if call is not None:
            call.queue = h.get("queue") or call.queue
            call.abandoned = True

    # -- transfers and pickups ----------------------------------------------------------------

    def _transferred(self, call: _Call, discriminator: str, target: str, by: str) -> None:
        if not target:
            return
        self._start(call, target)
        self._emit(
            call,
            "transferred",
            discriminator,
            transferred_to=target,
            extension=self._office_extension(call, by) if by else None,
        )

    def _blind_transfer(self, h: Headers) -> None:
        if h.get("result", "Success").lower() != "success":
            return
        transferee = h.get("transfereeuniqueid", "")
        call = self._call_of(transferee, h.get("transfereelinkedid", ""))
        if call is None:
            return
        target = h.get("extension", "")
        transferer = h.get("transfereruniqueid", "")
        self._transferred(
            call,
            f"{transferer}-{target}",
            target,
            self._number(h.get("transferercalleridnum")),
        )

    def _attended_transfer(self, h: Headers) -> None:
        if h.get("result", "Success").lower() != "success":
            return
        transferee = h.get("transfereeuniqueid", "") or h.get("origtransfereruniqueid", "")
        call = self._call_of(
            transferee, h.get("transfereelinkedid", "") or h.get("origtransfererlinkedid", "")
        )
        if call is None:
            return
        target_uid = h.get("transfertargetuniqueid", "")
        target = self._number(h.get("transfertargetcalleridnum"))
        if target_uid:
            target_channel = self._channels.get(target_uid)
            if target_channel is not None and not target:
                target = target_channel.leg or target_channel.number
            # The consultation call's far end now talks with the caller: its hangup belongs
            # to this call, and so does its answer.
            self._join(call, target_uid)
            self._channel(target_uid).leg = target
        self._transferred(
            call,
            f"{h.get('origtransfereruniqueid', '')}-{target_uid}",
            target,
            self._number(h.get("origtransferercalleridnum")),
        )
        if target:
            call.talking = target

    def _transfer_v11(self, h: Headers) -> None:
        call = self._call_of(h.get("targetuniqueid", "")) or self._call_of(h.get("uniqueid", ""))
        if call is None:
            return
        target = h.get("transferexten", "")
        self._transferred(
            call,
            f"{h.get('uniqueid', '')}-{target}",
            target,
            self._number(h.get("calleridnum")),
        )

    def _pickup(self, h: Headers) -> None:
        target_uid = h.get("targetuniqueid", "")
        call = self._call_of(target_uid, h.get("targetlinkedid", ""))
        picker = h.get("uniqueid", "")
        if call is None or not picker:
            return
        number = self._number(h.get("calleridnum")) or self._channel(picker).number
        self._join(call, picker)
        self._channel(picker).leg = number
        # The leg that rang is answered by the pickup, not by its own phone.
        call.picked_legs.add(target_uid)
        self._answer(call, picker, number)

    def _originate_response(self, h: Headers) -> None:
        if h.get("response", "").lower() == "success":
            return
        action_id = h.get("actionid", "")
        for call_id, expected in list(self._expected.items()):
            if action_id and expected.action_id == action_id:
                # Nothing of it ever reached Asterisk's channels: it ends here.
                call = self._calls[call_id] = _Call(call_id, root="")
                self._expected.pop(call_id)
                call.originated = True
                call.agent, call.target = expected.extension, expected.number
                call.originate_failure = h.get("reason", "0")
                self._finish(call)
                return
        live = self._channel_call.get(h.get("uniqueid", ""))
        if live is not None:
            self._calls[live].originate_failure = h.get("reason", "0")
