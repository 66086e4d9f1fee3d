"""HTTP API of data subject rights under ``/api/privacy`` (role compliance, and admin): purposes,
notices and consent, the audit log, export packages, erasure previews, rectification patches,
restrictions, suppression, retention and the record of processing. The same services as
``kith privacy ...``.

The one-click withdrawal endpoint is public: the signed token in its URL is the credential.
A GET only shows what the link will do (mail scanners follow links), a POST does it.
"""

from __future__ import annotations

import html
import uuid
from typing import Annotated, Any, Literal

import msgspec
from kith import KithError, NotFound, Role
from kith.http import CurrentActor, answers, current_actor, public, roles
from kith.privacy.rights import recipients, registry
from kith.privacy.rights.audit import AuditEntryOut, AuditLog
from kith.privacy.rights.consent import (
    ConsentEventOut,
    ConsentRecord,
    ConsentService,
    ConsentState,
    NoticeOut,
    WithdrawLink,
)
from kith.privacy.rights.erasure import ErasureService
from kith.privacy.rights.export import ExportOut, ExportService, PackageDownload
from kith.privacy.rights.outcomes import CertificateEntry, PlannedAction
from kith.privacy.rights.restriction import RestrictionOut, RestrictionService
from kith.privacy.rights.retention import RetentionReport, RetentionRunner
from kith.privacy.rights.retention_rules import RetentionRule
from kith.privacy.rights.ropa import build_record, custom_fields, to_markdown
from kith.privacy.rights.settings import rights_settings
from kith.privacy.rights.suppression import SuppressionList
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

COMPLIANCE = roles(Role.COMPLIANCE)


def package_stream(download: PackageDownload) -> Stream:
    """An access package as a ZIP download, kept by no cache."""
    return Stream(
        download.chunks,
        media_type="application/zip",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{download.file_name}"',
            "Content-Length": str(download.size),
        },
    )


class RestrictIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ground: str


class LiftIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    notice: Annotated[str, msgspec.Meta(max_length=2000)]


class LiftOut(msgspec.Struct, kw_only=True):
    restriction: RestrictionOut
    recipients: list[CertificateEntry]


class RetentionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    dry_run: bool = True


class NoticeIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    purpose: str
    text: Annotated[str, msgspec.Meta(max_length=100_000)]


class WithdrawIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    purpose: str
    channel: str = "api"


class LinkIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    purpose: str
    valid_days: Annotated[int, msgspec.Meta(ge=1, le=3660)] | None = None


class ConsentOverview(msgspec.Struct, kw_only=True):
    contact_id: uuid.UUID
    current: list[ConsentState]
    events: list[ConsentEventOut]


class PurposeOut(msgspec.Struct, kw_only=True):
    name: str
    description: str
    lawful_basis: str
    declared_by: str
    has_notice_in_settings: bool


def _consent(state: State) -> ConsentService:
    return ConsentService(state.kith)


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
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[ConsentRecord],
        request: Request[Any, Any, Any],
    ) -> Response[ConsentEventOut]:
        # Every web form's consent comes here: no dependency to resolve, as core's writes.
        event = await _consent(request.app.state).record(contact_id, data, current_actor(request))
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
        self,
        state: State,
        request: Request[Any, Any, Any],
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[LinkIn],
    ) -> WithdrawLink:
        service = _consent(state)
        await service.history(contact_id)  # 404 for an unknown contact
        return service.withdraw_link(
            contact_id, data.purpose, data.valid_days, base=str(request.base_url)
        )


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
        media_type=MediaType.HTML,
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
    # A page the person opens from an email, or JSON for a client that asks for it.
    opt={**public(), **answers("text/html", problems=[410])},
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
    # A page the person opens from an email, or JSON for a client that asks for it.
    opt={**public(), **answers("text/html", problems=[410])},
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


class RecordsController(Controller):
    path = "/api/privacy"
    tags = ["privacy: records"]

    @get(
        "/ropa",
        opt={**COMPLIANCE, **answers("text/markdown")},
        summary="The record of processing (Art. 30), JSON or Markdown",
    )
    async def ropa(
        self, state: State, format: FromQuery[Literal["json", "md"]] = "json"
    ) -> Response[Any]:
        record = build_record(state.kith, await custom_fields(state.kith))
        if format == "md":
            return Response(to_markdown(record), media_type="text/markdown")
        return Response(record)

    @get("/retention", opt=COMPLIANCE, summary="Retention rules from settings")
    async def retention(self, state: State) -> list[RetentionRule]:
        return rights_settings(state.kith.settings).retention_rules()


