"""HTTP: the providers' signed webhooks (public, refused with 403 unless signed), the call
endpoints (agents), and the providers' status (admins). Thin: the call service does the work."""

from __future__ import annotations

import uuid
import zoneinfo
from typing import Annotated, Any
from urllib.parse import parse_qsl

from kith import Kith, NotFound, PermissionDenied, Role, get_logger
from kith.http import CurrentActor, answers, public, roles
from kith.plugins.telephony import mango, twilio, zadarma
from kith.plugins.telephony.provider_events import CallEvent
from kith.plugins.telephony.providers_registry import providers_of
from kith.plugins.telephony.recordings import RecordingService
from kith.plugins.telephony.schemas import CallOut, ProviderStatus, Recorded
from kith.plugins.telephony.services import CallService
from kith.plugins.telephony.settings import TelephonySettings
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

AGENTS = roles(Role.AGENT)
# Recordings are also played by compliance officers: they hand them over on access requests.
LISTENERS = roles(Role.AGENT, Role.COMPLIANCE)
ADMIN = roles()
# Signed webhooks: refused unsigned (403), absent while their provider is off (404).
SIGNED = {**public(), **answers(problems=[403, 404])}
Calls = NamedDependency[CallService]
log = get_logger("kith.plugins.telephony")
SKIPPED = "telephony.skipped_event_types"


def _service(state: State) -> CallService:
    return CallService(state.kith)


