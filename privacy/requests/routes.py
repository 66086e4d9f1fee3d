"""HTTP API of data subject requests under ``/api/privacy``: requests and their certificates.
Role: compliance (and admin); the public key that verifies certificates is public."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from kith import ContactPatch, Role
from kith.http import CurrentActor, public, roles
from kith.privacy.requests.certificates import CertificateService, SignedCertificate, Verification
from kith.privacy.requests.service import (
    RequestCreate,
    RequestService,
    SubjectRequestDetail,
    SubjectRequestOut,
)
from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

COMPLIANCE = roles(Role.COMPLIANCE)


class VerifyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    method: Annotated[str, msgspec.Meta(max_length=2000)]


class ExtendIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    months: Annotated[int, msgspec.Meta(ge=1, le=2)]
    reason: Annotated[str, msgspec.Meta(max_length=2000)]


class ReasonIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=2000)]


class RectificationOut(msgspec.Struct, kw_only=True):
    request_id: uuid.UUID
    fields: list[str]


class CertificateCheckIn(msgspec.Struct, kw_only=True):
    certificate: dict[str, Any]
    signature: str
    algorithm: str = "Ed25519"


def _requests(state: State) -> RequestService:
    return RequestService(state.kith)


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

    @put(
        "/{request_id:uuid}/rectification",
        opt=COMPLIANCE,
        summary="Set the corrections of a rectification request (stored encrypted)",
    )
    async def rectification(
        self,
        state: State,
        request_id: FromPath[uuid.UUID],
        data: JSONBody[ContactPatch],
        actor: CurrentActor,
    ) -> RectificationOut:
        fields = await _requests(state).set_corrections(request_id, data, actor)
        return RectificationOut(request_id=request_id, fields=fields)

    @get(
        "/{request_id:uuid}/certificate",
        opt=COMPLIANCE,
        summary="The signed certificate of a finished request",
    )
    async def certificate(self, state: State, request_id: FromPath[uuid.UUID]) -> SignedCertificate:
        return await CertificateService(state.kith).for_request(request_id)


class CertificateController(Controller):
    path = "/api/privacy"
    tags = ["privacy: records"]

    @post(
        "/certificates/verify",
        opt=COMPLIANCE,
        status_code=HTTP_200_OK,
        summary="Check a certificate against this installation's public key",
    )
    async def verify_certificate(
        self, state: State, request: Request[Any, Any, Any], data: JSONBody[CertificateCheckIn]
    ) -> Verification:
        # The body as sent, not ``data``: parsing keeps one of two members of the same name,
        # and a certificate that repeats one must be refused.
        return CertificateService(state.kith).verify(await request.body())


@get(
    "/api/privacy/public-key",
    opt=public(),
    summary="The Ed25519 public key that verifies certificates (PEM)",
    tags=["privacy: records"],
    media_type="application/x-pem-file",
)
async def public_key(state: State) -> str:
    return CertificateService(state.kith).public_key_pem()


REQUEST_ROUTES: list[Any] = [RequestController, CertificateController, public_key]
