"""Mango Office VPBX: call events in, the callback command out.

Mango posts a form with ``vpbx_api_key``, ``sign`` and ``json``, where ``sign`` is the hex
SHA-256 of api key + json + salt; commands to its API are signed the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

import httpx
import msgspec
from kith import Conflict, InvalidInput, new_id, utcnow
from kith.plugins.telephony.provider_events import CallEvent
from kith.plugins.telephony.settings import MangoSettings

NAME = "mango"
TIMEOUT_S = 10.0
_STATES = {"Appeared": "ringing", "Connected": "answered", "Disconnected": "ended"}


def sign(api_key: str, payload: str, salt: str) -> str:
    return hashlib.sha256((api_key + payload + salt).encode()).hexdigest()


def verify(settings: MangoSettings, form: dict[str, str]) -> dict[str, Any] | None:
    """The event's JSON when the form is signed with this installation's key and salt
    (constant-time comparisons); None otherwise."""
    if not settings.api_key or not settings.api_salt:
        return None
    key, payload, given = form.get("vpbx_api_key", ""), form.get("json", ""), form.get("sign", "")
    expected = sign(settings.api_key, payload, settings.api_salt)
    key_ok = hmac.compare_digest(key.encode(), settings.api_key.encode())
    if not (hmac.compare_digest(expected.encode(), given.lower().encode()) and key_ok):
        return None
    try:
        value = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def _time(value: Any) -> dt.datetime:
    if isinstance(value, int | float) and value > 0:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, str) and value.isdigit():
        return dt.datetime.fromtimestamp(int(value), dt.UTC)
    return utcnow()


def _party(data: dict[str, Any], side: str) -> tuple[str | None, str | None]:
    value = data.get(side)
    if not isinstance(value, dict):
        return None, None
    number, extension = value.get("number"), value.get("extension")
    return (str(number) if number else None), (str(extension) if extension else None)


def _direction(data: dict[str, Any]) -> str:
    _, from_extension = _party(data, "from")
    return "outbound" if from_extension else "inbound"


def call_event(data: dict[str, Any]) -> CallEvent | None:
    """``events/call``: one leg's state change; None for a state Kith does not take."""
    kind = _STATES.get(str(data.get("call_state", "")))
    entry = str(data.get("entry_id", ""))
    if kind is None or not entry:
        return None
    direction = _direction(data)
    from_number, from_extension = _party(data, "from")
    to_number, to_extension = _party(data, "to")
    return CallEvent(
        provider=NAME,
        call_id=entry,
        key=f"{entry}:{data.get('call_id', '')}:{data.get('seq', '')}",
        kind=kind,  # type: ignore[arg-type]
        at=_time(data.get("timestamp")),
        direction=direction,  # type: ignore[arg-type]
        from_number=from_number,
        to_number=to_number,
        extension=from_extension if direction == "outbound" else to_extension,
        detail=_detail(data, kind),
    )


def _detail(data: dict[str, Any], kind: str) -> dict[str, str]:
    # The command id names the call Kith placed (click-to-call) that this one is.
    detail = {"command_id": str(data["command_id"])} if data.get("command_id") else {}
    if kind == "ended":
        detail["disconnect_reason"] = str(data.get("disconnect_reason", ""))
    return detail


def summary_events(data: dict[str, Any]) -> list[CallEvent]:
    """``events/summary``: the whole call once it is over, as its ringing, answer and end."""
    entry = str(data.get("entry_id", ""))
    if not entry:
        return []
    code = str(data.get("call_direction", "1"))
    direction = {"0": "internal", "1": "inbound", "2": "outbound"}.get(code, "inbound")
    from_number, from_extension = _party(data, "from")
    to_number, to_extension = _party(data, "to")
    answered = str(data.get("entry_result", "0")) == "1"
    common: dict[str, Any] = {
        "provider": NAME,
        "call_id": entry,
        "direction": direction,
        "from_number": from_number,
        "to_number": to_number,
        "extension": from_extension if direction == "outbound" else to_extension,
    }
    events = [
        CallEvent(
            **common,
            key=f"{entry}:summary:ringing",
            kind="ringing",
            at=_time(data.get("create_time")),
        ),
    ]
    talk = data.get("talk_time")
    if answered and talk:
        events.append(
            CallEvent(**common, key=f"{entry}:summary:answered", kind="answered", at=_time(talk))
        )
    unanswered = "missed" if direction == "inbound" else "cancelled"
    events.append(
        CallEvent(
            **common,
            key=f"{entry}:summary:ended",
            kind="ended",
            at=_time(data.get("end_time")),
            outcome="answered" if answered else unanswered,  # type: ignore[arg-type]
        )
    )
    return events


def recording_event(data: dict[str, Any]) -> CallEvent | None:
    """``events/record/added``: a recording of the call is ready."""
    entry, recording = str(data.get("entry_id", "")), str(data.get("recording_id", ""))
    if not entry or not recording:
        return None
    return CallEvent(
        provider=NAME,
        call_id=entry,
        key=f"{entry}:recording:{recording}",
        kind="recording_ready",
        at=_time(data.get("timestamp")),
        recording_ref=recording,
    )


class MangoProvider:
    """Click-to-call through Mango's ``commands/callback``."""

    name = NAME

    def __init__(self, settings: MangoSettings) -> None:
        self.settings = settings

    async def originate(self, *, extension: str, number: str) -> str:
        """Mango rings the employee's extension, then the number. The command id is returned;
        the call's events arrive under Mango's entry id."""
        command_id = f"kith-{new_id()}"
        command = {
            "command_id": command_id,
            "from": {"extension": extension},
            "to_number": number.lstrip("+"),
        }
        payload = msgspec.json.encode(command).decode()
        form = {
            "vpbx_api_key": self.settings.api_key,
            "sign": sign(self.settings.api_key, payload, self.settings.api_salt),
            "json": payload,
        }
        url = self.settings.api_url.rstrip("/") + "/commands/callback"
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                response = await client.post(url, data=form)
        except httpx.HTTPError as exc:
            raise Conflict(f"Mango Office could not be reached: {type(exc).__name__}") from None
        try:
            result = msgspec.json.decode(response.content).get("result")
        except (msgspec.DecodeError, AttributeError):
            result = None
        if response.status_code >= 400 or result != 1000:
            raise InvalidInput(
                f"Mango Office refused the call (HTTP {response.status_code}, result {result})"
            )
        return command_id
