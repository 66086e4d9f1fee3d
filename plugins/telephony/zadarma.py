"""Zadarma: PBX call notifications in, the callback request out.

Zadarma signs a notification with the ``Signature`` header: base64 of the hexadecimal
HMAC-SHA1, under the API secret, of some of its fields joined (which ones depends on the event).
API requests are signed alike over the method path, the sorted query and its MD5. When a
notification URL is saved, Zadarma checks it with ``?zd_echo=<text>`` and expects the text back.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import zoneinfo
from urllib.parse import urlencode

import httpx
from kith import Conflict, InvalidInput, new_id, utcnow
from kith.plugins.telephony.provider_events import CallEvent, CallOutcome
from kith.plugins.telephony.settings import ZadarmaSettings

NAME = "zadarma"
SIGNATURE_HEADER = "signature"
TIMEOUT_S = 10.0

# The fields each notification's signature covers, in order.
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "NOTIFY_START": ("caller_id", "called_did", "call_start"),
    "NOTIFY_INTERNAL": ("caller_id", "called_did", "call_start"),
    "NOTIFY_ANSWER": ("caller_id", "destination", "call_start"),
    "NOTIFY_END": ("caller_id", "called_did", "call_start"),
    "NOTIFY_OUT_START": ("internal", "destination", "call_start"),
    "NOTIFY_OUT_END": ("internal", "destination", "call_start"),
    "NOTIFY_RECORD": ("pbx_call_id", "call_id_with_rec"),
}
_DISPOSITION: dict[str, CallOutcome] = {
    "answered": "answered",
    "busy": "busy",
    "cancel": "cancelled",
    "no answer": "missed",
}


def sign(secret: str, text: str) -> str:
    """base64 of the hexadecimal HMAC-SHA1 of ``text``, as Zadarma computes it."""
    hexdigest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(hexdigest.encode()).decode()


def verify(secret: str, form: dict[str, str], given: str | None) -> bool:
    """Whether ``given`` is Zadarma's signature of this notification (constant time)."""
    fields = SIGNED_FIELDS.get(form.get("event", ""))
    if not given or not secret or fields is None:
        return False
    expected = sign(secret, "".join(form.get(name, "") for name in fields))
    return hmac.compare_digest(expected.encode(), given.encode())


def api_signature(secret: str, method: str, params: dict[str, str]) -> str:
    """The signature of an API request: over the method path, the sorted query, its MD5."""
    query = urlencode(sorted(params.items()))
    return sign(secret, method + query + hashlib.md5(query.encode()).hexdigest())


def _start(form: dict[str, str], zone: zoneinfo.ZoneInfo) -> dt.datetime:
    try:
        local = dt.datetime.strptime(form.get("call_start", ""), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return utcnow()
    return local.replace(tzinfo=zone).astimezone(dt.UTC)


def event_of(form: dict[str, str], zone: zoneinfo.ZoneInfo) -> CallEvent | None:
    """The call event of a notification; None for one Kith does not take (unknown events)."""
    name = form.get("event", "")
    call_id = form.get("pbx_call_id", "")
    if name not in SIGNED_FIELDS or not call_id:
        return None
    internal = form.get("internal") or None
    start = _start(form, zone)
    # Answers and ends carry no time of their own: now, never before the call began (the
    # provider's clock may run ahead of ours).
    now = max(utcnow(), start)
    common = {"provider": NAME, "call_id": call_id, "key": f"{call_id}:{name}:{internal or ''}"}
    outcome = _DISPOSITION.get(form.get("disposition", ""), "failed")
    duration = form.get("duration", "")
    detail = {"talk_seconds": duration} if duration.isdigit() else {}
    if name in ("NOTIFY_START", "NOTIFY_INTERNAL"):
        return CallEvent(
            **common,
            kind="ringing",
            at=start,
            direction="inbound",
            from_number=form.get("caller_id"),
            to_number=form.get("called_did"),
            extension=internal,
        )
    if name == "NOTIFY_ANSWER":
        return CallEvent(
            **common,
            kind="answered",
            at=now,
            direction="inbound",
            from_number=form.get("caller_id"),
            extension=internal,
        )
    if name == "NOTIFY_END":
        return CallEvent(
            **common,
            kind="ended",
            at=now,
            direction="inbound",
            from_number=form.get("caller_id"),
            to_number=form.get("called_did"),
            extension=internal,
            outcome=outcome,
            detail=detail,
        )
    if name == "NOTIFY_OUT_START":
        return CallEvent(
            **common,
            kind="ringing",
            at=start,
            direction="outbound",
            to_number=form.get("destination"),
            extension=internal,
        )
    if name == "NOTIFY_OUT_END":
        return CallEvent(
            **common,
            kind="ended",
            at=now,
            direction="outbound",
            to_number=form.get("destination"),
            extension=internal,
            outcome=outcome,
            detail=detail,
        )
    return CallEvent(
        **common,
        kind="recording_ready",
        at=utcnow(),
        recording_ref=form.get("call_id_with_rec") or None,
    )


class ZadarmaProvider:
    """Click-to-call through Zadarma's callback request."""

    name = NAME
    CALLBACK = "/v1/request/callback/"

    def __init__(self, settings: ZadarmaSettings) -> None:
        self.settings = settings

    async def originate(self, *, extension: str, number: str) -> str:
        """Zadarma rings the PBX extension, then the number. Its answer carries no call id: the
        id returned here is Kith's own, and the call's notifications arrive under Zadarma's."""
        params = {"from": extension, "to": number.lstrip("+"), "format": "json"}
        auth = f"{self.settings.api_key}:" + api_signature(
            self.settings.api_secret, self.CALLBACK, params
        )
        url = self.settings.api_url.rstrip("/") + self.CALLBACK
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                response = await client.get(url, params=params, headers={"Authorization": auth})
        except httpx.HTTPError as exc:
            raise Conflict(f"Zadarma could not be reached: {type(exc).__name__}") from None
        answer = (
            response.json() if response.headers.get("content-type", "").find("json") >= 0 else {}
        )
        if response.status_code >= 400 or answer.get("status") != "success":
            raise InvalidInput(f"Zadarma refused the call (HTTP {response.status_code})")
        return f"callback-{new_id()}"  # the call service's PLACED_PREFIX
