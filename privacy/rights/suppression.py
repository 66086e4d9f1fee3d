"""The suppression list: keyed hashes of the emails and phones of people who were erased (or who
objected to marketing), so that an import, a form or a call cannot bring them back silently.

An entry is HMAC-SHA256 of the normalised value under a key derived from a key-encryption key
for this purpose only (``kith/suppression/v1``, then HKDF per kind), so it is unrelated to the
blind indexes and the data keys: nothing readable, no contact id, and no way to test a guess
without the KEK. Entries remember which KEK they were made under, and a lookup tries every KEK
the key provider still has, so rotating the KEK does not forget anyone.

``erasure`` entries refuse a new contact with that address, or a change that adds it to an
existing contact (409), unless an operator gives ``override_suppression_reason``, which is
recorded (encrypted under that contact's key).
``objection`` entries let the contact in but record the objection again for the marketing
purposes (``[privacy] marketing_purposes``), so consent cannot be silently re-assumed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec
from kith import (
    SYSTEM,
    Actor,
    Conflict,
    Kith,
    get_logger,
    new_id,
    utcnow,
)
from kith.privacy.encryption.primitives import hkdf_sha256, hmac_sha256
from kith.privacy.encryption.protector import protector_of
from kith.privacy.rights.settings import rights_settings
from kith.privacy.rights.tables import Suppression, SuppressionOverride

# Core answers for its own data through the plugin hooks under this name.
CORE = "kith"

SuppressionReason = Literal["erasure", "objection"]
ROOT_PURPOSE = b"kith/suppression/v1"
_KIND_INFO = b"kith/suppression/v1/kind="
OVERRIDE_TABLE = SuppressionOverride._meta.tablename

log = get_logger("kith.privacy.rights.suppression")


class Suppressed(Conflict):
    """A new contact, or a change to one, carries an email or phone of someone who asked to be
    erased."""

    title = "Suppressed: the person asked to be erased"


class SuppressionMatch(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: str
    reason: str
    field: str


class SuppressionList:
    """Adds and looks up keyed hashes. One per call site; keys are cached on the protector."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith
        self._protector = protector_of(kith)
        self._cache: dict[tuple[str, str], bytes] = self._protector.context.setdefault(
            "suppression_keys", {}
        )

    async def _kind_key(self, kek_id: str, kind: str) -> bytes:
        key = self._cache.get((kek_id, kind))
        if key is None:
            provider = self._protector.context["provider"]
            root = await provider.derive(kek_id, ROOT_PURPOSE)
            key = hkdf_sha256(root, _KIND_INFO + kind.encode("utf-8"))
            self._cache[(kek_id, kind)] = key
        return key

    async def digest(self, kek_id: str, kind: str, normalized: str) -> str:
        return hmac_sha256(await self._kind_key(kek_id, kind), normalized.encode("utf-8")).hex()

    async def add(self, kind: str, normalized: str, reason: SuppressionReason) -> bool:
        """Suppress one normalised value; False when it was already on the list."""
        provider = self._protector.context["provider"]
        kek_id = await provider.current_kek_id()
        digest = await self.digest(kek_id, kind, normalized)
        if await self._find(kind, [digest], reason):
            return False
        await (
            Suppression.insert(
                Suppression(
                    id=new_id(),
                    kind=kind,
                    digest=digest,
                    kek_id=kek_id,
                    reason=reason,
                    created_at=utcnow(),
                )
            )
            .on_conflict(action="DO NOTHING")
            .run()
        )
        return True

    async def _find(
        self, kind: str, digests: list[str], reason: str | None = None
    ) -> dict[str, Any] | None:
        query = Suppression.select().where(
            (Suppression.kind == kind) & Suppression.digest.is_in(digests)
        )
        if reason is not None:
            query = query.where(Suppression.reason == reason)
        rows = await query.run()
        # An erasure entry outranks an objection entry of the same value.
        rows.sort(key=lambda row: row["reason"] != "erasure")
        return rows[0] if rows else None

    async def match(
        self, kind: str, normalized: str, reason: str | None = None
    ) -> dict[str, Any] | None:
        """The suppression entry of a value, under any KEK the provider still has."""
        provider = self._protector.context["provider"]
        digests = [await self.digest(k, kind, normalized) for k in await provider.kek_ids()]
        return await self._find(kind, digests, reason)

    async def values_of(self, contact_id: uuid.UUID) -> list[tuple[str, str]]:
        """(kind, normalised value) of every email and phone a contact holds, as core answers
        for its data about the subject (``kith_subject_export``); none for a contact that is
        gone. Part of an erasure or a processing check, not a read of its own."""
        plugins = self.kith.plugins
        if plugins is None:
            return []
        section = await plugins.call_one(
            CORE, "kith_subject_export", kith=self.kith, contact_id=contact_id
        )
        points = section.tables.get("contact_points", []) if section is not None else []
        # An erased value reads "[erased]": it has nothing left to suppress.
        return [
            (point["kind"], point["value"])
            for point in points
            if point["value"] and not point["value"].startswith("[")
        ]

    async def add_contact(self, contact_id: uuid.UUID, reason: SuppressionReason) -> int:
        """Suppress every email and phone of a contact; returns how many were new."""
        added = 0
        for kind, value in await self.values_of(contact_id):
            added += await self.add(kind, value, reason)
        return added

    async def count(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for reason in ("erasure", "objection"):
            counts[reason] = int(
                await Suppression.count().where(Suppression.reason == reason).run()
            )
        return counts

    async def check(
        self,
        contact_id: uuid.UUID,
        emails: Sequence[str],
        phones: Sequence[str],
        override_reason: str | None,
        actor: Actor = SYSTEM,
    ) -> list[SuppressionMatch]:
        """The ``kith_check_new_contact`` check: refuse erased people, unless overridden."""
        matches = []
        for kind, values in (("email", emails), ("phone", phones)):
            for index, value in enumerate(values):
                row = await self.match(kind, value)
                if row is not None:
                    matches.append(
                        SuppressionMatch(
                            id=row["id"], kind=kind, reason=row["reason"], field=f"{kind}s[{index}]"
                        )
                    )
        erased = [m for m in matches if m.reason == "erasure"]
        if erased and not (override_reason or "").strip():
            first = erased[0]
            raise Suppressed(
                f"the {first.kind} in {first.field} belongs to a person who asked to be erased "
                "(Art. 17 GDPR); Kith keeps a keyed hash of it so that they are not added again "
                "by accident. If you have a new reason to hold their data (they contacted you "
                "again, say), create or change the contact with override_suppression_reason "
                "saying so; the override is recorded",
                field=first.field,
                suppressed=[m.field for m in erased],
            )
        for match in erased:
            await self._record_override(contact_id, match, str(override_reason).strip(), actor)
        return matches

    async def _record_override(
        self, contact_id: uuid.UUID, match: SuppressionMatch, reason: str, actor: Actor
    ) -> None:
        override_id = new_id()
        sealed = await self.kith.protector.protect(
            contact_id, OVERRIDE_TABLE, override_id, {"reason": reason}
        )
        await SuppressionOverride.insert(
            SuppressionOverride(
                id=override_id,
                suppression=match.id,
                contact_id=contact_id,
                kind=match.kind,
                reason=sealed["reason"],
                actor=actor.ref,
                at=utcnow(),
            )
        ).run()
        from kith.privacy.rights.audit import AuditLog

        await AuditLog(self.kith).record(
            contact_id,
            "suppression_override",
            actor=actor,
            channel="api" if actor.kind == "user" else "system",
            details={"field": match.field, "reason": reason},
        )
        log.warning(
            "suppression overridden",
            contact_id=str(contact_id),
            kind=match.kind,
            actor=actor.ref,
        )

    async def overrides(self, contact_id: uuid.UUID) -> list[dict[str, Any]]:
        """The overrides recorded for a contact, reasons decrypted."""
        rows = await SuppressionOverride.select().where(
            SuppressionOverride.contact_id == contact_id
        )
        out = []
        for row in rows:
            opened = await self.kith.protector.reveal(
                contact_id, OVERRIDE_TABLE, row["id"], {"reason": row["reason"]}
            )
            out.append(
                {
                    "kind": row["kind"],
                    "reason": opened["reason"],
                    "actor": row["actor"],
                    "at": row["at"],
                }
            )
        return out


def marketing_objection_purposes(kith: Kith, purposes: Iterable[str]) -> list[str]:
    """Of ``purposes``, the ones an objection entry re-applies to a re-created contact."""
    wanted = set(rights_settings(kith.settings).marketing_purposes)
    return sorted(p for p in purposes if p in wanted)
