"""Data subject requests: access, portability, rectification, restriction and erasure.

A request moves through a fixed state machine, every step recorded with who and when::

    received → verified → previewed → approved → running → done
         \\________\\__________\\__________\\→ rejected

``verified`` needs the identity check; ``previewed`` asks the request type's executor what it
will touch; ``approved`` may need a second compliance user (``privacy.four_eyes``);
``running`` hands the request to its type's executor (:mod:`kith.privacy.requests.executors`),
which may be interrupted and run again (``run`` on a running request resumes it); ``done``
issues a signed certificate.

A run holds a lease on its request (``request_lease_seconds``, renewed while it works), so two
processes never carry one request out at once. A process that dies leaves the lease to run
out; then the worker (``kith worker``, or ``kith serve`` when it dispatches) resumes the
request, once per lease: a resumed run that fails again waits another lease before the next.

The deadline is one calendar month from the day of receipt (in the installation's time zone),
extendable by up to two months in total, each extension with its reason.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import os
import secrets
import socket
import uuid
from typing import Any, Literal

import msgspec
from kith import (
    SYSTEM,
    Actor,
    Conflict,
    ContactPatch,
    ContactService,
    InvalidInput,
    Kith,
    NotFound,
    PermissionDenied,
    Role,
    get_logger,
    new_id,
    normalize_email,
    normalize_phone,
    utcnow,
)
from kith.privacy.requests import deadlines
from kith.privacy.requests.executors import EXECUTORS, RequestJob
from kith.privacy.requests.settings import request_settings
from kith.privacy.requests.subject_hash import subject_hash
from kith.privacy.requests.tables import (
    RequestExtension,
    RequestTransition,
    SubjectRequest,
)
from kith.privacy.rights.outcomes import CertificateEntry, PlannedAction
from kith.privacy.rights.rectification import RectificationService

RequestKind = Literal["access", "portability", "rectification", "restriction", "erasure"]
RequestState = Literal[
    "received", "verified", "previewed", "approved", "running", "done", "rejected"
]
REQUEST_KINDS: tuple[str, ...] = (
    "access",
    "portability",
    "rectification",
    "restriction",
    "erasure",
)
STATES: tuple[str, ...] = (
    "received",
    "verified",
    "previewed",
    "approved",
    "running",
    "done",
    "rejected",
)
OPEN_STATES: tuple[str, ...] = ("received", "verified", "previewed", "approved", "running")
TERMINAL_STATES: tuple[str, ...] = ("done", "rejected")

# Which state each transition leads from. A preview may be refreshed before approval; a
# running request can be neither rejected nor re-previewed, only resumed to its end.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("verified", "rejected"),
    "verified": ("previewed", "rejected"),
    "previewed": ("previewed", "approved", "rejected"),
    "approved": ("running", "rejected"),
    "running": ("done",),
    "done": (),
    "rejected": (),
}
NEXT_STEP = {
    "received": "verify the person's identity",
    "verified": "preview what the request will touch",
    "previewed": "approve it",
    "approved": "run it",
    "running": "run it again to resume",
}
# A running request whose run holds its lease needs nobody.
BEING_RUN = "none: it is being carried out (if that run stops, the worker resumes it)"
MAX_NOTE_CHARS = 2000
# A rectification's corrections are set while it can still be previewed again.
CORRECTABLE_STATES = ("received", "verified", "previewed")
REQUEST_TABLE = SubjectRequest._meta.tablename
TRANSITION_TABLE = RequestTransition._meta.tablename
EXTENSION_TABLE = RequestExtension._meta.tablename

log = get_logger("kith.privacy.requests")

# -- what services return --------------------------------------------------------------------


class TransitionOut(msgspec.Struct, kw_only=True):
    from_state: str | None
    to_state: str
    actor: str
    at: dt.datetime
    note: str | None = None


class ExtensionOut(msgspec.Struct, kw_only=True):
    months: int
    reason: str
    due_before: dt.date
    due_after: dt.date
    actor: str
    at: dt.datetime


class SubjectRequestOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: RequestKind
    state: RequestState
    contact_id: uuid.UUID | None
    subject_kind: str
    received_at: dt.datetime
    received_on: dt.date
    due_on: dt.date
    days_left: int
    overdue: bool
    extension_months: int
    identity_status: str
    identity_method: str | None
    identity_verified_by: str | None
    identity_verified_at: dt.datetime | None
    created_by: str
    previewed_by: str | None
    approved_by: str | None
    note: str | None
    parameters: dict[str, Any]
    preview: list[PlannedAction] | None
    progress: dict[str, Any]
    outcome: list[CertificateEntry] | None
    last_error: str | None
    next_step: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None


class SubjectRequestDetail(msgspec.Struct, kw_only=True):
    request: SubjectRequestOut
    transitions: list[TransitionOut]
    extensions: list[ExtensionOut]


class RequestCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new request. The subject is a contact id, or an email or phone number that is looked
    up through the blind index (and never stored readable)."""

    kind: RequestKind
    contact_id: uuid.UUID | None = None
    email: str | None = None
    phone: str | None = None
    received_at: dt.datetime | None = None
    note: str | None = None
    parameters: dict[str, Any] = {}


