"""The suppression list: keyed hashes of the emails and phones of people who were erased (or who
objected to marketing), so that an import, a form or a call cannot bring them back silently.

An entry is HMAC-SHA256 of the normalised value under a key derived (HKDF per kind) from a random
root key for this purpose only, stored wrapped under the current key-encryption key, so it is
unrelated to the blind indexes and the data keys: nothing readable, no contact id, and no way to
test a guess without that root key. KEK rotation re-wraps the root key and re-indexing the blind
indexes leaves it alone, so neither forgets anyone; entries remember their root key, and a lookup
tries every suppression root key there is.

``erasure`` entries refuse a new contact with that address, or a change that adds it to an
existing contact (409), unless an operator gives ``override_suppression_reason``, which is
recorded (encrypted under that contact's key).
``objection`` entries let the contact in but record the objection again for the marketing
purposes (``[privacy] marketing_purposes``), so consent cannot be silently re-assumed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any, Literal

import msgspec
from kith import (
    SYSTEM,
    Actor,
    Conflict,
    Kith,
    get_logger,
    new_id,
    normalize_email,
    normalize_phone,
    utcnow,
)
from kith.privacy.encryption import root_keys
from kith.privacy.encryption.primitives import hkdf_sha256, hmac_sha256
from kith.privacy.encryption.protector import PrivacyProtector, protector_of
from kith.privacy.encryption.tables import RootKey
from kith.privacy.rights.settings import rights_settings
from kith.privacy.rights.tables import Suppression, SuppressionOverride
from kith.storage.prepared import Prepared
from piccolo.columns.combination import And, Or, Where

# Core answers for its own data through the plugin hooks under this name.
CORE = "kith"

SuppressionReason = Literal["erasure", "objection"]
# What older versions derived the root from a KEK with; still used to carry such a root over.
ROOT_PURPOSE = b"kith/suppression/v1"
_KIND_INFO = b"kith/suppression/v1/kind="
OVERRIDE_TABLE = SuppressionOverride._meta.tablename

log = get_logger("kith.privacy.rights.suppression")

_ROOT_IDS = Prepared(
    lambda purpose: (
        RootKey.select(RootKey.id).where(RootKey.purpose == purpose).order_by(RootKey.id)
    )
)
_KINDS = ("email", "phone")


def _lookup_query(roots: list[str], **digests: list[str]) -> Any:
    """Entries whose digest is one of a kind's ``digests``, and every entry under a root key
    outside ``roots`` (sorted): a root another process made since they were read. The root
    condition is ranges between the known ids, so both engines answer it from the root key's
    index, finding nothing in the usual case."""
    terms: list[Where | And | Or] = [
        (Suppression.kind == kind) & Suppression.digest.is_in(values)
        for kind, values in digests.items()
        if values
    ]
    column = Suppression.root_key_id
    if not roots:
        terms.append(column.is_not_null())
    else:
        terms.append(column < roots[0])
        terms.extend((column > low) & (column < high) for low, high in pairwise(roots))
        terms.append(column > roots[-1])
    condition = terms[0]
    for term in terms[1:]:
        condition = condition | term
    return Suppression.select().where(condition)


_LOOKUP = Prepared(_lookup_query)


class Suppressed(Conflict):
    """A new contact, or a change to one, carries an email or phone of someone who asked to be
    erased."""

    title = "Suppressed: the person asked to be erased"


class SuppressionMatch(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: str
    reason: str
    field: str


class SuppressionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One email or phone and its entry on the list, if any (``reason`` erasure or objection)."""

    kind: str
    value: str
    reason: str | None = None
    since: dt.datetime | None = None


def _status(kind: str, value: str, row: dict[str, Any] | None) -> SuppressionStatus:
    if row is None:
        return SuppressionStatus(kind=kind, value=value)
    return SuppressionStatus(kind=kind, value=value, reason=row["reason"], since=row["created_at"])


