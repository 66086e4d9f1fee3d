"""How each type of request is carried out: through the rights plugin's services.

An executor previews what a request will touch and carries it out, saying what was done where
(this goes into the certificate). Both may run again for the same request (a refreshed
preview, a resumed run), so both are idempotent.
"""

from __future__ import annotations

import contextvars
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from kith import Actor, Conflict, ContactPatch, ContactService, InvalidInput, Kith, utcnow
from kith.privacy.requests.tables import SubjectRequest
from kith.privacy.rights import recipients as recipient_notices
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.erasure import SOURCE_CORE, ErasureService
from kith.privacy.rights.export import SOURCE, ExportService
from kith.privacy.rights.outcomes import CertificateEntry, PlannedAction
from kith.privacy.rights.rectification import RectificationService, fields_of
from kith.privacy.rights.restriction import GROUNDS, RestrictionService, request_context

if TYPE_CHECKING:
    from kith.privacy.requests.service import SubjectRequestOut

# The channel what a request does is audited under.
CHANNEL = "request"

# The request an access package is being written for: the package lists it as being answered
# (by this very package), not as running.
ANSWERING: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar(
    "kith_privacy_answering", default=None
)


class RequestJob:
    """What an executor works on: the request, the installation, and a checkpoint it can
    save so that an interrupted run resumes where it stopped."""

    def __init__(self, kith: Kith, request: SubjectRequestOut, actor: Actor) -> None:
        self.kith = kith
        self.request = request
        self.actor = actor
        self.progress: dict[str, Any] = dict(request.progress)

    @property
    def contact_id(self) -> uuid.UUID | None:
        return self.request.contact_id

    async def checkpoint(self, **progress: Any) -> None:
        """Store progress (JSON values) now, in its own transaction."""
        self.progress.update(progress)
        await SubjectRequest.update(
            {SubjectRequest.progress: self.progress, SubjectRequest.updated_at: utcnow()}
        ).where(SubjectRequest.id == self.request.id)


class RequestExecutor(Protocol):
    """Does one type of request. Both methods may be called again for the same request (a
    refreshed preview, a resumed run), so both must be idempotent."""

    async def preview(self, job: RequestJob) -> list[PlannedAction]:
        """Everything the request will touch, without changing anything."""
        ...

    async def execute(self, job: RequestJob) -> list[CertificateEntry]:
        """Do it, and say what was done where (this goes into the certificate)."""
        ...


class AccessExecutor:
    """The request workflow's executor for access and portability requests: one package."""

    async def preview(self, job: RequestJob) -> list[PlannedAction]:
        if job.contact_id is None:
            return [
                PlannedAction(
                    source=SOURCE,
                    location="(no contact holds this email or phone)",
                    method="nothing_held",
                )
            ]
        return await ExportService(job.kith).preview(job.contact_id)

    async def execute(self, job: RequestJob) -> list[CertificateEntry]:
        if job.contact_id is None:
            return [
                CertificateEntry(
                    source=SOURCE,
                    location="(no contact holds this email or phone)",
                    method="nothing_held",
                    outcome="not_applicable",
                    detail="we hold no personal data under this email or phone",
                )
            ]
        service = ExportService(job.kith)
        done = await service.for_request(job.request.id)
        if done is None:
            answering = ANSWERING.set(job.request.id)
            try:
                done = await service.export(
                    job.contact_id,
                    actor=job.actor,
                    channel=CHANNEL,
                    request_id=job.request.id,
                )
            finally:
                ANSWERING.reset(answering)
            await job.checkpoint(export_file=done.file_name, export_files=done.files)
        else:
            # Resumed after the package was written: its contents are in the checkpoint.
            done.files = dict(job.progress.get("export_files") or {})
        entries = [
            CertificateEntry(
                source=SOURCE if name == "kith.json" else name.removesuffix(".json"),
                location=f"{name}#{table}",
                method="exported",
                count=count,
            )
            for name, tables in done.files.items()
            for table, count in tables.items()
        ]
        entries.append(
            CertificateEntry(
                source=SOURCE,
                location=done.file_name,
                method="export_package",
                count=done.size,
                detail=f"sha256 {done.sha256}",
            )
        )
        return entries


