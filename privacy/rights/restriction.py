"""Restriction of processing (Art. 18 GDPR): a contact whose data may only be stored.

While a contact is restricted, or holds records kept under a legal hold after an erasure,
Kith refuses everything but storage and the subject request itself: changes to the contact
and its interactions (409 from the API), deliveries of its events to webhooks, and any purpose
checked through ``can_process`` (marketing...). Work on the request itself (a rectification
being carried out) runs inside :func:`request_context`, which the checks let through.

A restriction is lifted explicitly, with the notice given to the person before it is lifted
(Art. 18(3)) recorded, encrypted under their key; recipients are told (Art. 19).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Literal

import msgspec
from kith import (
    SYSTEM,
    Actor,
    Conflict,
    ContactService,
    InvalidInput,
    Kith,
    NotFound,
    get_logger,
    new_id,
    utcnow,
)
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.tables import LegalHold, Restriction
from kith.storage.prepared import Prepared

Ground = Literal["accuracy_contested", "unlawful_processing", "legal_claims", "objection_pending"]
GROUNDS: dict[str, str] = {
    "accuracy_contested": "the person contests the accuracy of the data (Art. 18(1)(a))",
    "unlawful_processing": "the processing is unlawful and the person asked for restriction "
    "instead of erasure (Art. 18(1)(b))",
    "legal_claims": "the person needs the data for legal claims (Art. 18(1)(c))",
    "objection_pending": "the person objected and the check of legitimate grounds is pending "
    "(Art. 18(1)(d))",
}
TABLE = Restriction._meta.tablename
MAX_NOTICE = 2000

log = get_logger("kith.privacy.rights.restriction")

# The contact whose request is being carried out in this task: its own work passes the checks.
_request_subject: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar(
    "kith_privacy_request_subject", default=None
)


@contextlib.contextmanager
def request_context(contact_id: uuid.UUID) -> Iterator[None]:
    """Work done for a subject request on ``contact_id`` (allowed while restricted)."""
    token = _request_subject.set(contact_id)
    try:
        yield
    finally:
        _request_subject.reset(token)


# Asked before every change to a contact's data: built once, not per check.
_ACTIVE = Prepared(
    lambda contact_id: (
        Restriction.select()
        .where((Restriction.contact_id == contact_id) & Restriction.lifted_at.is_null())
        .limit(1)
    )
)
# Both reasons to refuse a change in one round trip: an active restriction (its start), else a
# legal hold of an erased contact (its ground). piccolo has no UNION, hence the SQL.
_REFUSALS_SQL = (
    f"SELECT 0 AS rank, started_at AS since, NULL AS ground FROM {Restriction._meta.tablename} "
    "WHERE contact_id = {} AND lifted_at IS NULL "
    f"UNION ALL SELECT 1, NULL, ground FROM {LegalHold._meta.tablename} "
    "WHERE contact_id = {} AND released_at IS NULL "
    "ORDER BY rank LIMIT 1"
)
_REFUSALS = Prepared(lambda contact_id: Restriction.raw(_REFUSALS_SQL, contact_id, contact_id))


class RestrictionOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    contact_id: uuid.UUID
    ground: str
    ground_text: str
    request_id: uuid.UUID | None
    started_at: dt.datetime
    started_by: str
    lifted_at: dt.datetime | None
    lifted_by: str | None
    lift_notice: str | None


class RestrictionService:
    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    async def active(self, contact_id: uuid.UUID) -> dict[str, object] | None:
        return await _ACTIVE.first(contact_id=contact_id)

    async def refusal(self, contact_id: uuid.UUID, activity: str) -> str | None:
        """Why ``activity`` on the contact's data is refused now, or None."""
        if _request_subject.get() == contact_id:
            return None
        row = await _REFUSALS.first(contact_id=contact_id)
        if row is None:
            return None
        if row["rank"] == 0:
            # Through the UNION, SQLite gives the time as its stored text.
            since = row["since"]
            day = since.date().isoformat() if isinstance(since, dt.datetime) else str(since)[:10]
            return (
                f"contact {contact_id} is restricted (Art. 18 GDPR) since {day}: its data may "
                "only be stored, so this is refused; a compliance user lifts the restriction "
                "with `kith privacy restriction lift`"
            )
        return (
            f"contact {contact_id} was erased; only records under a legal hold are kept "
            f"({row['ground']}), and they may only be stored"
        )

    async def restrict(
        self,
        contact_id: uuid.UUID,
        ground: str,
        actor: Actor = SYSTEM,
        request_id: uuid.UUID | None = None,
        channel: str = "api",
    ) -> tuple[RestrictionOut, bool]:
        """Restrict the contact; returns the restriction and whether it is new (restricting
        a restricted contact returns the active restriction)."""
        if ground not in GROUNDS:
            raise InvalidInput(
                f"{ground!r} is not a ground for restriction ({', '.join(GROUNDS)})",
                field="ground",
            )
        async with self.kith.unit_of_work(actor) as uow:
            if not await ContactService(self.kith).exists(contact_id):
                raise NotFound(f"contact {contact_id} does not exist")
            current = await self.active(contact_id)
            if current is not None:
                return await self._out(current), False
            restriction_id = new_id()
            await Restriction.insert(
                Restriction(
                    id=restriction_id,
                    contact_id=contact_id,
                    ground=ground,
                    request_id=request_id,
                    started_at=utcnow(),
                    started_by=actor.ref,
                )
            ).run()
            await AuditLog(self.kith).record(
                contact_id,
                "restrict",
                actor=actor,
                channel=channel,
                request_id=request_id,
                details={"ground": ground},
            )
            uow.publish(
                "subject.restricted",
                contact_id,
                contact_id=str(contact_id),
                ground=ground,
            )
        row = await Restriction.select().where(Restriction.id == restriction_id).first().run()
        assert row is not None
        log.info("contact restricted", contact_id=str(contact_id), ground=ground)
        return await self._out(row), True

    async def lift(
        self, contact_id: uuid.UUID, notice: str, actor: Actor = SYSTEM, channel: str = "api"
    ) -> RestrictionOut:
        """Lift the active restriction, recording how the person was told beforehand."""
        text = (notice or "").strip()
        if not text:
            raise InvalidInput(
                "say how and when the person was told that the restriction will be lifted "
                "(Art. 18(3) GDPR)",
                field="notice",
            )
        if len(text) > MAX_NOTICE:
            raise InvalidInput(f"the notice is at most {MAX_NOTICE} characters", field="notice")
        async with self.kith.unit_of_work(actor) as uow:
            row = await self.active(contact_id)
            if row is None:
                raise Conflict(f"contact {contact_id} is not restricted")
            sealed = await self.kith.protector.protect(
                contact_id,
                TABLE,
                row["id"],
                {"lift_notice": text},  # type: ignore[arg-type]
            )
            await (
                Restriction.update(
                    {
                        Restriction.lifted_at: utcnow(),
                        Restriction.lifted_by: actor.ref,
                        Restriction.lift_notice: sealed["lift_notice"],
                    }
                )
                .where(Restriction.id == row["id"])
                .run()
            )
            await AuditLog(self.kith).record(
                contact_id, "restriction_lifted", actor=actor, channel=channel
            )
            uow.publish("subject.restriction_lifted", contact_id, contact_id=str(contact_id))
        lifted = await Restriction.select().where(Restriction.id == row["id"]).first().run()
        assert lifted is not None
        return await self._out(lifted)

    async def history(self, contact_id: uuid.UUID) -> list[RestrictionOut]:
        rows = await (
            Restriction.select()
            .where(Restriction.contact_id == contact_id)
            .order_by(Restriction.started_at)
            .run()
        )
        return [await self._out(row) for row in rows]

    async def _out(self, row: dict[str, object]) -> RestrictionOut:
        notice = None
        if row["lift_notice"] is not None:
            notice = (
                await self.kith.protector.reveal(
                    row["contact_id"],  # type: ignore[arg-type]
                    TABLE,
                    row["id"],  # type: ignore[arg-type]
                    {"lift_notice": row["lift_notice"]},  # type: ignore[dict-item]
                )
            )["lift_notice"]
        ground = str(row["ground"])
        return RestrictionOut(
            id=row["id"],  # type: ignore[arg-type]
            contact_id=row["contact_id"],  # type: ignore[arg-type]
            ground=ground,
            ground_text=GROUNDS.get(ground, ground),
            request_id=row["request_id"],  # type: ignore[arg-type]
            started_at=row["started_at"],  # type: ignore[arg-type]
            started_by=str(row["started_by"]),
            lifted_at=row["lifted_at"],  # type: ignore[arg-type]
            lifted_by=row["lifted_by"],  # type: ignore[arg-type]
            lift_notice=notice,
        )