# -- the service -------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    # piccolo hands JSON columns back as text on some engines and as objects on others.
    if isinstance(value, str):
        return msgspec.json.decode(value)
    return value


def _check_note(text: str | None, field: str, required: bool = False) -> str | None:
    value = (text or "").strip()
    if not value:
        if required:
            raise InvalidInput(f"{field} cannot be empty", field=field)
        return None
    if len(value) > MAX_NOTE_CHARS:
        raise InvalidInput(f"{field} is at most {MAX_NOTE_CHARS} characters", field=field)
    return value


class RequestService:
    """Creates subject requests and moves them through their states."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    @property
    def _timezone(self) -> str:
        return self.kith.settings.timezone

    def today(self) -> dt.date:
        return deadlines.local_date(utcnow(), self._timezone)

    # Leases are read against the event bus's clock, which tests move on to reach an expiry.
    def _now(self) -> dt.datetime:
        return self.kith.bus.clock()

    @property
    def _lease(self) -> dt.timedelta:
        return dt.timedelta(seconds=request_settings(self.kith.settings).request_lease_seconds)

    def _leased(self, row: dict[str, Any]) -> bool:
        """Whether a live run holds the request now."""
        until = row.get("lease_until")
        return row.get("lease_owner") is not None and until is not None and until > self._now()

    # Free text (notes, reasons, verification method) may name the person, so it is stored
    # through the protector under the subject's key: erasing the subject erases it too.
    def _subject_key(self, contact_id: uuid.UUID | None, request_id: uuid.UUID) -> uuid.UUID:
        return contact_id or request_id

    async def _seal(
        self,
        contact_id: uuid.UUID | None,
        request_id: uuid.UUID,
        table: str,
        row_id: uuid.UUID,
        values: dict[str, str | None],
    ) -> dict[str, str | None]:
        present = {k: v for k, v in values.items() if v is not None}
        if not present:
            return dict(values)
        sealed = await self.kith.protector.protect(
            self._subject_key(contact_id, request_id), table, row_id, present
        )
        return {**values, **sealed}

    async def _open(
        self,
        contact_id: uuid.UUID | None,
        request_id: uuid.UUID,
        table: str,
        row_id: uuid.UUID,
        values: dict[str, str | None],
    ) -> dict[str, str | None]:
        present = {k: v for k, v in values.items() if v is not None}
        if not present:
            return dict(values)
        # A destroyed key reads as "[erased]" already; anything else (a value altered, the key
        # service down) is an error to see, not a person to report as erased.
        opened = await self.kith.protector.reveal(
            self._subject_key(contact_id, request_id), table, row_id, present
        )
        return {**values, **opened}

    # -- subjects ------------------------------------------------------------------------------

    async def resolve_subject(
        self, contact_id: uuid.UUID | None, email: str | None, phone: str | None
    ) -> tuple[uuid.UUID | None, str | None, str]:
        """(contact id, lookup key, kind of reference) for the subject of a new request."""
        given = [
            name
            for name, v in (("contact_id", contact_id), ("email", email), ("phone", phone))
            if v
        ]
        if len(given) != 1:
            raise InvalidInput(
                "name the subject with exactly one of contact_id, email or phone",
                field="contact_id",
            )
        if contact_id is not None:
            if not await ContactService(self.kith).exists(contact_id):
                raise NotFound(f"contact {contact_id} does not exist")
            return contact_id, None, "contact"
        if email:
            kind, value = "email", normalize_email(email, field="email")
        else:
            kind = "phone"
            value = normalize_phone(phone or "", self.kith.settings.default_region, "phone")
        holders = sorted(await ContactService(self.kith).find_ids_by(kind, value), key=str)
        if len(holders) > 1:
            raise Conflict(
                f"{len(holders)} contacts have this {kind}; name the subject by contact_id",
                field=kind,
                contact_ids=[str(h) for h in holders],
            )
        if holders:
            # The contact id names them; a hash of the address beside it would only outlive
            # them (erasure cannot destroy a keyed hash the way it destroys their data key).
            return holders[0], None, kind
        # Nobody found is a valid answer for an access request ("we hold nothing"), so the
        # request is kept with only a keyed hash of the address, under a key of its own.
        return None, await subject_hash(self.kith, kind, value), kind

    # -- reading -------------------------------------------------------------------------------

    async def _row(self, request_id: uuid.UUID) -> dict[str, Any]:
        row = await SubjectRequest.select().where(SubjectRequest.id == request_id).first()
        if row is None:
            raise NotFound(f"subject request {request_id} does not exist")
        return row

    async def _out(self, row: dict[str, Any], today: dt.date | None = None) -> SubjectRequestOut:
        today = today or self.today()
        opened = await self._open(
            _sealed_for(row),
            row["id"],
            REQUEST_TABLE,
            row["id"],
            {
                "note": row["note"],
                "identity_method": row["identity_method"],
                "last_error": row["last_error"],
            },
        )
        left = deadlines.days_left(row["due_on"], today)
        open_ = row["state"] in OPEN_STATES
        preview = _json(row["preview"])
        outcome = _json(row["outcome"])
        return SubjectRequestOut(
            id=row["id"],
            kind=row["kind"],
            state=row["state"],
            contact_id=row["contact_id"],
            subject_kind=row["subject_kind"],
            received_at=row["received_at"],
            received_on=row["received_on"],
            due_on=row["due_on"],
            days_left=left,
            overdue=open_ and left < 0,
            extension_months=row["extension_months"],
            identity_status=row["identity_status"],
            identity_method=opened["identity_method"],
            identity_verified_by=row["identity_verified_by"],
            identity_verified_at=row["identity_verified_at"],
            created_by=row["created_by"],
            previewed_by=row["previewed_by"],
            approved_by=row["approved_by"],
            note=opened["note"],
            parameters=_json(row["parameters"]) or {},
            preview=msgspec.convert(preview, list[PlannedAction]) if preview is not None else None,
            progress=_json(row["progress"]) or {},
            outcome=msgspec.convert(outcome, list[CertificateEntry])
            if outcome is not None
            else None,
            last_error=opened["last_error"],
            next_step=BEING_RUN if self._leased(row) else NEXT_STEP.get(row["state"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            closed_at=row["closed_at"],
        )

    async def get(self, request_id: uuid.UUID) -> SubjectRequestOut:
        return await self._out(await self._row(request_id))

    async def detail(self, request_id: uuid.UUID) -> SubjectRequestDetail:
        row = await self._row(request_id)
        request = await self._out(row)
        transitions = []
        for t in (
            await RequestTransition.select()
            .where(RequestTransition.request == request_id)
            .order_by(RequestTransition.at)
            .order_by(RequestTransition.id)
        ):
            opened = await self._open(
                t["sealed_for"] or _sealed_for(row),
                request_id,
                TRANSITION_TABLE,
                t["id"],
                {"note": t["note"]},
            )
            transitions.append(
                TransitionOut(
                    from_state=t["from_state"],
                    to_state=t["to_state"],
                    actor=t["actor"],
                    at=t["at"],
                    note=opened["note"],
                )
            )
        extensions = []
        for e in (
            await RequestExtension.select()
            .where(RequestExtension.request == request_id)
            .order_by(RequestExtension.at)
        ):
            opened = await self._open(
                e["sealed_for"] or _sealed_for(row),
                request_id,
                EXTENSION_TABLE,
                e["id"],
                {"reason": e["reason"]},
            )
            extensions.append(
                ExtensionOut(
                    months=e["months"],
                    reason=opened["reason"] or "",
                    due_before=e["due_before"],
                    due_after=e["due_after"],
                    actor=e["actor"],
                    at=e["at"],
                )
            )
        return SubjectRequestDetail(request=request, transitions=transitions, extensions=extensions)

    async def list(
        self,
        *,
        include_closed: bool = False,
        state: str | None = None,
        kind: str | None = None,
        contact_id: uuid.UUID | None = None,
    ) -> list[SubjectRequestOut]:
        """Requests by due date, so overdue ones come first; closed ones only if asked."""
        query = SubjectRequest.select()
        if state is not None:
            if state not in STATES:
                raise InvalidInput(f"{state!r} is not a state ({', '.join(STATES)})", "state")
            query = query.where(SubjectRequest.state == state)
        elif not include_closed:
            query = query.where(SubjectRequest.state.is_in(list(OPEN_STATES)))
        if kind is not None:
            if kind not in REQUEST_KINDS:
                raise InvalidInput(
                    f"{kind!r} is not a request type ({', '.join(REQUEST_KINDS)})", "kind"
                )
            query = query.where(SubjectRequest.kind == kind)
        if contact_id is not None:
            query = query.where(SubjectRequest.contact_id == contact_id)
        rows = await query.order_by(SubjectRequest.due_on).order_by(SubjectRequest.received_at)
        today = self.today()
        out = [await self._out(row, today) for row in rows]
        # Open requests by urgency; closed ones after them.
        out.sort(key=lambda r: (r.state in TERMINAL_STATES, r.due_on, r.received_at))
        return out

    # -- writing -------------------------------------------------------------------------------

    @staticmethod
    def _check_transition(row: dict[str, Any], to_state: str) -> None:
        """Refuse a step the state machine does not allow, saying what would be allowed."""
        from_state = row["state"]
        if to_state not in TRANSITIONS[from_state]:
            allowed = TRANSITIONS[from_state]
            if from_state in TERMINAL_STATES:
                why = f"the request is already {from_state}"
            else:
                why = (
                    f"from {from_state} it can only become {' or '.join(allowed)}; "
                    f"next: {NEXT_STEP[from_state]}"
                )
            raise Conflict(
                f"request {row['id']} cannot become {to_state}: {why}",
                state=from_state,
                allowed=list(allowed),
            )

    async def _transition(
        self,
        row: dict[str, Any],
        to_state: str,
        actor: Actor,
        note: str | None = None,
        changes: dict[Any, Any] | None = None,
    ) -> None:
        """Move one request to ``to_state`` (inside the caller's unit of work), refusing any
        step the state machine does not allow."""
        self._check_transition(row, to_state)
        from_state = row["state"]
        now = utcnow()
        # Compare-and-set on the state: of two people acting at once, one wins and the
        # other is told the request moved on.
        values: dict[Any, Any] = {
            SubjectRequest.state: to_state,
            SubjectRequest.updated_at: now,
            **(changes or {}),
        }
        if to_state in TERMINAL_STATES:
            values[SubjectRequest.closed_at] = now
        updated = (
            await SubjectRequest.update(values)
            .where((SubjectRequest.id == row["id"]) & (SubjectRequest.state == from_state))
            .returning(SubjectRequest.id)
        )
        if not updated:
            raise Conflict(
                f"request {row['id']} changed while this was being done; look at it again"
            )
        transition_id = new_id()
        sealed = await self._seal(
            row["contact_id"], row["id"], TRANSITION_TABLE, transition_id, {"note": note}
        )
        await RequestTransition.insert(
            RequestTransition(
                id=transition_id,
                request=row["id"],
                from_state=from_state,
                to_state=to_state,
                actor=actor.ref,
                at=now,
                note=sealed["note"],
                sealed_for=self._subject_key(row["contact_id"], row["id"]),
            )
        ).run()

    async def create(self, data: RequestCreate, actor: Actor = SYSTEM) -> SubjectRequestOut:
        """Record a request as received; its deadline runs from the day of receipt."""
        note = _check_note(data.note, "note")
        now = utcnow()
        received_at = data.received_at or now
        if received_at.tzinfo is None:
            raise InvalidInput("received_at needs a time zone", field="received_at")
        if received_at > now + dt.timedelta(minutes=5):
            raise InvalidInput("received_at lies in the future", field="received_at")
        received_on = deadlines.local_date(received_at, self._timezone)
        contact_id, lookup, subject_kind = await self.resolve_subject(
            data.contact_id, data.email, data.phone
        )
        request_id = new_id()
        sealed = await self._seal(contact_id, request_id, REQUEST_TABLE, request_id, {"note": note})
        async with self.kith.unit_of_work(actor) as uow:
            await SubjectRequest.insert(
                SubjectRequest(
                    id=request_id,
                    kind=data.kind,
                    state="received",
                    contact_id=contact_id,
                    subject_lookup=lookup,
                    subject_kind=subject_kind,
                    received_at=received_at,
                    received_on=received_on,
                    due_on=deadlines.due_date(received_on),
                    extension_months=0,
                    identity_status="unverified",
                    created_by=actor.ref,
                    parameters=data.parameters,
                    note=sealed["note"],
                    sealed_for=self._subject_key(contact_id, request_id),
                    progress={},
                    created_at=now,
                    updated_at=now,
                )
            ).run()
            await RequestTransition.insert(
                RequestTransition(
                    id=new_id(),
                    request=request_id,
                    from_state=None,
                    to_state="received",
                    actor=actor.ref,
                    at=now,
                    sealed_for=self._subject_key(contact_id, request_id),
                )
            ).run()
            uow.publish(
                "subject_request.received",
                contact_id,
                request_id=str(request_id),
                kind=data.kind,
            )
        return await self.get(request_id)

    async def verify(
        self, request_id: uuid.UUID, method: str, actor: Actor = SYSTEM
    ) -> SubjectRequestOut:
        """Record how the person's identity was checked (Art. 12(6)); received → verified."""
        checked = _check_note(method, "method", required=True)
        async with self.kith.unit_of_work(actor) as uow:
            row = await self._row(request_id)
            sealed = await self._seal(
                row["contact_id"],
                request_id,
                REQUEST_TABLE,
                request_id,
                {"identity_method": checked},
            )
            await self._transition(
                row,
                "verified",
                actor,
                changes={
                    SubjectRequest.identity_status: "verified",
                    SubjectRequest.identity_method: sealed["identity_method"],
                    SubjectRequest.identity_verified_by: actor.ref,
                    SubjectRequest.identity_verified_at: utcnow(),
                },
            )
            uow.publish("subject_request.verified", row["contact_id"], request_id=str(request_id))
        return await self.get(request_id)

    async def extend(
        self, request_id: uuid.UUID, months: int, reason: str, actor: Actor = SYSTEM
    ) -> SubjectRequestOut:
        """Extend the deadline (Art. 12(3)): at most two more months in total, with a reason
        to tell the person, and only while the request is open and not yet overdue."""
        checked = _check_note(reason, "reason", required=True)
        assert checked is not None
        if months not in (1, 2):
            raise InvalidInput("an extension is 1 or 2 months", field="months")
        async with self.kith.unit_of_work(actor) as uow:
            row = await self._row(request_id)
            if row["state"] not in OPEN_STATES:
                raise Conflict(f"request {request_id} is {row['state']}; it needs no extension")
            total = row["extension_months"] + months
            if total > deadlines.MAX_EXTENSION_MONTHS:
                left = deadlines.MAX_EXTENSION_MONTHS - row["extension_months"]
                raise Conflict(
                    f"a request can be extended by {deadlines.MAX_EXTENSION_MONTHS} months in "
                    f"total; this one has {left} month{'s' if left != 1 else ''} left",
                    field="months",
                )
            if deadlines.days_left(row["due_on"], self.today()) < 0:
                raise Conflict(
                    f"request {request_id} is already overdue (due {row['due_on']}); "
                    "an extension has to be decided, and told to the person, before the deadline"
                )
            due_after = deadlines.due_date(row["received_on"], total)
            extension_id = new_id()
            sealed = await self._seal(
                row["contact_id"], request_id, EXTENSION_TABLE, extension_id, {"reason": checked}
            )
            now = utcnow()
            await RequestExtension.insert(
                RequestExtension(
                    id=extension_id,
                    request=request_id,
                    months=months,
                    reason=sealed["reason"],
                    due_before=row["due_on"],
                    due_after=due_after,
                    actor=actor.ref,
                    at=now,
                    sealed_for=self._subject_key(row["contact_id"], request_id),
                )
            ).run()
            await SubjectRequest.update(
                {
                    SubjectRequest.extension_months: total,
                    SubjectRequest.due_on: due_after,
                    SubjectRequest.updated_at: now,
                }
            ).where(SubjectRequest.id == request_id)
            uow.publish(
                "subject_request.extended",
                row["contact_id"],
                request_id=str(request_id),
                months=months,
                due_on=due_after.isoformat(),
            )
        return await self.get(request_id)

    async def preview(self, request_id: uuid.UUID, actor: Actor = SYSTEM) -> SubjectRequestOut:
        """Ask the executor what the request will touch; verified (or previewed) → previewed."""
        row = await self._row(request_id)
        self._check_transition(row, "previewed")
        executor = EXECUTORS[row["kind"]]
        job = RequestJob(self.kith, await self._out(row), actor)
        planned = await executor.preview(job)
        async with self.kith.unit_of_work(actor) as uow:
            row = await self._row(request_id)
            await self._transition(
                row,
                "previewed",
                actor,
                changes={
                    SubjectRequest.preview: msgspec.to_builtins(planned),
                    SubjectRequest.previewed_by: actor.ref,
                },
            )
            uow.publish("subject_request.previewed", row["contact_id"], request_id=str(request_id))
        return await self.get(request_id)

    async def approve(self, request_id: uuid.UUID, actor: Actor = SYSTEM) -> SubjectRequestOut:
        """previewed → approved. With four-eyes approval on, the approver must be a compliance
        user other than the one who recorded or previewed the request."""
        async with self.kith.unit_of_work(actor) as uow:
            row = await self._row(request_id)
            if request_settings(self.kith.settings).four_eyes:
                self._check_second_pair_of_eyes(row, actor)
            await self._transition(
                row, "approved", actor, changes={SubjectRequest.approved_by: actor.ref}
            )
            uow.publish("subject_request.approved", row["contact_id"], request_id=str(request_id))
        return await self.get(request_id)

    @staticmethod
    def _check_second_pair_of_eyes(row: dict[str, Any], actor: Actor) -> None:
        if actor.kind != "user" or actor.role not in (Role.COMPLIANCE, Role.ADMIN):
            raise PermissionDenied(
                "four-eyes approval is on: a request is approved by a named compliance user "
                "(on the command line, pass --as EMAIL)"
            )
        involved = {row["created_by"], row["previewed_by"]}
        if actor.ref in involved:
            raise PermissionDenied(
                "four-eyes approval is on: the approver must be a different compliance user "
                "from the one who recorded or previewed this request"
            )

    async def set_corrections(
        self, request_id: uuid.UUID, patch: ContactPatch, actor: Actor = SYSTEM
    ) -> builtins.list[str]:
        """Store the corrections a rectification request will make (before approval);
        returns the fields it changes."""
        row = await self._row(request_id)
        if row["kind"] != "rectification":
            raise Conflict(f"request {request_id} is a {row['kind']} request, not a rectification")
        if row["contact_id"] is None:
            raise Conflict("this request names no contact Kith holds; there is nothing to correct")
        if row["state"] not in CORRECTABLE_STATES:
            raise Conflict(
                f"request {request_id} is {row['state']}; corrections are set before approval"
            )
        return await RectificationService(self.kith).set_patch(
            request_id, row["contact_id"], patch, actor
        )

    async def corrections(
        self, request_id: uuid.UUID, actor: Actor = SYSTEM, channel: str = "api"
    ) -> ContactPatch | None:
        """The corrections set on a rectification request (None: none yet, or not a
        rectification); reading them is a read of the person's data, audited."""
        row = await self._row(request_id)
        if row["kind"] != "rectification":
            return None
        return await RectificationService(self.kith).read_patch(
            request_id, actor=actor, channel=channel
        )

    async def reject(
        self, request_id: uuid.UUID, reason: str, actor: Actor = SYSTEM
    ) -> SubjectRequestOut:
        """Close a request without carrying it out (identity not confirmed, manifestly
        unfounded...), with the reason given to the person."""
        checked = _check_note(reason, "reason", required=True)
        async with self.kith.unit_of_work(actor) as uow:
            row = await self._row(request_id)
            await self._transition(row, "rejected", actor, note=checked)
            uow.publish("subject_request.rejected", row["contact_id"], request_id=str(request_id))
        return await self.get(request_id)

    async def run(self, request_id: uuid.UUID, actor: Actor = SYSTEM) -> SubjectRequestOut:
        """approved → running → done: carry the request out and issue its certificate.

        Running a request that is already ``running`` (a crash, a failed step) resumes it:
        executors are idempotent and may read their checkpoint from ``job.progress``. While
        another run holds the request's lease, this is refused with :class:`Conflict`."""
        return await self._run(request_id, actor, worker=False)

    async def resume_stopped(self) -> builtins.list[uuid.UUID]:
        """The worker's job: resume, as the system, every running request whose lease ran out
        (its process died, or its last run failed a lease ago); returns those it ran. A run
        that fails is logged and left for the next expiry."""
        now = self._now()
        rows = await SubjectRequest.select(SubjectRequest.id).where(
            (SubjectRequest.state == "running")
            & (SubjectRequest.lease_until.is_null() | (SubjectRequest.lease_until <= now))
        )
        resumed = []
        for row in rows:
            try:
                await self._run(row["id"], SYSTEM, worker=True)
            except _NotTaken:
                continue
            except Exception as exc:
                # Its last_error (sealed) says what went wrong; the log names ids only.
                log.warning(
                    "subject request resume failed",
                    request_id=str(row["id"]),
                    error_type=type(exc).__name__,
                )
            resumed.append(row["id"])
        return resumed

    async def _take(self, row: dict[str, Any], owner: str, worker: bool) -> None:
        """Take the lease of a running request: refused while a live run holds it; for the
        worker, also until a failed run's lease has run out."""
        now = self._now()
        free = SubjectRequest.lease_until.is_null() | (SubjectRequest.lease_until <= now)
        if not worker:
            # A person may try again at once after a failed run (nobody holds it then).
            free = free | SubjectRequest.lease_owner.is_null()
        taken = (
            await SubjectRequest.update(
                {
                    SubjectRequest.lease_owner: owner,
                    SubjectRequest.lease_until: now + self._lease,
                    SubjectRequest.updated_at: utcnow(),
                }
            )
            .where((SubjectRequest.id == row["id"]) & (SubjectRequest.state == "running") & free)
            .returning(SubjectRequest.id)
        )
        if taken:
            return
        current = await self._row(row["id"])
        if worker:
            raise _NotTaken()
        if current["state"] != "running":
            self._check_transition(current, "running")
        raise Conflict(
            f"request {row['id']} is being carried out by another run (its lease lasts until "
            f"{current['lease_until']:%Y-%m-%d %H:%M:%S} UTC, renewed while it works); if that "
            "run stopped, the worker resumes the request after then, or run it again then",
            state="running",
        )

    async def _renew(self, request_id: uuid.UUID, owner: str, job: asyncio.Task[Any]) -> bool:
        """Renew the lease while ``job`` works. If another run took it (this process stalled
        for longer than a lease), cancel the job and return True: two runs never go on at
        once."""
        every = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                kept = (
                    await SubjectRequest.update(
                        {SubjectRequest.lease_until: self._now() + self._lease}
                    )
                    .where(
                        (SubjectRequest.id == request_id) & (SubjectRequest.lease_owner == owner)
                    )
                    .returning(SubjectRequest.id)
                )
            except Exception as exc:
                # The database is out of reach for now: the next turn tries again.
                log.warning(
                    "subject request lease not renewed",
                    request_id=str(request_id),
                    error_type=type(exc).__name__,
                )
                continue
            if not kept:
                log.warning("subject request lease lost", request_id=str(request_id))
                job.cancel()
                return True

    async def _run(self, request_id: uuid.UUID, actor: Actor, worker: bool) -> SubjectRequestOut:
        row = await self._row(request_id)
        executor = EXECUTORS[row["kind"]]
        owner = _owner()
        if worker and row["state"] != "running":
            raise _NotTaken()  # finished (or never started) since the worker looked
        if row["state"] == "approved":
            async with self.kith.unit_of_work(actor) as uow:
                await self._transition(
                    row,
                    "running",
                    actor,
                    changes={
                        SubjectRequest.lease_owner: owner,
                        SubjectRequest.lease_until: self._now() + self._lease,
                    },
                )
                uow.publish(
                    "subject_request.running", row["contact_id"], request_id=str(request_id)
                )
        elif row["state"] == "running":
            await self._take(row, owner, worker)
        else:
            self._check_transition(row, "running")
        row = await self._row(request_id)
        job = RequestJob(self.kith, await self._out(row), actor)
        work = asyncio.ensure_future(executor.execute(job))
        renewal = asyncio.ensure_future(self._renew(request_id, owner, work))
        try:
            entries = await work
        except asyncio.CancelledError:
            if renewal.done() and not renewal.cancelled() and renewal.result():
                raise Conflict(
                    f"request {request_id} was taken over by another run while this one "
                    "stalled; that run carries it on"
                ) from None
            raise
        except Exception as exc:
            # Stay in running so that the next run resumes; the error says what to fix. It
            # may quote data, so it is sealed like the other free text. The lease is given
            # up, and its time left is when the worker may try again.
            sealed = await self._seal(
                row["contact_id"],
                request_id,
                REQUEST_TABLE,
                request_id,
                {"last_error": f"{type(exc).__name__}: {exc}"[:MAX_NOTE_CHARS]},
            )
            await SubjectRequest.update(
                {
                    SubjectRequest.last_error: sealed["last_error"],
                    SubjectRequest.lease_owner: None,
                    SubjectRequest.lease_until: self._now() + self._lease,
                    SubjectRequest.updated_at: utcnow(),
                }
            ).where((SubjectRequest.id == request_id) & (SubjectRequest.lease_owner == owner))
            raise
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
        async with self.kith.unit_of_work(actor) as uow:
            row = await self._row(request_id)
            await self._transition(
                row,
                "done",
                actor,
                changes={
                    SubjectRequest.outcome: msgspec.to_builtins(entries),
                    SubjectRequest.last_error: None,
                    SubjectRequest.lease_owner: None,
                    SubjectRequest.lease_until: None,
                },
            )
            done = await self._out(await self._row(request_id))
            # Imported here: certificates build on this module (and hold the signing key).
            from kith.privacy.requests.certificates import CertificateService

            await CertificateService(self.kith).issue(done, entries)
            uow.publish("subject_request.done", row["contact_id"], request_id=str(request_id))
        return await self.get(request_id)


class _NotTaken(Exception):
    """The worker found the request taken by another run, or finished, meanwhile."""


def _owner() -> str:
    """Names one run in ``lease_owner``: host, process and a random part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def _sealed_for(row: dict[str, Any]) -> uuid.UUID | None:
    """Whose key sealed a request's text: the contact it was made about, which a merge may
    have changed since (its ``contact_id`` then names the contact it was merged into)."""
    return row["sealed_for"] or row["contact_id"]  # type: ignore[no-any-return]