class ErasureExecutor:
    """The request workflow's executor for erasure requests."""

    async def preview(self, job: RequestJob) -> list[PlannedAction]:
        if job.contact_id is None:
            return [
                PlannedAction(
                    source=SOURCE_CORE,
                    location="(no contact holds this email or phone)",
                    method="not_present",
                )
            ]
        return await ErasureService(job.kith).preview(job.contact_id, job.request.id)

    async def execute(self, job: RequestJob) -> list[CertificateEntry]:
        if job.contact_id is None:
            return [
                CertificateEntry(
                    source=SOURCE_CORE,
                    location="(no contact holds this email or phone)",
                    method="not_present",
                    outcome="not_applicable",
                )
            ]
        result = await ErasureService(job.kith).run(
            job.contact_id,
            job_id=job.request.id,
            actor=job.actor,
            origin="request",
            request_id=job.request.id,
            channel="cli" if job.actor.kind != "user" else "request",
        )
        return result.entries


class RectificationExecutor:
    async def preview(self, job: RequestJob) -> list[PlannedAction]:
        patch = await self._patch(job)
        fields = fields_of(patch)
        return [
            PlannedAction(
                source=SOURCE,
                location="kith_contact",
                method="rectified",
                count=len(fields),
                ground=f"fields: {', '.join(fields)}",
            ),
            *await recipient_notices.preview(job.kith, job.contact_id, "rectification"),
        ]

    async def _patch(self, job: RequestJob) -> ContactPatch:
        if job.contact_id is None:
            raise Conflict("this request names no contact Kith holds; there is nothing to correct")
        patch = await RectificationService(job.kith).patch_of(job.request.id)
        if patch is None:
            raise Conflict(
                f"request {job.request.id} has no corrections yet; set them with "
                "`kith privacy rectify REQUEST --name ... --email ...` (or "
                "PUT /api/privacy/requests/{id}/rectification)"
            )
        return patch

    async def execute(self, job: RequestJob) -> list[CertificateEntry]:
        patch = await self._patch(job)
        contact_id = job.contact_id
        assert contact_id is not None
        fields = fields_of(patch)
        if not job.progress.get("rectified"):
            with request_context(contact_id):
                await ContactService(job.kith, CHANNEL).update(contact_id, patch, job.actor)
            await AuditLog(job.kith).record(
                contact_id,
                "rectify",
                actor=job.actor,
                channel=CHANNEL,
                request_id=job.request.id,
                details={"fields": fields},
            )
            await job.checkpoint(rectified=True)
        entries = [
            CertificateEntry(
                source=SOURCE,
                location="kith_contact",
                method="rectified",
                count=len(fields),
                ground=f"fields: {', '.join(fields)}",
            )
        ]
        entries += await recipient_notices.notify(
            job.kith,
            contact_id,
            "rectification",
            key=f"request:{job.request.id}",
            request_id=job.request.id,
        )
        return entries


class RestrictionExecutor:
    @staticmethod
    def _ground(job: RequestJob) -> str:
        ground = str(job.request.parameters.get("ground") or "accuracy_contested")
        if ground not in GROUNDS:
            raise InvalidInput(
                f"parameters.ground {ground!r} is not a ground for restriction "
                f"({', '.join(GROUNDS)})",
                field="parameters",
            )
        return ground

    async def preview(self, job: RequestJob) -> list[PlannedAction]:
        if job.contact_id is None:
            raise Conflict("this request names no contact Kith holds; there is nothing to restrict")
        ground = self._ground(job)
        return [
            PlannedAction(
                source="kith.privacy",
                location="kith_privacy_restriction",
                method="restricted",
                count=1,
                ground=GROUNDS[ground],
            ),
            *await recipient_notices.preview(job.kith, job.contact_id, "restriction"),
        ]

    async def execute(self, job: RequestJob) -> list[CertificateEntry]:
        if job.contact_id is None:
            raise Conflict("this request names no contact Kith holds; there is nothing to restrict")
        ground = self._ground(job)
        await RestrictionService(job.kith).restrict(
            job.contact_id, ground, job.actor, request_id=job.request.id, channel=CHANNEL
        )
        entries = [
            CertificateEntry(
                source="kith.privacy",
                location="kith_privacy_restriction",
                method="restricted",
                count=1,
                ground=GROUNDS[ground],
            )
        ]
        entries += await recipient_notices.notify(
            job.kith,
            job.contact_id,
            "restriction",
            key=f"request:{job.request.id}",
            request_id=job.request.id,
        )
        return entries


EXECUTORS: dict[str, RequestExecutor] = {
    "access": AccessExecutor(),
    "portability": AccessExecutor(),
    "erasure": ErasureExecutor(),
    "rectification": RectificationExecutor(),
    "restriction": RestrictionExecutor(),
}
