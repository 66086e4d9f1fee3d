"""The data subject requests in the web UI, for compliance officers and admins: the list (overdue
first) with a form to record a new request, and a request's page that walks it through
verify → preview → approve → run, with its history and the downloads of its access package and
certificate. The same services as ``/api/privacy/requests`` and ``kith privacy requests``."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

import msgspec
from kith import ContactPatch, FieldOut, InvalidInput, KithError, NavLink, NotFound, Role
from kith.http import current_actor, roles
from kith.privacy.requests.certificates import CertificateService
from kith.privacy.requests.service import (
    CORRECTABLE_STATES,
    REQUEST_KINDS,
    RequestCreate,
    RequestService,
)
from kith.privacy.rights.export import ExportService
from kith.privacy.rights.pages import staff_names
from kith.privacy.rights.rectification import fields_of
from kith.privacy.rights.restriction import GROUNDS
from kith.privacy.rights.routes import package_stream
from kith.web import (
    N_,
    WEB,
    convert_form,
    declared_fields,
    field_values,
    form_of,
    kith_of,
    posted_fields,
    render,
    see_other,
    shown_fields,
    t,
)
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

COMPLIANCE = roles(Role.COMPLIANCE)
LIST = "/compliance/requests"
NAVIGATION = (
    NavLink(path=LIST, label=N_("Data subject requests"), roles=frozenset({Role.COMPLIANCE})),
)
# The requests answered with a package the person is given.
PACKAGE_KINDS = ("access", "portability")
# The person's own details a rectification corrects on the page (as on the command line),
# with the custom fields declared for contacts; the API takes the other fields of a contact
# too, and the page keeps those as they are.
CORRECTION_FIELDS = ("given_name", "family_name", "name", "emails", "phones")


def _service(request: Request[Any, Any, Any]) -> RequestService:
    return RequestService(kith_of(request))


async def _list_page(
    request: Request[Any, Any, Any],
    closed: bool = False,
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Template:
    requests = await _service(request).list(include_closed=closed)
    return render(
        request,
        "requests/list.html",
        status=status,
        requests=requests,
        closed=closed,
        kinds=REQUEST_KINDS,
        grounds=GROUNDS,
        values=values or {},
        error=error,
    )


@get(LIST, opt=COMPLIANCE)
async def requests_page(
    request: Request[Any, Any, Any], closed: FromQuery[bool] = False
) -> Template:
    return await _list_page(request, closed)


def _received_at(request: Request[Any, Any, Any], text: str) -> dt.datetime | None:
    """The start of the day of receipt in the installation's time zone (None: now)."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            t(request, "Give the date as YYYY-MM-DD."), field="received_on"
        ) from None
    zone = zoneinfo.ZoneInfo(kith_of(request).settings.timezone)
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone)


def _contact_id(request: Request[Any, Any, Any], text: str) -> uuid.UUID | None:
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInput(t(request, "That is not a contact id."), field="contact_id") from None


def _new_request(request: Request[Any, Any, Any], values: dict[str, str]) -> RequestCreate:
    kind = values.get("kind", "")
    if kind not in REQUEST_KINDS:
        raise InvalidInput(t(request, "Choose the type of request."), field="kind")
    parameters = (
        {"ground": values["ground"]} if kind == "restriction" and values.get("ground") else {}
    )
    return RequestCreate(
        kind=kind,  # type: ignore[arg-type]
        contact_id=_contact_id(request, values.get("contact_id", "")),
        email=values.get("email") or None,
        phone=values.get("phone") or None,
        received_at=_received_at(request, values.get("received_on", "")),
        note=values.get("note") or None,
        parameters=parameters,
    )


