"""Twilio: voice status and recording callbacks in, the Calls API out.

Twilio signs each callback with ``X-Twilio-Signature``: base64 of HMAC-SHA1 under the account's
auth token over the full URL it called followed by every POST parameter, sorted by name, as
name + value. A JSON body is signed differently: the URL carries ``bodySHA256`` (the hex SHA-256
of the body) and the signature covers the URL alone. Twilio may sign with or without the
default port, so both forms are tried.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import httpx
from kith import Conflict, InvalidInput, utcnow
from kith.plugins.telephony.provider_events import CallEvent, CallOutcome
from kith.plugins.telephony.settings import TwilioSettings

NAME = "twilio"
SIGNATURE_HEADER = "x-twilio-signature"
TIMEOUT_S = 10.0

# Twilio's CallStatus -> the event kind and, for an end, the outcome it says.
_STATUS: dict[str, tuple[str, CallOutcome | None]] = {
    "queued": ("ringing", None),
    "initiated": ("ringing", None),
    "ringing": ("ringing", None),
    "in-progress": ("answered", None),
    "completed": ("ended", None),
    "busy": ("ended", "busy"),
    "no-answer": ("ended", "missed"),
    "failed": ("ended", "failed"),
    "canceled": ("ended", "cancelled"),
}
_RECORDING_SID = re.compile(r"/Recordings/(RE[0-9a-fA-F]{32})")


def signature(auth_token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """Twilio's signature of a request to ``url`` with form ``params`` (repeated names
    allowed: each name's distinct values are taken in sorted order)."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    text = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_forms(url: str) -> list[str]:
    """The URL as given, with the scheme's default port written out, and without a port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    default = 443 if parts.scheme == "https" else 80
    bare = urlunsplit(parts._replace(netloc=host))
    with_port = urlunsplit(parts._replace(netloc=f"{host}:{parts.port or default}"))
    return list(dict.fromkeys([url, bare, with_port]))


def verify(
    auth_token: str, url: str, params: Sequence[tuple[str, str]], body: bytes, given: str | None
) -> bool:
    """Whether ``given`` is Twilio's signature of this request. Constant-time comparisons."""
    if not given or not auth_token:
        return False
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    if "bodySHA256" in query:
        expected_body = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(expected_body.encode(), query["bodySHA256"].lower().encode()):
            return False
        params = ()
    ok = False
    for form in _port_forms(url):
        # Every form is computed and compared, so timing does not say which one matched.
        ok |= hmac.compare_digest(signature(auth_token, form, params).encode(), given.encode())
    return ok


def _time(value: str | None) -> dt.datetime:
    if value:
        try:
            return parsedate_to_datetime(value).astimezone(dt.UTC)
        except (TypeError, ValueError):
            pass
    return utcnow()


def _direction(value: str) -> str:
    return "inbound" if value == "inbound" else "outbound"


def status_event(form: dict[str, str]) -> CallEvent | None:
    """The call event of a voice status callback; None for a status Kith does not know."""
    status = form.get("CallStatus", "")
    known = _STATUS.get(status)
    call_id = form.get("ParentCallSid") or form.get("CallSid", "")
    if known is None or not call_id:
        return None
    kind, outcome = known
    direction = _direction(form.get("Direction", "inbound"))
    to = form.get("To", "")
    talk = form.get("CallDuration", "")
    return CallEvent(
        provider=NAME,
        call_id=call_id,
        key=f"{form.get('CallSid', '')}:{status}",
        kind=kind,  # type: ignore[arg-type]
        at=_time(form.get("Timestamp")),
        direction=direction,  # type: ignore[arg-type]
        from_number=form.get("From") or None,
        to_number=to or None,
        # A browser or SIP client of the office answers as client:<identity>.
        extension=to.removeprefix("client:") if to.startswith("client:") else None,
        outcome=outcome,
        detail={"talk_seconds": talk} if talk.isdigit() else {},
    )


def recording_event(form: dict[str, str]) -> CallEvent | None:
    """The call event of a recording status callback (a finished recording only)."""
    if form.get("RecordingStatus", "completed") != "completed":
        return None
    call_id, url = form.get("CallSid", ""), form.get("RecordingUrl", "")
    if not call_id or not url:
        return None
    seconds = form.get("RecordingDuration", "")
    return CallEvent(
        provider=NAME,
        call_id=call_id,
        key=f"{call_id}:recording:{form.get('RecordingSid', url)}",
        kind="recording_ready",
        at=utcnow(),
        recording_ref=url,
        recording_seconds=int(seconds) if seconds.isdigit() else None,
    )


class TwilioProvider:
    """Click-to-call and recording deletion through Twilio's REST API."""

    name = NAME

    def __init__(self, settings: TwilioSettings) -> None:
        self.settings = settings

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.settings.api_url.rstrip("/"),
            auth=(self.settings.account_sid, self.settings.auth_token),
            timeout=TIMEOUT_S,
        )

    async def originate(self, *, extension: str, number: str) -> str:
        """Ring the agent (``extension``: their phone, ``client:`` or ``sip:`` address), then
        dial ``number`` from the configured caller id."""
        caller = escape(self.settings.caller_id)
        twiml = f'<Response><Dial callerId="{caller}">{escape(number)}</Dial></Response>'
        path = f"/2010-04-01/Accounts/{self.settings.account_sid}/Calls.json"
        form = {"To": extension, "From": self.settings.caller_id, "Twiml": twiml}
        try:
            async with self._client() as client:
                response = await client.post(path, data=form)
        except httpx.HTTPError as exc:
            raise Conflict(f"Twilio could not be reached: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise InvalidInput(f"Twilio refused the call (HTTP {response.status_code})")
        sid = response.json().get("sid")
        if not isinstance(sid, str) or not sid:
            raise Conflict("Twilio answered without a call sid")
        return sid

    async def delete_recording(self, ref: str) -> bool:
        """Delete one recording by its URL; True when Twilio no longer has it."""
        found = _RECORDING_SID.search(ref)
        if found is None:
            return False
        path = f"/2010-04-01/Accounts/{self.settings.account_sid}/Recordings/{found[1]}.json"
        async with self._client() as client:
            response = await client.delete(path)
        # 404: already gone, which is what was asked.
        return response.status_code in (200, 204, 404)
