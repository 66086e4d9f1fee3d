"""Contacts: the list with search and filters, the card with its timeline and quick actions,
new and edit forms, archive, export. Every rule is the services'; a page only maps the form
to the service's input and shows the answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from kith.actor import Role
from kith.cards import CardSection
from kith.errors import InvalidInput, KithError, NotFound
from kith.http.auth import current_actor
from kith.http.routes.contacts import field_filters
from kith.schemas import (
    ContactCreate,
    ContactOut,
    ContactPatch,
    EmailIn,
    FieldOut,
    InteractionCreate,
    InteractionOut,
    PhoneIn,
)
from kith.services.contacts import ContactFilter, ContactService
from kith.services.exports import ExportService
from kith.services.fields import FieldService
from kith.services.interactions import InteractionService
from kith.services.users import UserService
from kith.subject_checks import change_consent, subject_consents
from kith.web.i18n import N_, choose_language, t, translations
from kith.web.templating import local_time
from kith.web.views.common import (
    COMPLIANCE,
    READERS,
    STAFF,
    WEB,
    form_of,
    kith_of,
    render,
    see_other,
)
from kith.web.views.field_inputs import (
    declared_fields,
    field_values,
    local_moment,
    posted_fields,
    shown_fields,
)
from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup, escape

PAGE_SIZE = 25
# The card's newest entries; "Older" pages on with the API's keyset cursor.
TIMELINE_SIZE = 20
QUICK_KINDS = ("note", "call", "task")
KIND_LABELS = {
    "note": N_("Note"),
    "call": N_("Call"),
    "email": N_("Email"),
    "meeting": N_("Meeting"),
    "form_submission": N_("Form"),
    "order": N_("Order"),
    "task": N_("Task"),
    "message": N_("Message"),
}
# Who records consent given or withdrawn: as on the consent API.
CONSENT_ROLES = frozenset({Role.COMPLIANCE, Role.ADMIN})


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


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


SORT_LABELS = {
    "created": N_("Oldest first"),
    "-created": N_("Newest first"),
    "-updated": N_("Recently changed"),
    "updated": N_("Least recently changed"),
    "last_interaction": N_("Last interaction, most recent first"),
    "name": N_("Name, A to Z (within a page)"),
    "-name": N_("Name, Z to A (within a page)"),
}


def _owner_of(text: str | None) -> uuid.UUID | None:
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInput("owner: not a user id", field="owner_id") from None


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
    tag: FromQuery[str | None] = None,
    owner: FromQuery[str | None] = None,
    kind: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
) -> Template:
    fields = field_filters(request)
    error = None
    items: list[ContactOut] = []
    next_cursor = None
    kith = kith_of(request)
    # What the list shows, kept in the URL of the next page and of the export.
    shown = {
        "q": q or "",
        "tag": (tag or "").strip(),
        "owner": owner or "",
        "kind": kind or "",
        "sort": sort or "created",
        **({"archived": "true"} if archived else {}),
        **{f"field.{name}": value for name, value in fields.items()},
    }
    try:
        page = await ContactService(kith, WEB).list(
            q=q or None,
            cursor=cursor,
            limit=PAGE_SIZE,
            include_archived=archived,
            fields=fields,
            actor=current_actor(request),
            tag=shown["tag"] or None,
            owner_id=_owner_of(owner),
            kind=kind or None,
            sort=shown["sort"],
        )
        items, next_cursor = page.items, page.next_cursor
    except KithError as exc:
        error = exc.detail
    declared = [f for f in await FieldService(kith).declared() if not f.archived]
    kept = {name: value for name, value in shown.items() if value}
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
        shown=shown,
        users=await UserService(kith).list(),
        sorts=SORT_LABELS,
        next_query=urlencode({**kept, "cursor": next_cursor or ""}),
        export_query=urlencode({k: v for k, v in kept.items() if k != "sort"}),
    )


@get("/contacts/new", opt=STAFF)
async def new_contact(request: Request[Any, Any, Any]) -> Template:
    declared = await declared_fields(request)
    return _form_page(request, {}, None, declared, shown_fields(request, declared, {}))


@post("/contacts/new", opt=STAFF)
async def create_contact(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_of(request)
    declared = await declared_fields(request)
    posted = await posted_fields(request, declared)
    try:
        data = ContactCreate(
            source=WEB,
            fields=field_values(request, declared, posted, clear_empty=False),
            **_contact_input(values),
        )
        contact = await ContactService(kith_of(request), WEB).create(data, current_actor(request))
    except KithError as exc:
        return _form_page(request, values, None, declared, posted, 422, exc.detail)
    return see_other(f"/contacts/{contact.id}")


async def card_sections(
    request: Request[Any, Any, Any], contact_id: uuid.UUID
) -> list[CardSection]:
    """The plugins' sections of the card (``kith_contact_card_sections``), in their order."""
    kith = kith_of(request)
    if kith.plugins is None or not kith.plugins.implements("kith_contact_card_sections"):
        return []
    # The mount imports the views: read its field name when a page is drawn.
    from kith.web.mount import CSRF_FIELD

    token = ScopeState.from_scope(request.scope).csrf_token
    field = Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, "" if not isinstance(token, str) else token
    )
    results = await kith.plugins.call_async(
        "kith_contact_card_sections",
        kith=kith,
        contact_id=contact_id,
        actor=current_actor(request),
        csrf_input=str(field),
        language=choose_language(request),
    )
    found = [result.value for result in results if isinstance(result.value, CardSection)]
    return sorted(found, key=lambda section: (section.order, section.key))


