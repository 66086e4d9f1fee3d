"""HTTP API of the privacy workflow under ``/api/privacy``: consent, notices, subject requests,
certificates, the record of processing and retention rules. Role: compliance (and admin).

The one-click withdrawal endpoint is public: the signed token in its URL is the credential.
A GET only shows what the link will do (mail scanners follow links), a POST does it.
"""

from __future__ import annotations

import html
import uuid
from typing import Annotated, Any, Literal

import msgspec
from kith.actor import Role
from kith.errors import KithError, NotFound
from kith.http.auth import CurrentActor, public, roles
from kith.privacy.rights import registry
from kith.privacy.requests.certificates import CertificateService, SignedCertificate, Verification
from kith.privacy.rights.consent import (
    ConsentEventOut,
    ConsentRecord,
    ConsentService,
    ConsentState,
    NoticeOut,
    WithdrawLink,
)
from kith.privacy.requests.service import (
    RequestCreate,
    RequestService,
    SubjectRequestDetail,
    SubjectRequestOut,
)
from kith.privacy.rights.retention_rules import RetentionRule
from kith.privacy.rights.ropa import build_record, to_markdown
from kith.privacy.requests.settings import workflow_settings
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

COMPLIANCE = roles(Role.COMPLIANCE)


class NoticeIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    purpose: str
    text: Annotated[str, msgspec.Meta(max_length=100_000)]


class WithdrawIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    purpose: str
    channel: str = "api"


class LinkIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    purpose: str
    valid_days: int | None = None


class ConsentOverview(msgspec.Struct, kw_only=True):
    contact_id: uuid.UUID
    current: list[ConsentState]
    events: list[ConsentEventOut]


class VerifyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    method: Annotated[str, msgspec.Meta(max_length=2000)]


class ExtendIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    months: int
    reason: Annotated[str, msgspec.Meta(max_length=2000)]


class ReasonIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=2000)]


class PurposeOut(msgspec.Struct, kw_only=True):
    name: str
    description: str
    lawful_basis: str
    declared_by: str
    has_notice_in_settings: bool


class CertificateCheckIn(msgspec.Struct, kw_only=True):
    certificate: dict[str, Any]
    signature: str
    algorithm: str = "Ed25519"


def _consent(state: State) -> ConsentService:
    return ConsentService(state.kith)


def _requests(state: State) -> RequestService:
    return RequestService(state.kith)


class ConsentController(Controller):
    path = "/api/privacy"
    tags = ["privacy: consent"]

    @get("/purposes", opt=COMPLIANCE, summary="Declared purposes and their lawful bases")
    async def purposes(self, state: State) -> list[PurposeOut]:
        return [
            PurposeOut(
                name=p.name,
                description=p.description,
                lawful_basis=p.lawful_basis,
                declared_by=p.declared_by,
                has_notice_in_settings=p.notice is not None,
            )
            for p in registry.purposes(state.kith).values()
        ]

    @get("/notices", opt=COMPLIANCE, summary="Notice versions, optionally of one purpose")
    async def notices(self, state: State, purpose: FromQuery[str | None] = None) -> list[NoticeOut]:
        return await _consent(state).notices(purpose)

    @post("/notices", opt=COMPLIANCE, summary="Publish a new notice version for a purpose")
    async def publish_notice(
        self, state: State, data: JSONBody[NoticeIn], actor: CurrentActor
    ) -> NoticeOut:
        return await _consent(state).publish_notice(data.purpose, data.text, actor)

    @get("/consents/{contact_id:uuid}", opt=COMPLIANCE, summary="A contact's consent")
    async def overview(self, state: State, contact_id: FromPath[uuid.UUID]) -> ConsentOverview:
        service = _consent(state)
        return ConsentOverview(
            contact_id=contact_id,
            current=await service.current(contact_id),
            events=await service.history(contact_id),
        )

    @post(
        "/consents/{contact_id:uuid}",
        opt=COMPLIANCE,
        summary="Record consent given or withdrawn (append-only)",
    )
    async def record(
        self,
        state: State,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[ConsentRecord],
        actor: CurrentActor,
    ) -> Response[ConsentEventOut]:
        event = await _consent(state).record(contact_id, data, actor)
        return Response(event, status_code=HTTP_201_CREATED)

    @post(
        "/consents/{contact_id:uuid}/withdraw",
        opt=COMPLIANCE,
        summary="Withdraw consent (or object) for one purpose",
    )
    async def withdraw(
        self,
        state: State,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[WithdrawIn],
        actor: CurrentActor,
    ) -> Response[ConsentEventOut]:
        event = await _consent(state).withdraw(
            contact_id, data.purpose, channel=data.channel, actor=actor
        )
        return Response(event, status_code=HTTP_201_CREATED)

    @post(
        "/consents/{contact_id:uuid}/withdraw-link",
        opt=COMPLIANCE,
        status_code=HTTP_200_OK,
        summary="A signed one-click withdrawal link for emails and forms",
    )
    async def withdraw_link(
        self, state: State, contact_id: FromPath[uuid.UUID], data: JSONBody[LinkIn]
    ) -> WithdrawLink:
        service = _consent(state)
        await service.history(contact_id)  # 404 for an unknown contact
        return service.withdraw_link(contact_id, data.purpose, data.valid_days)