class SubjectRightsController(Controller):
    path = "/api/privacy"
    tags = ["privacy: subject rights"]

    @get("/audit/{contact_id:uuid}", opt=COMPLIANCE, summary="A contact's audit log")
    async def audit(
        self,
        state: State,
        contact_id: FromPath[uuid.UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 200,
    ) -> list[AuditEntryOut]:
        return await AuditLog(state.kith).entries(contact_id, limit=limit)

    @post(
        "/exports/{contact_id:uuid}",
        opt=COMPLIANCE,
        summary="Write a contact's export package (outside a request)",
    )
    async def export(
        self, state: State, contact_id: FromPath[uuid.UUID], actor: CurrentActor
    ) -> Response[ExportOut]:
        package = await ExportService(state.kith).export(contact_id, actor=actor, channel="api")
        return Response(package, status_code=HTTP_201_CREATED)

    @get(
        "/requests/{request_id:uuid}/package",
        opt=COMPLIANCE,
        summary="Download the ZIP of a finished access or portability request",
        media_type="application/zip",
    )
    async def package(
        self, state: State, request_id: FromPath[uuid.UUID], actor: CurrentActor
    ) -> Stream:
        # Stored sealed: opened for this caller, streamed as the ZIP the person is given.
        return package_stream(
            await ExportService(state.kith).request_download(request_id, actor=actor, channel="api")
        )

    @get(
        "/erasure/{contact_id:uuid}/preview",
        opt=COMPLIANCE,
        summary="Every location an erasure would touch now, and how (changes nothing)",
    )
    async def erasure_preview(
        self, state: State, contact_id: FromPath[uuid.UUID]
    ) -> list[PlannedAction]:
        return await ErasureService(state.kith).preview(contact_id)

    @get("/restrictions/{contact_id:uuid}", opt=COMPLIANCE, summary="A contact's restrictions")
    async def restrictions(
        self, state: State, contact_id: FromPath[uuid.UUID]
    ) -> list[RestrictionOut]:
        return await RestrictionService(state.kith).history(contact_id)

    @post(
        "/restrictions/{contact_id:uuid}",
        opt=COMPLIANCE,
        summary="Restrict a contact now (Art. 18), outside a request",
    )
    async def restrict(
        self,
        state: State,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[RestrictIn],
        actor: CurrentActor,
    ) -> Response[RestrictionOut]:
        restriction, new = await RestrictionService(state.kith).restrict(
            contact_id, data.ground, actor
        )
        return Response(restriction, status_code=HTTP_201_CREATED if new else 200)

    @post(
        "/restrictions/{contact_id:uuid}/lift",
        opt=COMPLIANCE,
        summary="Lift a restriction with the notice given to the person (Art. 18(3))",
        status_code=200,
    )
    async def lift(
        self,
        state: State,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[LiftIn],
        actor: CurrentActor,
    ) -> LiftOut:
        lifted = await RestrictionService(state.kith).lift(contact_id, data.notice, actor)
        told = await recipients.notify(
            state.kith, contact_id, "restriction_lifted", key=f"lift:{lifted.id}"
        )
        return LiftOut(restriction=lifted, recipients=told)

    @get("/suppression", opt=COMPLIANCE, summary="Suppression list entries by reason")
    async def suppression(self, state: State) -> dict[str, int]:
        return await SuppressionList(state.kith).count()

    @post(
        "/retention/run",
        opt=COMPLIANCE,
        summary="Apply the retention rules now (dry run by default)",
        status_code=200,
    )
    async def retention_run(
        self, state: State, data: JSONBody[RetentionIn], actor: CurrentActor
    ) -> RetentionReport:
        return await RetentionRunner(state.kith).run(
            dry_run=data.dry_run, actor=actor, channel="api"
        )


RIGHTS_ROUTES: list[Any] = [
    ConsentController,
    SubjectRightsController,
    RecordsController,
    withdraw_link_page,
    withdraw_by_link,
]
