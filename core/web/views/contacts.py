"""Contacts: the list with search and filters, the card with its timeline and quick actions,
new and edit forms, archive, export. Every rule is the services'; a page only maps the form
to the service's input and shows the answer."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from kith.errors import InvalidInput, KithError
from kith.http.auth import current_actor
from kith.http.routes.contacts import field_filters
from kith.schemas import (
    ContactCreate,
    ContactOut,
    ContactPatch,
    EmailIn,
    FieldOut,
    InteractionCreate,
    PhoneIn,
)
from kith.services.contacts import ContactFilter, ContactService
from kith.services.exports import ExportService
from kith.services.fields import FieldService
from kith.services.interactions import InteractionService
from kith.web.i18n import t
from kith.web.views.common import READERS, STAFF, WEB, form_of, kith_of, render, see_other
from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

PAGE_SIZE = 25
TIMELINE_SIZE = 50
QUICK_KINDS = ("note", "call", "task")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def _local_time(request: Request[Any, Any, Any], text: str, field: str) -> dt.datetime | None:
    """A ``datetime-local`` input, read in the installation's time zone."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(t(request, "Give a date and time."), field=field) from None
    zone = zoneinfo.ZoneInfo(kith_of(request).settings.timezone)
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _contact_input(values: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": values.get("kind") or "person",
        "name": values.get("name") or None,
        "given_name": values.get("given_name") or None,
        "family_name": values.get("family_name") or None,
        "emails": [
            EmailIn(address=a, primary=i == 0)
            for i, a in enumerate(_lines(values.get("emails", "")))
        ],
        "phones": [
            PhoneIn(number=n, primary=i == 0)
            for i, n in enumerate(values.get("phones", "").splitlines())
            if n.strip()
        ],
        "tags": _lines(values.get("tags", "")),
    }


FIELD_INPUT = "field."


async def _active_fields(request: Request[Any, Any, Any]) -> list[FieldOut]:
    return await FieldService(kith_of(request)).declared()


async def _posted_fields(
    request: Request[Any, Any, Any], declared: list[FieldOut]
) -> dict[str, str | list[str]]:
    """The custom fields' inputs as posted (a multiple choice is a list of boxes)."""
    form = await request.form()
    posted: dict[str, str | list[str]] = {}
    for field in declared:
        key = FIELD_INPUT + field.name
        if field.type == "multi_choice":
            posted[field.name] = [v for v in form.getall(key, []) if isinstance(v, str)]
        else:
            value = form.get(key, "")
            posted[field.name] = value.strip() if isinstance(value, str) else ""
    return posted


def _field_values(
    request: Request[Any, Any, Any],
    declared: list[FieldOut],
    posted: dict[str, str | list[str]],
    creating: bool,
) -> dict[str, Any]:
    """The service's input: an empty input gives a new contact the field's default and clears
    the value of one being changed."""
    values: dict[str, Any] = {}
    for field in declared:
        raw = posted.get(field.name) or None
        if raw is not None and field.type == "datetime":
            moment = _local_time(request, str(raw), FIELD_INPUT + field.name)
            raw = moment.isoformat() if moment else None
        if raw is not None or not creating:
            values[field.name] = raw
    return values


def _shown_fields(
    request: Request[Any, Any, Any], declared: list[FieldOut], stored: dict[str, Any]
) -> dict[str, str | list[str]]:
    """A contact's values as the form's inputs show them."""
    zone = zoneinfo.ZoneInfo(kith_of(request).settings.timezone)
    shown: dict[str, str | list[str]] = {}
    for field in declared:
        value = stored.get(field.name)
        if value is None:
            shown[field.name] = [] if field.type == "multi_choice" else ""
        elif field.type == "multi_choice":
            shown[field.name] = list(value)
        elif field.type == "boolean":
            shown[field.name] = "true" if value else "false"
        elif field.type == "datetime":
            local = dt.datetime.fromisoformat(str(value)).astimezone(zone)
            shown[field.name] = local.strftime("%Y-%m-%dT%H:%M")
        else:
            shown[field.name] = str(value)
    return shown