def _section_markup(
    request: Request[Any, Any, Any], sections: list[CardSection]
) -> list[dict[str, Any]]:
    # The plugin escaped its own values (the hook's contract); the key and title are escaped here,
    # the title after it is translated (it is English, marked with N_).
    return [
        {"key": escape(s.key), "title": escape(t(request, s.title)), "html": Markup(s.html)}
        for s in sections
    ]


async def timeline_audio(kith: Any, items: list[InteractionOut]) -> dict[uuid.UUID, str]:
    """The plugins' audio of timeline entries (a call's recording), by interaction id."""
    plugins = kith.plugins
    if not items or plugins is None or not plugins.implements("kith_timeline_audio"):
        return {}
    found: dict[uuid.UUID, str] = {}
    for result in await plugins.call_async("kith_timeline_audio", kith=kith, interactions=items):
        found.update(result.value)
    return found


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One entry as the timeline shows it, its labels translated and times formatted."""

    kind: str
    label: str
    direction: str
    at: str
    when: str
    done: str
    due: str
    summary: str
    body: str | None
    audio: str | None


def _timeline_entries(
    request: Request[Any, Any, Any], items: list[InteractionOut], audio: dict[uuid.UUID, str]
) -> list[TimelineEntry]:
    # Worked out here once per page rather than by template calls for every entry.
    gettext = translations(choose_language(request)).gettext
    zone = kith_of(request).settings.timezone
    labels = {kind: gettext(label) for kind, label in KIND_LABELS.items()}
    directions = {"in": gettext(N_("incoming")), "out": gettext(N_("outgoing"))}
    done, due = gettext(N_("done")), gettext(N_("due %(when)s"))
    entries = []
    for item in items:
        task = item.kind == "task"
        entries.append(
            TimelineEntry(
                kind=item.kind,
                label=labels.get(item.kind, item.kind),
                direction=directions.get(item.direction or "", ""),
                at=item.occurred_at.isoformat(),
                when=local_time(item.occurred_at, zone),
                done=done if task and item.done_at else "",
                due=due % {"when": local_time(item.due_at, zone)}
                if task and not item.done_at and item.due_at
                else "",
                summary=item.summary,
                body=item.body,
                audio=audio.get(item.id),
            )
        )
    return entries


async def _timeline_page(
    request: Request[Any, Any, Any], contact_id: uuid.UUID, cursor: str | None
) -> dict[str, Any]:
    """One page of the card's timeline, as the timeline template takes it."""
    kith = kith_of(request)
    timeline = await InteractionService(kith, WEB).timeline(
        contact_id, cursor=cursor, limit=TIMELINE_SIZE, actor=current_actor(request)
    )
    audio = await timeline_audio(kith, timeline.items)
    return {
        "entries": _timeline_entries(request, timeline.items, audio),
        "timeline_of": contact_id,
        "older": quote(timeline.next_cursor, safe="") if timeline.next_cursor else None,
        "paged": cursor is not None,
    }


@get("/contacts/{contact_id:uuid}", opt=READERS)
async def contact_card(
    request: Request[Any, Any, Any],
    contact_id: FromPath[uuid.UUID],
    cursor: FromQuery[str | None] = None,
) -> Template:
    """The card; ``cursor`` (the "Older" link without scripts) starts its timeline further back."""
    return await _card(request, contact_id, cursor=cursor)


