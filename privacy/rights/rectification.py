"""Rectification (Art. 16 GDPR): the corrections a request will make to a contact.

A rectification request gets its corrections (a contact patch: name, emails, phones...) before
it is previewed; they are stored here, encrypted under the person's key (they are personal
data), until the request runs and applies them through the contact service.
"""

from __future__ import annotations

import uuid

import msgspec
from kith import (
    CONTACT_PATCH_DIRECTIVES,
    SYSTEM,
    Actor,
    ContactPatch,
    InvalidInput,
    Kith,
    new_id,
    unset_to_dict,
    utcnow,
)
from kith.privacy.rights.tables import Rectification

TABLE = Rectification._meta.tablename


def fields_of(patch: ContactPatch) -> list[str]:
    """The fields a patch corrects."""
    return sorted(set(unset_to_dict(patch)) - CONTACT_PATCH_DIRECTIVES)


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