def _form_page(
    request: Request[Any, Any, Any],
    values: dict[str, str],
    contact: ContactOut | None,
    declared: list[FieldOut],
    custom: dict[str, str | list[str]],
    status: int = 200,
    error: str | None = None,
) -> Template:
    return render(
        request,
        "contact_form.html",
        status=status,
        values=values,
        contact=contact,
        declared=declared,
        custom=custom,
        error=error,
    )


@get("/contacts", opt=READERS)
async def contact_list(
    request: Request[Any, Any, Any],
    q: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
    archived: FromQuery[bool] = False,
) -> Template:
    fields = field_filters(request)
    error = None
    items: list[ContactOut] = []
    next_cursor = None
    try:
        page = await ContactService(kith_of(request), WEB).list(
            q=q or None,
            cursor=cursor,
            limit=PAGE_SIZE,
            include_archived=archived,
            fields=fields,
            actor=current_actor(request),
        )
        items, next_cursor = page.items, page.next_cursor
    except KithError as exc:
        error = exc.detail
    declared = [f for f in await FieldService(kith_of(request)).declared() if not f.archived]
    return render(
        request,
        "contacts.html",
        status=200 if error is None else 422,
        items=items,
        q=q or "",
        archived=archived,
        fields=fields,
        declared=declared,
        next_cursor=next_cursor,
        error=error,
    )


@get("/contacts/new", opt=STAFF)
async def new_contact(request: Request[Any, Any, Any]) -> Template:
    declared = await _active_fields(request)
    return _form_page(request, {}, None, declared, _shown_fields(request, declared, {}))


