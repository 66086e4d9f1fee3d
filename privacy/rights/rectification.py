"""Rectification (Art. 16 GDPR) and restriction (Art. 18) requests, carried out.

A rectification request gets its corrections (a contact patch: name, emails, phones...) before
it is previewed; they are stored encrypted under the person's key (they are personal data),
applied through the contact service when the request runs (allowed while the contact is
restricted: it is the request itself) and passed on to every recipient (Art. 19).

A restriction request restricts the contact on the ground named in its parameters
(``{"ground": "accuracy_contested"}`` by default) and tells the recipients.
"""

from __future__ import annotations

import uuid

import msgspec
from kith.actor import SYSTEM, Actor
from kith.errors import Conflict, InvalidInput, NotFound
from kith.events import utcnow
from kith.ids import new_id
from kith.privacy.rights import recipients as recipient_notices
from kith.privacy.rights.audit import AuditLog
from kith.privacy.requests.service import CertificateEntry, PlannedAction, RequestJob
from kith.privacy.rights.restriction import GROUNDS, RestrictionService, request_context
from kith.privacy.rights.tables import Rectification
from kith.privacy.requests.tables import SubjectRequest
from kith.runtime import Kith
from kith.schemas import CONTACT_PATCH_DIRECTIVES, ContactPatch, unset_to_dict
from kith.services.contacts import ContactService

SOURCE = "kith"
TABLE = Rectification._meta.tablename
EDITABLE_STATES = ("received", "verified", "previewed")


def _fields(patch: ContactPatch) -> list[str]:
    return sorted(set(unset_to_dict(patch)) - CONTACT_PATCH_DIRECTIVES)


class RectificationService:
    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    async def set_patch(
        self, request_id: uuid.UUID, patch: ContactPatch, actor: Actor = SYSTEM
    ) -> list[str]:
        """Store the corrections of a rectification request; returns the fields it changes."""
        fields = _fields(patch)
        if not fields:
            raise InvalidInput("say what to correct (name, emails, phones...)", field="patch")
        if "archived" in fields:
            raise InvalidInput("archiving is not a rectification", field="archived")
        row = await SubjectRequest.select().where(SubjectRequest.id == request_id).first().run()
        if row is None:
            raise NotFound(f"subject request {request_id} does not exist")
        if row["kind"] != "rectification":
            raise Conflict(f"request {request_id} is a {row['kind']} request, not a rectification")
        if row["contact_id"] is None:
            raise Conflict("this request names no contact Kith holds; there is nothing to correct")
        if row["state"] not in EDITABLE_STATES:
            raise Conflict(
                f"request {request_id} is {row['state']}; corrections are set before approval"
            )
        contact_id = row["contact_id"]
        text = msgspec.json.encode(patch).decode()
        async with self.kith.unit_of_work(actor):
            existing = (
                await Rectification.select(Rectification.id)
                .where(Rectification.request_id == request_id)
                .first()
                .run()
            )
            row_id = existing["id"] if existing else new_id()
            sealed = await self.kith.protector.protect(contact_id, TABLE, row_id, {"patch": text})
            if existing:
                await Rectification.update({Rectification.patch: sealed["patch"]}).where(
                    Rectification.id == row_id
                )
            else:
                await Rectification.insert(
                    Rectification(
                        id=row_id,
                        request_id=request_id,
                        contact_id=contact_id,
                        patch=sealed["patch"],
                        created_by=actor.ref,
                        created_at=utcnow(),
                    )
                ).run()
        return fields

    async def patch_of(self, request_id: uuid.UUID) -> ContactPatch | None:
        row = await Rectification.select().where(Rectification.request_id == request_id).first()
        if row is None:
            return None
        text = (
            await self.kith.protector.reveal(
                row["contact_id"], TABLE, row["id"], {"patch": row["patch"]}
            )
        )["patch"]
        if not text or text.startswith("["):
            return None
        return msgspec.json.decode(text, type=ContactPatch)


class RectificationExecutor:
    async def preview(self, job: RequestJob) -> list[PlannedAction]:
        patch = await self._patch(job)
        fields = _fields(patch)
        return [
            PlannedAction(
                source=SOURCE,
                location="kith_contact",
                method="rectified",
                count=len(fields),
                ground=f"fields: {', '.join(fields)}",
            ),
            *recipient_notices.preview(job.kith, "rectification"),
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
        fields = _fields(patch)
        if not job.progress.get("rectified"):
            with request_context(contact_id):
                await ContactService(job.kith).update(contact_id, patch, job.actor)
            await AuditLog(job.kith).record(
                contact_id,
                "rectify",
                actor=job.actor,
                channel="request",
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
            *recipient_notices.preview(job.kith, "restriction"),
        ]

    async def execute(self, job: RequestJob) -> list[CertificateEntry]:
        if job.contact_id is None:
            raise Conflict("this request names no contact Kith holds; there is nothing to restrict")
        ground = self._ground(job)
        await RestrictionService(job.kith).restrict(
            job.contact_id, ground, job.actor, request_id=job.request.id, channel="request"
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
