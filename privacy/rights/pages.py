"""Data subject rights in the web UI, for compliance officers and admins: finding a person by
email or phone (with the address's place on the suppression list), a contact's audit log and
suppression status, the retention rules' dry run, and the record of processing. The same
services as ``/api/privacy/...`` and ``kith privacy ...``."""

from __future__ import annotations

import uuid
from typing import Any

from kith import (
    ContactOut,
    ContactService,
    Kith,
    KithError,
    NavLink,
    NotFound,
    Role,
    UserService,
)
from kith.http import current_actor, roles
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.retention import RetentionRunner
from kith.privacy.rights.ropa import build_record, custom_fields, to_json, to_markdown
from kith.privacy.rights.settings import rights_settings
from kith.privacy.rights.suppression import SuppressionList, SuppressionStatus
from kith.web import N_, WEB, kith_of, render
from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

COMPLIANCE = roles(Role.COMPLIANCE)
SUBJECTS = "/compliance/subjects"
NAVIGATION = (
    NavLink(path=SUBJECTS, label=N_("Find a person"), roles=frozenset({Role.COMPLIANCE})),
    NavLink(
        path="/compliance/retention", label=N_("Retention"), roles=frozenset({Role.COMPLIANCE})
    ),
    NavLink(
        path="/compliance/ropa",
        label=N_("Record of processing"),
        roles=frozenset({Role.COMPLIANCE}),
    ),
)
AUDIT_SHOWN = 200
# Found by an email or phone: one person, rarely a handful.
MATCHES_SHOWN = 20


async def staff_names(kith: Kith) -> dict[str, str]:
    """How actors are shown: a user's email for their ``user:<id>`` reference."""
    return {f"user:{user.id}": user.email for user in await UserService(kith).list()}


@get(SUBJECTS, opt=COMPLIANCE)
async def subjects_page(request: Request[Any, Any, Any], q: FromQuery[str] = "") -> Template:
    """An email or phone: the contacts holding it (an audited read, as the contact list) and
    whether it is on the suppression list, which still knows people who were erased."""
    kith = kith_of(request)
    text = q.strip()
    error = None
    status: SuppressionStatus | None = None
    contacts: list[ContactOut] = []
    if text:
        try:
            status = await SuppressionList(kith).address_status(text)
            found = await ContactService(kith, WEB).list(
                q=status.value, limit=MATCHES_SHOWN, actor=current_actor(request)
            )
            contacts = found.items
        except KithError as exc:
            error = exc.detail
    return render(
        request,
        "rights/subjects.html",
        status=200 if error is None else 422,
        q=text,
        suppression=status,
        contacts=contacts,
        error=error,
    )


@get("/compliance/contacts/{contact_id:uuid}", opt=COMPLIANCE)
async def contact_page(
    request: Request[Any, Any, Any], contact_id: FromPath[uuid.UUID]
) -> Template:
    """Who read, exported, changed or erased the contact's data, and whether their emails and
    phones are on the suppression list. An erased contact keeps its audit log."""
    kith = kith_of(request)
    try:
        contact: ContactOut | None = await ContactService(kith, WEB).get(
            contact_id, current_actor(request)
        )
    except NotFound:
        contact = None
    return render(
        request,
        "rights/contact.html",
        contact_id=contact_id,
        contact=contact,
        entries=await AuditLog(kith).entries(contact_id, limit=AUDIT_SHOWN),
        shown=AUDIT_SHOWN,
        suppression=await SuppressionList(kith).status_of(contact_id) if contact else [],
        overrides=await SuppressionList(kith).overrides(contact_id),
        people=await staff_names(kith),
    )


@get("/compliance/retention", opt=COMPLIANCE)
async def retention_page(request: Request[Any, Any, Any]) -> Template:
    """The retention rules and what they would delete if they ran now (changes nothing)."""
    kith = kith_of(request)
    report = await RetentionRunner(kith).run(
        dry_run=True, actor=current_actor(request), channel=WEB
    )
    return render(
        request,
        "rights/retention.html",
        rules=rights_settings(kith.settings).retention_rules(),
        report=report,
    )


@get("/compliance/ropa", opt=COMPLIANCE)
async def ropa_page(request: Request[Any, Any, Any]) -> Template:
    kith = kith_of(request)
    return render(request, "rights/ropa.html", record=build_record(kith, await custom_fields(kith)))


@get("/compliance/ropa.md", opt=COMPLIANCE)
async def ropa_markdown(request: Request[Any, Any, Any]) -> Response[str]:
    kith = kith_of(request)
    return Response(
        to_markdown(build_record(kith, await custom_fields(kith))),
        media_type="text/markdown",
        headers={"Content-Disposition": 'attachment; filename="record-of-processing.md"'},
    )


@get("/compliance/ropa.json", opt=COMPLIANCE)
async def ropa_json(request: Request[Any, Any, Any]) -> Response[bytes]:
    kith = kith_of(request)
    return Response(
        to_json(build_record(kith, await custom_fields(kith))),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="record-of-processing.json"'},
    )


PAGES: list[Any] = [
    subjects_page,
    contact_page,
    retention_page,
    ropa_page,
    ropa_markdown,
    ropa_json,
]