@post("/contacts/new", opt=STAFF)
async def create_contact(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_of(request)
    declared = await _active_fields(request)
    posted = await _posted_fields(request, declared)
    try:
        data = ContactCreate(
            source=WEB,
            fields=_field_values(request, declared, posted, creating=True),
            **_contact_input(values),
        )
        contact = await ContactService(kith_of(request), WEB).create(data, current_actor(request))
    except KithError as exc:
        return _form_page(request, values, None, declared, posted, 422, exc.detail)
    return see_other(f"/contacts/{contact.id}")


@get("/contacts/{contact_id:uuid}", opt=READERS)
async def contact_card(
    request: Request[Any, Any, Any], contact_id: FromPath[uuid.UUID]
) -> Template:
    actor = current_actor(request)
    kith = kith_of(request)
    contact = await ContactService(kith, WEB).get(contact_id, actor)
    timeline = await InteractionService(kith, WEB).timeline(
        contact_id, limit=TIMELINE_SIZE, actor=actor
    )
    declared = {f.name: f for f in await FieldService(kith).declared()}
    return render(
        request,
        "contact.html",
        contact=contact,
        timeline=timeline.items,
        more=timeline.next_cursor is not None,
        declared=declared,
        error=None,
    )


@get("/contacts/{contact_id:uuid}/timeline", opt=READERS)
async def timeline_part(
    request: Request[Any, Any, Any], contact_id: FromPath[uuid.UUID]
) -> Template:
    """The timeline alone, for the card to refresh it when something new arrives."""
    timeline = await InteractionService(kith_of(request), WEB).timeline(
        contact_id, limit=TIMELINE_SIZE, actor=current_actor(request)
    )
    return render(request, "timeline.html", timeline=timeline.items)


@post("/contacts/{contact_id:uuid}/interactions", opt=STAFF)
async def log_interaction(
    request: Request[Any, Any, Any], contact_id: FromPath[uuid.UUID]
) -> Template | Redirect:
    values = await form_of(request)
    actor = current_actor(request)
    kind = values.get("kind", "note")
    try:
        if kind not in QUICK_KINDS:
            raise InvalidInput(t(request, "Choose a note, a call or a task."), field="kind")
        is_task = kind == "task"
        data = InteractionCreate(
            kind=kind,  # type: ignore[arg-type]
            source=WEB,
            summary=values.get("summary", ""),
            body=values.get("body", ""),
            direction=(values.get("direction") or None) if kind == "call" else None,  # type: ignore[arg-type]
            due_at=_local_time(request, values.get("due_at", ""), "due_at") if is_task else None,
            assignee_id=actor.id if is_task else None,
        )
        await InteractionService(kith_of(request), WEB).log(contact_id, data, actor)
    except KithError as exc:
        kith = kith_of(request)
        contact = await ContactService(kith, WEB).get(contact_id, actor)
        timeline = await InteractionService(kith, WEB).timeline(
            contact_id, limit=TIMELINE_SIZE, actor=actor
        )
        return render(
            request,
            "contact.html",
            status=422,
            contact=contact,
            timeline=timeline.items,
            more=timeline.next_cursor is not None,
            declared={f.name: f for f in await FieldService(kith).declared()},
            error=exc.detail,
        )
    return see_other(f"/contacts/{contact_id}#timeline")


@get("/contacts/{contact_id:uuid}/edit", opt=STAFF)
async def edit_contact(
    request: Request[Any, Any, Any], contact_id: FromPath[uuid.UUID]
) -> Template:
    contact = await ContactService(kith_of(request), WEB).get(contact_id, current_actor(request))
    values = {
        "kind": contact.kind,
        "name": contact.name if contact.kind == "organization" or not contact.given_name else "",
        "given_name": contact.given_name or "",
        "family_name": contact.family_name or "",
        "emails": "\n".join(e.address for e in contact.emails),
        "phones": "\n".join(p.number for p in contact.phones),
        "tags": ", ".join(contact.tags),
    }
    declared = await _active_fields(request)
    shown = _shown_fields(request, declared, contact.fields)
    return _form_page(request, values, contact, declared, shown)


@post("/contacts/{contact_id:uuid}/edit", opt=STAFF)
async def change_contact(
    request: Request[Any, Any, Any], contact_id: FromPath[uuid.UUID]
) -> Template | Redirect:
    values = await form_of(request)
    service = ContactService(kith_of(request), WEB)
    actor = current_actor(request)
    declared = await _active_fields(request)
    posted = await _posted_fields(request, declared)
    try:
        changes = _contact_input(values)
        changes.pop("kind")
        changes = {k: v for k, v in changes.items() if not (k == "name" and v is None)}
        if declared:
            changes["fields"] = _field_values(request, declared, posted, creating=False)
        await service.update(contact_id, ContactPatch(**changes), actor)
    except KithError as exc:
        contact = await service.get(contact_id, actor)
        return _form_page(request, values, contact, declared, posted, 422, exc.detail)
    return see_other(f"/contacts/{contact_id}")


@post("/contacts/{contact_id:uuid}/archive", opt=STAFF)
async def archive_contact(
    request: Request[Any, Any, Any], contact_id: FromPath[uuid.UUID]
) -> Redirect:
    await ContactService(kith_of(request), WEB).archive(contact_id, current_actor(request))
    return see_other(f"/contacts/{contact_id}")


@get("/contacts/export.csv", opt=READERS)
async def export_contacts(
    request: Request[Any, Any, Any],
    q: FromQuery[str | None] = None,
    archived: FromQuery[bool] = False,
) -> Stream:
    export = await ExportService(kith_of(request), WEB).contacts(
        ContactFilter(q=q or None, include_archived=archived, fields=field_filters(request)),
        actor=current_actor(request),
    )
    return Stream(
        export.chunks(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": 'attachment; filename="contacts.csv"',
        },
    )


PAGES = [
    contact_list,
    new_contact,
    create_contact,
    contact_card,
    timeline_part,
    log_interaction,
    edit_contact,
    change_contact,
    archive_contact,
    export_contacts,
]