class SuppressionList:
    """Adds and looks up keyed hashes. One per call site; keys are cached on the protector."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith
        self._protector = protector_of(kith)
        self._cache: dict[tuple[uuid.UUID, str], bytes] = self._protector.context.setdefault(
            "suppression_keys", {}
        )
        self._orphans: set[uuid.UUID] = self._protector.context.setdefault(
            "suppression_orphan_roots", set()
        )

    @property
    def _provider(self) -> Any:
        return self._protector.context["provider"]

    async def _root_ids(self) -> list[uuid.UUID]:
        """The suppression root keys, oldest first, as the database has them now."""
        rows = await _ROOT_IDS.run(purpose=root_keys.SUPPRESSION)
        roots = [row["id"] for row in rows]
        self._protector.context["suppression_roots"] = roots
        return roots

    async def _known_roots(self) -> list[uuid.UUID]:
        # Remembered per process: each lookup also asks for entries under any other root
        # (see _lookup_query), so a root made elsewhere is noticed by the first lookup after.
        roots: list[uuid.UUID] | None = self._protector.context.get("suppression_roots")
        return await self._root_ids() if roots is None else roots

    async def _kind_key(self, root_id: uuid.UUID, kind: str) -> bytes:
        key = self._cache.get((root_id, kind))
        if key is None:
            root = await root_keys.load(self._provider, root_id)
            if root is None:
                raise LookupError(f"root key {root_id} is gone")
            key = hkdf_sha256(root, _KIND_INFO + kind.encode("utf-8"))
            self._cache[(root_id, kind)] = key
        return key

    async def digest(self, root_id: uuid.UUID, kind: str, normalized: str) -> str:
        return hmac_sha256(await self._kind_key(root_id, kind), normalized.encode("utf-8")).hex()

    async def add(self, kind: str, normalized: str, reason: SuppressionReason) -> bool:
        """Suppress one normalised value; False when it was already on the list."""
        if await self.match(kind, normalized, reason):
            return False
        roots = await self._root_ids()
        # The oldest root: every process picks the same one, even if two were made at once.
        if roots:
            root_id = roots[0]
        else:
            root_id = await root_keys.create(self._provider, root_keys.SUPPRESSION)
        await (
            Suppression.insert(
                Suppression(
                    id=new_id(),
                    kind=kind,
                    digest=await self.digest(root_id, kind, normalized),
                    root_key_id=root_id,
                    reason=reason,
                    created_at=utcnow(),
                )
            )
            .on_conflict(action="DO NOTHING")
            .run()
        )
        return True

    async def lookup(
        self, values: Sequence[tuple[str, str]], reason: str | None = None
    ) -> list[dict[str, Any] | None]:
        """The suppression entry of each (kind, normalised value), under any suppression root
        key, in one statement; an erasure entry outranks an objection entry of the same value."""
        if not values:
            return []
        roots = await self._known_roots()
        rows: list[dict[str, Any]] = []
        wanted: dict[tuple[str, str], list[int]] = {}
        for _ in range(3):
            try:
                wanted = await self._wanted(values, roots)
            except LookupError:
                # A root remembered from a transaction that was rolled back: read them again.
                roots = await self._root_ids()
                continue
            digests: dict[str, list[str]] = {kind: [] for kind in _KINDS}
            for kind, digest in wanted:
                digests.setdefault(kind, []).append(digest)
            known = set(roots) | self._orphans
            rows = await _LOOKUP.run(roots=sorted(known), **digests)
            unknown = {row["root_key_id"] for row in rows} - known
            if not unknown:
                break
            # Another process made a root since: its entries could hold any of these values.
            roots = await self._root_ids()
            # Entries whose root key is gone cannot match anything; stop asking for them.
            self._orphans.update(unknown - set(roots))
        else:
            # Root keys kept changing under the check: refuse rather than let someone through.
            raise Conflict(
                "the suppression list's keys changed during the check; send the request again"
            )
        found: list[dict[str, Any] | None] = [None] * len(values)
        for row in rows:
            if reason is not None and row["reason"] != reason:
                continue
            for index in wanted.get((row["kind"], row["digest"]), ()):
                current = found[index]
                if current is None or (
                    current["reason"] != "erasure" and row["reason"] == "erasure"
                ):
                    found[index] = row
        return found

    async def _wanted(
        self, values: Sequence[tuple[str, str]], roots: list[uuid.UUID]
    ) -> dict[tuple[str, str], list[int]]:
        """(kind, digest) under each root key -> the indexes of the values it stands for."""
        wanted: dict[tuple[str, str], list[int]] = {}
        for index, (kind, normalized) in enumerate(values):
            for root_id in roots:
                digest = await self.digest(root_id, kind, normalized)
                wanted.setdefault((kind, digest), []).append(index)
        return wanted

    async def match(
        self, kind: str, normalized: str, reason: str | None = None
    ) -> dict[str, Any] | None:
        """The suppression entry of a value, under any suppression root key."""
        return (await self.lookup([(kind, normalized)], reason))[0]

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

    async def status_of(self, contact_id: uuid.UUID) -> list[SuppressionStatus]:
        """Whether each email and phone a contact holds is on the list, and why."""
        values = await self.values_of(contact_id)
        rows = await self.lookup(values)
        return [_status(kind, value, row) for (kind, value), row in zip(values, rows, strict=True)]

    async def address_status(self, text: str) -> SuppressionStatus:
        """Whether an email (anything with an ``@``) or a phone number is on the list."""
        if "@" in text:
            kind, value = "email", normalize_email(text, field="q")
        else:
            kind, value = "phone", normalize_phone(text, self.kith.settings.default_region, "q")
        return _status(kind, value, await self.match(kind, value))

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
        fields = [
            (kind, index, value)
            for kind, values in (("email", emails), ("phone", phones))
            for index, value in enumerate(values)
        ]
        rows = await self.lookup([(kind, value) for kind, _, value in fields])
        matches = [
            SuppressionMatch(
                id=row["id"], kind=kind, reason=row["reason"], field=f"{kind}s[{index}]"
            )
            for (kind, index, _), row in zip(fields, rows, strict=True)
            if row is not None
        ]
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


async def carry_over(kith: Kith) -> int:
    """Give entries from before root keys a root key of their own: the root their KEK derived,
    stored wrapped (so the entries keep matching once that KEK is rotated out and pruned).
    Returns how many entries were carried over; runs at every start, usually finding none."""
    if not isinstance(getattr(kith, "protector", None), PrivacyProtector):
        # A plugin's own protector replaced privacy's keys: the entries wait, unchanged, for a
        # start with privacy's keys, the only ones they can be matched under.
        return 0
    provider = protector_of(kith).context["provider"]
    rows = await (
        Suppression.select(Suppression.kek_id)
        .where(Suppression.root_key_id.is_null())
        .distinct()
        .run()
    )
    available = set(await provider.kek_ids())
    carried = 0
    for kek_id in sorted(row["kek_id"] for row in rows):
        legacy = Suppression.root_key_id.is_null() & (Suppression.kek_id == kek_id)
        if kek_id not in available:
            log.warning(
                "suppression entries under a key-encryption key the key provider no longer "
                "has cannot be matched; restore the key file that holds it",
                kek_id=kek_id,
                entries=int(await Suppression.count().where(legacy).run()),
            )
            continue
        async with kith.unit_of_work():
            root_id = await root_keys.adopt(provider, root_keys.SUPPRESSION, kek_id, ROOT_PURPOSE)
            changed = await (
                Suppression.update({Suppression.root_key_id: root_id})
                .where(legacy)
                .returning(Suppression.id)
            )
        carried += len(changed)
    if carried:
        log.info("suppression entries carried over to a root key", entries=carried)
    return carried


def marketing_objection_purposes(kith: Kith, purposes: Iterable[str]) -> list[str]:
    """Of ``purposes``, the ones an objection entry re-applies to a re-created contact."""
    wanted = set(rights_settings(kith.settings).marketing_purposes)
    return sorted(p for p in purposes if p in wanted)