def _form(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def skipped(kith: Kith, provider: str, event_type: str) -> None:
    """An event Kith does not take: logged once per provider and type, then skipped."""
    seen: set[tuple[str, str]] = kith.state.setdefault(SKIPPED, set())
    if (provider, event_type) not in seen:
        seen.add((provider, event_type))
        log.info("telephony.event_skipped", provider=provider, event_type=event_type[:100])


async def _take(calls: CallService, events: list[CallEvent]) -> Recorded:
    new = 0
    for event in events:
        if await calls.record(event) is not None:
            new += 1
    return Recorded(events=len(events), new=new)


def _twilio_url(request: Request[Any, Any, Any], settings: TelephonySettings, kith: Kith) -> str:
    """The URL Twilio called, as it saw it: under the configured public address when Kith is
    behind a proxy."""
    base = settings.twilio.public_url or kith.settings.public_url
    if not base:
        return str(request.url)
    query = request.scope.get("query_string", b"").decode()
    return base.rstrip("/") + request.url.path + (f"?{query}" if query else "")


class TelephonyWebhooks(Controller):
    """What the providers call. Nothing is stored unless the request is signed."""

    path = "/api/telephony"
    tags = ["telephony"]
    dependencies = {"calls": Provide(_service, sync_to_thread=False)}

    async def _twilio(self, request: Request[Any, Any, Any], calls: CallService) -> dict[str, str]:
        settings = calls.settings
        if not settings.twilio.enabled:
            raise NotFound("the Twilio webhook is not enabled")
        body = await request.body()
        params = _form(body) if b"=" in body and not body.lstrip().startswith(b"{") else []
        url = _twilio_url(request, settings, calls.kith)
        given = request.headers.get(twilio.SIGNATURE_HEADER)
        if not twilio.verify(settings.twilio.auth_token, url, params, body, given):
            raise PermissionDenied("the X-Twilio-Signature is missing or wrong")
        return dict(params)

    @post("/twilio/status", opt=SIGNED, status_code=HTTP_200_OK, summary="Twilio status callback")
    async def twilio_status(self, request: Request[Any, Any, Any], calls: Calls) -> Recorded:
        form = await self._twilio(request, calls)
        event = twilio.status_event(form)
        if event is None:
            skipped(calls.kith, twilio.NAME, f"status:{form.get('CallStatus', '')}")
            return Recorded(events=0, new=0)
        return await _take(calls, [event])

    @post(
        "/twilio/recording",
        opt=SIGNED,
        status_code=HTTP_200_OK,
        summary="Twilio recording status callback",
    )
    async def twilio_recording(self, request: Request[Any, Any, Any], calls: Calls) -> Recorded:
        form = await self._twilio(request, calls)
        event = twilio.recording_event(form)
        if event is None:
            skipped(calls.kith, twilio.NAME, f"recording:{form.get('RecordingStatus', '')}")
            return Recorded(events=0, new=0)
        return await _take(calls, [event])

    @get(
        "/zadarma",
        opt={**public(), **answers("text/plain", problems=[404])},
        summary="Zadarma's check of the notification URL (zd_echo)",
    )
    async def zadarma_echo(
        self,
        calls: Calls,
        zd_echo: Annotated[str, QueryParameter(description="text to send back")] = "",
    ) -> Response[str]:
        if not calls.settings.zadarma.enabled:
            raise NotFound("the Zadarma webhook is not enabled")
        return Response(zd_echo[:200], media_type="text/plain")

    @post("/zadarma", opt=SIGNED, status_code=HTTP_200_OK, summary="Zadarma PBX notification")
    async def zadarma_notify(self, request: Request[Any, Any, Any], calls: Calls) -> Recorded:
        settings = calls.settings.zadarma
        if not settings.enabled:
            raise NotFound("the Zadarma webhook is not enabled")
        form = dict(_form(await request.body()))
        name = form.get("event", "")
        if name not in zadarma.SIGNED_FIELDS:
            # Not a call event (SMS, IVR...): no signature scheme of ours covers it, so it is
            # skipped unread.
            skipped(calls.kith, zadarma.NAME, name or "(none)")
            return Recorded(events=0, new=0)
        if not zadarma.verify(settings.api_secret, form, request.headers.get("signature")):
            raise PermissionDenied("the Signature header is missing or wrong")
        zone = zoneinfo.ZoneInfo(calls.settings.timezone or calls.kith.settings.timezone)
        event = zadarma.event_of(form, zone)
        return await _take(calls, [event] if event else [])

    async def _mango(self, request: Request[Any, Any, Any], calls: CallService) -> dict[str, Any]:
        if not calls.settings.mango.enabled:
            raise NotFound("the Mango Office webhook is not enabled")
        data = mango.verify(calls.settings.mango, dict(_form(await request.body())))
        if data is None:
            raise PermissionDenied("the sign is missing or wrong")
        return data

    @post("/mango/events/call", opt=SIGNED, status_code=HTTP_200_OK, summary="Mango call event")
    async def mango_call(self, request: Request[Any, Any, Any], calls: Calls) -> Recorded:
        data = await self._mango(request, calls)
        event = mango.call_event(data)
        if event is None:
            skipped(calls.kith, mango.NAME, f"call:{data.get('call_state', '')}")
            return Recorded(events=0, new=0)
        return await _take(calls, [event])

    @post(
        "/mango/events/summary",
        opt=SIGNED,
        status_code=HTTP_200_OK,
        summary="Mango call summary",
    )
    async def mango_summary(self, request: Request[Any, Any, Any], calls: Calls) -> Recorded:
        return await _take(calls, mango.summary_events(await self._mango(request, calls)))

    @post(
        "/mango/events/record/added",
        opt=SIGNED,
        status_code=HTTP_200_OK,
        summary="Mango recording ready",
    )
    async def mango_recording(self, request: Request[Any, Any, Any], calls: Calls) -> Recorded:
        event = mango.recording_event(await self._mango(request, calls))
        return await _take(calls, [event] if event else [])

    @get("/status", opt=ADMIN, summary="Per provider: enabled, events, the last one, its lag")
    async def status(self, calls: Calls) -> list[ProviderStatus]:
        return await calls.status(providers_of(calls.kith))

    @get("/calls/{call_id:uuid}", opt={**AGENTS, **answers(problems=[404])}, summary="One call")
    async def read(self, call_id: FromPath[uuid.UUID], calls: Calls) -> CallOut:
        return await calls.get(call_id)


class ClickToCall(Controller):
    path = "/api/contacts"
    tags = ["telephony"]
    dependencies = {"calls": Provide(_service, sync_to_thread=False)}

    @post(
        "/{contact_id:uuid}/call",
        opt={**AGENTS, **answers(problems=[404, 409, 422])},
        status_code=HTTP_201_CREATED,
        summary="Call the contact from your extension through the telephony provider",
    )
    async def call(
        self, contact_id: FromPath[uuid.UUID], calls: Calls, actor: CurrentActor
    ) -> CallOut:
        return await calls.call(contact_id, actor, providers_of(calls.kith))


class CallRecordings(Controller):
    path = "/api/calls"
    tags = ["telephony"]

    @get(
        "/{call_id:uuid}/recording",
        opt={**LISTENERS, **answers("audio/mpeg", problems=[404, 410])},
        summary="Play a call's recording (stored in Kith, decrypted as it streams)",
    )
    async def recording(
        self, call_id: FromPath[uuid.UUID], state: State, actor: CurrentActor
    ) -> Stream:
        media, size, audio = await RecordingService(state.kith).open(call_id, actor)
        return Stream(
            audio,
            media_type=media,
            headers={"Content-Length": str(size), "Cache-Control": "private, no-store"},
        )


ROUTES = (TelephonyWebhooks, ClickToCall, CallRecordings)


@get(
    "/calls/{call_id:uuid}/recording",
    opt=LISTENERS,
    name="telephony.recording_page",
    summary="A call's recording for the contact card's player",
)
async def recording_page(call_id: FromPath[uuid.UUID], state: State, actor: CurrentActor) -> Stream:
    """The same stream as the API's, signed in by the web UI's session."""
    media, size, audio = await RecordingService(state.kith).open(call_id, actor, channel="web")
    return Stream(
        audio,
        media_type=media,
        headers={"Content-Length": str(size), "Cache-Control": "private, no-store"},
    )


PAGES = (recording_page,)