@post(LIST, opt=COMPLIANCE)
async def record_request(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_of(request)
    try:
        created = await _service(request).create(
            _new_request(request, values), current_actor(request)
        )
    except KithError as exc:
        return await _list_page(request, status=exc.status_code, error=exc.detail, values=values)
    return see_other(f"{LIST}/{created.id}")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _correction_values(patch: ContactPatch | None) -> dict[str, str]:
    """The form's inputs for stored corrections (empty: the field is not corrected)."""
    values: dict[str, str] = {}
    if patch is None:
        return values
    for name in ("given_name", "family_name", "name"):
        value = getattr(patch, name)
        if isinstance(value, str) and value:
            values[name] = value
    if patch.emails:
        values["emails"] = "\n".join(e.address for e in patch.emails)
    if patch.phones:
        values["phones"] = "\n".join(p.number for p in patch.phones)
    return values


def _stored_fields(patch: ContactPatch | None) -> dict[str, Any]:
    """The custom field values a patch sets (None: the value is removed)."""
    if patch is None or not isinstance(patch.fields, dict):
        return {}
    return patch.fields


def _corrections(
    values: dict[str, str],
    typed_fields: dict[str, Any],
    declared: list[FieldOut],
    stored: ContactPatch | None,
) -> ContactPatch:
    """The corrections as typed, over the stored ones' other fields (set through the API),
    which the page does not show and so must not drop."""
    patch: dict[str, Any] = msgspec.to_builtins(stored) if stored is not None else {}
    for name in CORRECTION_FIELDS:
        patch.pop(name, None)
    for name in ("given_name", "family_name", "name"):
        if values.get(name):
            patch[name] = values[name]
    # The first of the list is the main one, as on the contact's own form.
    emails = _lines(values.get("emails", ""))
    if emails:
        patch["emails"] = [{"address": a, "primary": i == 0} for i, a in enumerate(emails)]
    phones = _lines(values.get("phones", ""))
    if phones:
        patch["phones"] = [{"number": n, "primary": i == 0} for i, n in enumerate(phones)]
    shown = {field.name for field in declared}
    fields = {name: value for name, value in _stored_fields(stored).items() if name not in shown}
    fields.update(typed_fields)
    patch.pop("fields", None)
    if fields:
        patch["fields"] = fields
    return convert_form(patch, ContactPatch)


def _field_summary(
    request: Request[Any, Any, Any], declared: list[FieldOut], stored: dict[str, Any]
) -> list[tuple[str, str]]:
    """(label, value) of the custom fields the stored corrections set, as the page shows."""
    corrected = [field for field in declared if field.name in stored]
    shown = shown_fields(request, corrected, stored)
    words = {"true": t(request, "yes"), "false": t(request, "no")}
    summary = []
    for field in corrected:
        value = shown[field.name]
        if stored[field.name] is None:
            text = t(request, "(removed)")
        elif isinstance(value, list):
            text = ", ".join(value)
        else:
            text = words.get(value, value) if field.type == "boolean" else value
        summary.append((field.label or field.name, text))
    return summary


async def _request_page(
    request: Request[Any, Any, Any],
    request_id: uuid.UUID,
    status: int = 200,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    typed_fields: dict[str, str | list[str]] | None = None,
) -> Template:
    """The request's page; ``typed`` and ``typed_fields``: the corrections as posted, shown
    again after a refusal."""
    service = _service(request)
    detail = await service.detail(request_id)
    package = None
    if detail.request.kind in PACKAGE_KINDS and detail.request.state == "done":
        package = await ExportService(kith_of(request)).for_request(request_id)
    stored = None
    declared: list[FieldOut] = []
    if detail.request.kind == "rectification":
        stored = await service.corrections(request_id, current_actor(request), WEB)
        declared = await declared_fields(request)
    saved = _correction_values(stored)
    saved_fields = _stored_fields(stored)
    shown = {field.name for field in declared}
    # Fields set through the API that the form does not show: named, so none goes unseen.
    on_the_form = {*CORRECTION_FIELDS, *(f"fields.{name}" for name in shown)}
    others = [f for f in (fields_of(stored) if stored else []) if f not in on_the_form]
    return render(
        request,
        "requests/request.html",
        status=status,
        item=detail.request,
        transitions=detail.transitions,
        extensions=detail.extensions,
        people=await staff_names(kith_of(request)),
        package=package,
        grounds=GROUNDS,
        error=error,
        correctable=CORRECTABLE_STATES,
        saved=saved,
        saved_fields=_field_summary(request, declared, saved_fields),
        others=others,
        declared=declared,
        corrections=saved if typed is None else typed,
        custom_corrections=(
            shown_fields(request, declared, saved_fields) if typed_fields is None else typed_fields
        ),
        typed=typed is not None,
    )


@get(LIST + "/{request_id:uuid}", opt=COMPLIANCE)
async def request_page(
    request: Request[Any, Any, Any], request_id: FromPath[uuid.UUID]
) -> Template:
    return await _request_page(request, request_id)


def _months(request: Request[Any, Any, Any], text: str) -> int:
    if text not in ("1", "2"):
        raise InvalidInput(t(request, "An extension is 1 or 2 months."), field="months")
    return int(text)


STEPS = ("verify", "correct", "preview", "approve", "run", "reject", "extend")


@post(LIST + "/{request_id:uuid}/{step:str}", opt=COMPLIANCE)
async def request_step(
    request: Request[Any, Any, Any], request_id: FromPath[uuid.UUID], step: FromPath[str]
) -> Template | Redirect:
    """One step of the request, as its API route takes it; a refusal (a step the state does
    not allow, the same officer approving twice, a correction that is not valid) is shown on
    the request's page, with the corrections as typed."""
    if step not in STEPS:
        raise NotFound(t(request, "A request has no such step."))
    values = await form_of(request)
    service = _service(request)
    actor = current_actor(request)
    declared: list[FieldOut] = []
    posted: dict[str, str | list[str]] = {}
    if step == "correct":
        declared = await declared_fields(request)
        posted = await posted_fields(request, declared)
    try:
        if step == "verify":
            await service.verify(request_id, values.get("method", ""), actor)
        elif step == "correct":
            typed_fields = field_values(request, declared, posted, clear_empty=False)
            stored = await service.corrections(request_id, actor, WEB)
            patch = _corrections(values, typed_fields, declared, stored)
            await service.set_corrections(request_id, patch, actor)
        elif step == "preview":
            await service.preview(request_id, actor)
        elif step == "approve":
            await service.approve(request_id, actor)
        elif step == "run":
            await service.run(request_id, actor)
        elif step == "reject":
            await service.reject(request_id, values.get("reason", ""), actor)
        else:
            months = _months(request, values.get("months", ""))
            await service.extend(request_id, months, values.get("reason", ""), actor)
    except KithError as exc:
        if step != "correct":
            return await _request_page(request, request_id, exc.status_code, exc.detail)
        return await _request_page(request, request_id, exc.status_code, exc.detail, values, posted)
    return see_other(f"{LIST}/{request_id}")


@get(LIST + "/{request_id:uuid}/package", opt=COMPLIANCE, media_type="application/zip")
async def package_download(
    request: Request[Any, Any, Any], request_id: FromPath[uuid.UUID]
) -> Stream:
    """The access package as the person is given it (the hand-out is audited)."""
    download = await ExportService(kith_of(request)).request_download(
        request_id, actor=current_actor(request), channel=WEB
    )
    return package_stream(download)


@get(LIST + "/{request_id:uuid}/certificate", opt=COMPLIANCE)
async def certificate_download(
    request: Request[Any, Any, Any], request_id: FromPath[uuid.UUID]
) -> Response[bytes]:
    """The signed certificate as a file, the same JSON as the API's."""
    signed = await CertificateService(kith_of(request)).for_request(request_id)
    return Response(
        signed.to_json(),
        media_type="application/json",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="certificate-{request_id}.json"',
        },
    )


PAGES: list[Any] = [
    requests_page,
    record_request,
    request_page,
    request_step,
    package_download,
    certificate_download,
]