async def _card(
    request: Request[Any, Any, Any],
    contact_id: uuid.UUID,
    error: str | None = None,
    cursor: str | None = None,
) -> Template:
    """The card, with ``error`` (422) after a form of it was refused."""
    actor = current_actor(request)
    kith = kith_of(request)
    contact = await ContactService(kith, WEB).get(contact_id, actor)
    return render(
        request,
        "contact.html",
        status=200 if error is None else 422,
        contact=contact,
        **await _timeline_page(request, contact_id, cursor),
        declared={f.name: f for f in await FieldService(kith).declared()},
        sections=_section_markup(request, await card_sections(request, contact_id)),
        # None without a consent ledger: the card then has no consent section.
        consents=await subject_consents(kith, contact_id, actor, WEB),
        may_change_consent=actor.role in CONSENT_ROLES,
        error=error,
    )


@post("/contacts/{contact_id:uuid}/consent", opt=COMPLIANCE)
async def change_contact_consent(
    request: Request[Any, Any, Any], contact_id: FromPath[uuid.UUID]
) -> Template | Redirect:
    """Consent given or withdrawn, recorded as the consent API records it."""
    values = await form_of(request)
    try:
        await change_consent(
            kith_of(request),
            contact_id,
            values.get("purpose", ""),
            values.get("action", ""),
            current_actor(request),
            WEB,
        )
    except KithError as exc:
        return await _card(request, contact_id, exc.detail)
    return see_other(f"/contacts/{contact_id}#consent")


@get("/contacts/{contact_id:uuid}/timeline", opt=READERS)
async def timeline_part(
    request: Request[Any, Any, Any],
    contact_id: FromPath[uuid.UUID],
    cursor: FromQuery[str | None] = None,
) -> Template:
    """The timeline alone: the newest entries for the card to refresh when something new
    arrives, or the page before ``cursor`` for its "Older" button."""
    return render(request, "timeline.html", **await _timeline_page(request, contact_id, cursor))


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
            due_at=local_moment(request, values.get("due_at", ""), "due_at") if is_task else None,
            assignee_id=actor.id if is_task else None,
        )
        await InteractionService(kith_of(request), WEB).log(contact_id, data, actor)
    except KithError as exc:
        return await _card(request, contact_id, exc.detail)
    return see_other(f"/contacts/{contact_id}#timeline")


@post("/contacts/{contact_id:uuid}/card/{key:str}", opt=STAFF)
async def submit_section(
    request: Request[Any, Any, Any], contact_id: FromPath[uuid.UUID], key: FromPath[str]
) -> Template | Redirect:
    """A form of a plugin's card section: the section's own ``submit`` does the work."""
    sections = await card_sections(request, contact_id)
    section = next((s for s in sections if s.key == key and s.submit is not None), None)
    if section is None or section.submit is None:
        raise NotFound(f"the card has no section {key!r} that takes a form")
    values = await form_of(request)
    try:
        await section.submit(values)
    except KithError as exc:
        return await _card(request, contact_id, exc.detail)
    return see_other(f"/contacts/{contact_id}#card-{key}")


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
    declared = await declared_fields(request)
    shown = shown_fields(request, declared, contact.fields)
    return _form_page(request, values, contact, declared, shown)


@post("/contacts/{contact_id:uuid}/edit", opt=STAFF)
async def change_contact(
    request: Request[Any, Any, Any], contact_id: FromPath[uuid.UUID]
) -> Template | Redirect:
    values = await form_of(request)
    service = ContactService(kith_of(request), WEB)
    actor = current_actor(request)
    declared = await declared_fields(request)
    posted = await posted_fields(request, declared)
    try:
        changes = _contact_input(values)
        changes.pop("kind")
        changes = {k: v for k, v in changes.items() if not (k == "name" and v is None)}
        if declared:
            changes["fields"] = field_values(request, declared, posted, clear_empty=True)
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
    tag: FromQuery[str | None] = None,
    owner: FromQuery[str | None] = None,
    kind: FromQuery[str | None] = None,
) -> Stream:
    export = await ExportService(kith_of(request), WEB).contacts(
        ContactFilter(
            q=q or None,
            include_archived=archived,
            fields=field_filters(request),
            tag=(tag or "").strip() or None,
            owner_id=_owner_of(owner),
            kind=kind or None,
        ),
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
    change_contact_consent,
    timeline_part,
    log_interaction,
    submit_section,
    edit_contact,
    change_contact,
    archive_contact,
    export_contacts,
]