def _page(title: str, body: str, status: int, form_action: str | None = None) -> Response[str]:
    button = (
        f'<form method="post" action="{html.escape(form_action)}">'
        '<button type="submit">Withdraw my consent</button></form>'
        if form_action
        else ""
    )
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title></head><body><main>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(body)}</p>{button}</main></body></html>"
    )
    return Response(
        page,
        status_code=status,
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept and "html" not in accept


class WithdrawOutcome(msgspec.Struct, kw_only=True):
    purpose: str | None
    status: Literal["withdrawn", "already_withdrawn", "not_held", "confirm"]
    message: str


def _answer(
    request: Request[Any, Any, Any], outcome: WithdrawOutcome, status: int, action: str | None
) -> Response[Any]:
    if _wants_json(request):
        return Response(outcome, status_code=status, headers={"Cache-Control": "no-store"})
    title = "Withdraw consent" if outcome.status == "confirm" else "Consent withdrawn"
    return _page(title, outcome.message, status, action)


def _error(request: Request[Any, Any, Any], exc: KithError) -> Response[Any]:
    if _wants_json(request):
        return Response(
            {"title": exc.title, "status": exc.status_code, "detail": exc.detail},
            status_code=exc.status_code,
            media_type="application/problem+json",
        )
    return _page(exc.title, exc.detail, exc.status_code)


@get(
    "/api/privacy/consent/withdraw",
    opt=public(),
    summary="Show what a one-click withdrawal link will do",
    tags=["privacy: consent"],
)
async def withdraw_link_page(
    request: Request[Any, Any, Any],
    state: State,
    token: Annotated[str, QueryParameter(max_length=1000)],
) -> Response[Any]:
    service = _consent(state)
    try:
        _, purpose = service.read_link(token)
    except KithError as exc:
        return _error(request, exc)
    info = registry.purposes(state.kith).get(purpose)
    what = info.description if info else purpose
    outcome = WithdrawOutcome(
        purpose=purpose,
        status="confirm",
        message=f"Press the button to withdraw your consent for: {what}.",
    )
    return _answer(request, outcome, HTTP_200_OK, request.url.path + "?token=" + token)


@post(
    "/api/privacy/consent/withdraw",
    opt=public(),
    status_code=HTTP_200_OK,
    summary="Withdraw consent through a signed one-click link (RFC 8058 compatible)",
    tags=["privacy: consent"],
)
async def withdraw_by_link(
    request: Request[Any, Any, Any],
    state: State,
    token: Annotated[str, QueryParameter(max_length=1000)],
) -> Response[Any]:
    service = _consent(state)
    try:
        event, purpose = await service.withdraw_by_link(token)
    except NotFound:
        # The contact was erased meanwhile: nothing is held, so nothing is processed.
        outcome = WithdrawOutcome(
            purpose=None, status="not_held", message="We no longer hold any data about you."
        )
        return _answer(request, outcome, HTTP_200_OK, None)
    except KithError as exc:
        return _error(request, exc)
    info = registry.purposes(state.kith).get(purpose)
    what = info.description if info else purpose
    outcome = WithdrawOutcome(
        purpose=purpose,
        status="withdrawn" if event else "already_withdrawn",
        message=f"Your consent for {what} is withdrawn. Thank you for letting us know.",
    )
    return _answer(request, outcome, HTTP_200_OK, None)


class RequestController(Controller):
    path = "/api/privacy/requests"
    tags = ["privacy: subject requests"]

    @post("/", opt=COMPLIANCE, summary="Record a data subject request as received")
    async def create(
        self, state: State, data: JSONBody[RequestCreate], actor: CurrentActor
    ) -> Response[SubjectRequestOut]:
        created = await _requests(state).create(data, actor)
        return Response(
            created,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/privacy/requests/{created.id}"},
        )

    @get("/", opt=COMPLIANCE, summary="Requests by due date, overdue first")
    async def list_requests(
        self,
        state: State,
        include_closed: FromQuery[bool] = False,
        # "state" is litestar's reserved name for the app state; the query key stays "state".
        request_state: Annotated[str | None, QueryParameter(name="state")] = None,
        kind: FromQuery[str | None] = None,
        contact_id: FromQuery[uuid.UUID | None] = None,
    ) -> list[SubjectRequestOut]:
        return await _requests(state).list(
            include_closed=include_closed, state=request_state, kind=kind, contact_id=contact_id
        )

    @get("/{request_id:uuid}", opt=COMPLIANCE, summary="A request with its history")
    async def read(self, state: State, request_id: FromPath[uuid.UUID]) -> SubjectRequestDetail:
        return await _requests(state).detail(request_id)

    @post(
        "/{request_id:uuid}/verify",
        opt=COMPLIANCE,
        status_code=HTTP_200_OK,
        summary="Record the identity check",
    )
    async def verify(
        self,
        state: State,
        request_id: FromPath[uuid.UUID],
        data: JSONBody[VerifyIn],
        actor: CurrentActor,
    ) -> SubjectRequestOut:
        return await _requests(state).verify(request_id, data.method, actor)

    @post(
        "/{request_id:uuid}/extend",
        opt=COMPLIANCE,
        status_code=HTTP_200_OK,
        summary="Extend the deadline by 1 or 2 months, with the reason",
    )
    async def extend(
        self,
        state: State,
        request_id: FromPath[uuid.UUID],
        data: JSONBody[ExtendIn],
        actor: CurrentActor,
    ) -> SubjectRequestOut:
        return await _requests(state).extend(request_id, data.months, data.reason, actor)

    @post(
        "/{request_id:uuid}/preview",
        opt=COMPLIANCE,
        status_code=HTTP_200_OK,
        summary="Preview everything the request will touch",
    )
    async def preview(
        self, state: State, request_id: FromPath[uuid.UUID], actor: CurrentActor
    ) -> SubjectRequestOut:
        return await _requests(state).preview(request_id, actor)

    @post(
        "/{request_id:uuid}/approve",
        opt=COMPLIANCE,
        status_code=HTTP_200_OK,
        summary="Approve a previewed request (four-eyes when privacy.four_eyes is on)",
    )
    async def approve(
        self, state: State, request_id: FromPath[uuid.UUID], actor: CurrentActor
    ) -> SubjectRequestOut:
        return await _requests(state).approve(request_id, actor)

    @post(
        "/{request_id:uuid}/run",
        opt=COMPLIANCE,
        status_code=HTTP_200_OK,
        summary="Carry out an approved request, or resume a running one",
    )
    async def run(
        self, state: State, request_id: FromPath[uuid.UUID], actor: CurrentActor
    ) -> SubjectRequestOut:
        return await _requests(state).run(request_id, actor)

    @post(
        "/{request_id:uuid}/reject",
        opt=COMPLIANCE,
        status_code=HTTP_200_OK,
        summary="Close a request without carrying it out, with the reason",
    )
    async def reject(
        self,
        state: State,
        request_id: FromPath[uuid.UUID],
        data: JSONBody[ReasonIn],
        actor: CurrentActor,
    ) -> SubjectRequestOut:
        return await _requests(state).reject(request_id, data.reason, actor)

    @get(
        "/{request_id:uuid}/certificate",
        opt=COMPLIANCE,
        summary="The signed certificate of a finished request",
    )
    async def certificate(self, state: State, request_id: FromPath[uuid.UUID]) -> SignedCertificate:
        return await CertificateService(state.kith).for_request(request_id)


class RecordsController(Controller):
    path = "/api/privacy"
    tags = ["privacy: records"]

    @get("/ropa", opt=COMPLIANCE, summary="The record of processing (Art. 30), JSON or Markdown")
    async def ropa(
        self, state: State, format: FromQuery[Literal["json", "md"]] = "json"
    ) -> Response[Any]:
        record = build_record(state.kith)
        if format == "md":
            return Response(to_markdown(record), media_type="text/markdown; charset=utf-8")
        return Response(record)

    @get("/retention", opt=COMPLIANCE, summary="Retention rules from settings")
    async def retention(self, state: State) -> list[RetentionRule]:
        return list(workflow_settings(state.kith.settings).retention)

    @post(
        "/certificates/verify",
        opt=COMPLIANCE,
        status_code=HTTP_200_OK,
        summary="Check a certificate against this installation's public key",
    )
    async def verify_certificate(
        self, state: State, data: JSONBody[CertificateCheckIn]
    ) -> Verification:
        return CertificateService(state.kith).verify(msgspec.json.encode(data))


@get(
    "/api/privacy/public-key",
    opt=public(),
    summary="The Ed25519 public key that verifies certificates (PEM)",
    tags=["privacy: records"],
    media_type="application/x-pem-file",
)
async def public_key(state: State) -> str:
    return CertificateService(state.kith).public_key_pem()


WORKFLOW_ROUTES: list[Any] = [
    ConsentController,
    RequestController,
    RecordsController,
    withdraw_link_page,
    withdraw_by_link,
    public_key,
]
