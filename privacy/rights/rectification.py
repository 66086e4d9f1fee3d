"""Rectification (Art. 16 GDPR): the corrections a request will make to a contact.

A rectification request gets its corrections (a contact patch: name, emails, phones, custom
fields...) before it is previewed; they are checked as the contact service will check them and
stored here, encrypted under the person's key (they are personal data), until the request runs
and applies them through the contact service.
"""

from __future__ import annotations

import uuid

import msgspec
from kith import (
    CONTACT_PATCH_DIRECTIVES,
    SYSTEM,
    Actor,
    ContactPatch,
    FieldService,
    InvalidInput,
    Kith,
    new_id,
    normalize_email,
    normalize_phone,
    unset_to_dict,
    utcnow,
)
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.tables import Rectification

TABLE = Rectification._meta.tablename


def fields_of(patch: ContactPatch) -> list[str]:
    """The fields a patch corrects; custom fields each by name, as ``fields.<name>``."""
    named = set(unset_to_dict(patch)) - CONTACT_PATCH_DIRECTIVES - {"fields"}
    if isinstance(patch.fields, dict):
        named.update(f"fields.{name}" for name in patch.fields)
    return sorted(named)


class RectificationService:
    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    async def set_patch(
        self,
        request_id: uuid.UUID,
        contact_id: uuid.UUID,
        patch: ContactPatch,
        actor: Actor = SYSTEM,
    ) -> list[str]:
        """Store the corrections request ``request_id`` will make to ``contact_id``; returns
        the fields it changes."""
        fields = fields_of(patch)
        if not fields:
            raise InvalidInput("say what to correct (name, emails, phones...)", field="patch")
        if "archived" in fields:
            raise InvalidInput("archiving is not a rectification", field="archived")
        self._check_points(patch)
        if isinstance(patch.fields, dict):
            # Kept as the contact service will store them (a date as a date, a yes as true).
            checked = await FieldService(self.kith).checked_change(patch.fields)
            patch = msgspec.structs.replace(patch, fields=checked)
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

    def _check_points(self, patch: ContactPatch) -> None:
        """Refuse an email or phone the contact service would refuse when the request runs:
        told now, while it can still be corrected, rather than as a failed run (custom field
        values likewise, through the fields service)."""
        region = self.kith.settings.default_region
        for index, email in enumerate(patch.emails or ()):
            normalize_email(email.address, field=f"emails[{index}]")
        for index, phone in enumerate(patch.phones or ()):
            normalize_phone(phone.number, region, field=f"phones[{index}]")

    async def _stored(self, request_id: uuid.UUID) -> tuple[uuid.UUID, ContactPatch] | None:
        """(the contact whose key sealed them, the corrections) of a request, if it has any."""
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
        return row["contact_id"], msgspec.json.decode(text, type=ContactPatch)

    async def patch_of(self, request_id: uuid.UUID) -> ContactPatch | None:
        stored = await self._stored(request_id)
        return stored[1] if stored else None

    async def read_patch(
        self, request_id: uuid.UUID, *, actor: Actor = SYSTEM, channel: str = "api"
    ) -> ContactPatch | None:
        """The corrections of a request for someone to see: the values are the person's data,
        so showing them is an audited read."""
        stored = await self._stored(request_id)
        if stored is None:
            return None
        contact_id, patch = stored
        await AuditLog(self.kith).record(
            contact_id,
            "read",
            actor=actor,
            channel=channel,
            request_id=request_id,
            details={"part": "rectification", "fields": fields_of(patch)},
        )
        return patch
