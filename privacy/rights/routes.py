"""HTTP API of data subject rights under ``/api/privacy`` (role compliance, and admin): audit
log, export packages, erasure previews, rectification patches, restrictions, suppression and
retention runs. The same services as ``kith privacy ...``."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from kith.actor import Role
from kith.errors import NotFound
from kith.http.auth import CurrentActor, roles
from kith.privacy.rights import recipients
from kith.privacy.rights.audit import AuditEntryOut, AuditLog
from kith.privacy.rights.erasure import ErasureService
from kith.privacy.rights.export import ExportOut, ExportService
from kith.privacy.rights.rectification import RectificationService
from kith.privacy.requests.service import CertificateEntry, PlannedAction
from kith.privacy.rights.restriction import RestrictionOut, RestrictionService
from kith.privacy.rights.retention import RetentionReport, RetentionRunner
from kith.privacy.rights.suppression import SuppressionList
from kith.schemas import ContactPatch
from litestar import Controller, Response, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import File
from litestar.status_codes import HTTP_201_CREATED

COMPLIANCE = roles(Role.COMPLIANCE)


class RestrictIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ground: str


class LiftIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    notice: Annotated[str, msgspec.Meta(max_length=2000)]


class LiftOut(msgspec.Struct, kw_only=True):
    restriction: RestrictionOut
    recipients: list[CertificateEntry]


class RetentionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    dry_run: bool = True


class RectificationOut(msgspec.Struct, kw_only=True):
    request_id: uuid.UUID
    fields: list[str]


class SubjectRightsController(Controller):
    path = "/api/privacy"
    tags = ["privacy: subject rights"]

    @get("/audit/{contact_id:uuid}", opt=COMPLIANCE, summary="A contact's audit log")
    async def audit(
        self, state: State, contact_id: FromPath[uuid.UUID], limit: FromQuery[int] = 200
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
    async def package(self, state: State, request_id: FromPath[uuid.UUID]) -> File:
        found = await ExportService(state.kith).for_request(request_id)
        if found is None:
            raise NotFound(
                f"request {request_id} has no export package (it has not run, or the package "
                "was deleted after exports_kept_days)"
            )
        return File(
            path=found.path,
            filename=found.file_name,
            media_type="application/zip",
            headers={"Cache-Control": "no-store"},
        )

    @put(
        "/requests/{request_id:uuid}/rectification",
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
        fields = await RectificationService(state.kith).set_patch(request_id, data, actor)
        return RectificationOut(request_id=request_id, fields=fields)

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


SUBJECT_ROUTES = [SubjectRightsController]
