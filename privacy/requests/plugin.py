"""Data subject requests, as a built-in plugin (entry point ``privacy.requests``).

It joins Kith through hooks any plugin can use: its piccolo app (requests, their history,
extensions and certificates), its routes, web pages and ``kith privacy`` commands, its keys of
``[privacy]``, its personal fields and events, the certificate signing key made at start-up,
the worker's job that resumes requests whose run stopped, and its part of access and erasure:
the person's requests are exported, and kept through an erasure as evidence, their free text
unreadable once the person's key is destroyed. Requests are carried out through the rights
plugin's services.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kith import (
    ErasureOutcome,
    EventType,
    ExportSection,
    Kith,
    NavLink,
    PersonalField,
    hookimpl,
)

if TYPE_CHECKING:
    import click
    import msgspec
    from piccolo.conf.apps import AppConfig

# Requests are carried out through the rights plugin's services.
KITH_REQUIRES = ("privacy.rights", "privacy.encryption")
SOURCE = "kith.privacy"
REQUEST_PURPOSES = ("subject_rights",)
REQUEST_HOLD_GROUND = (
    "the record that a data protection request was made and answered is kept to demonstrate "
    "compliance (Art. 5(2) GDPR); it names the person by contact id only, and its free text is "
    "sealed under their shredded key"
)

PERSONAL_FIELDS: tuple[PersonalField, ...] = (
    PersonalField(
        table="kith_subject_request",
        column="note",
        category="request_records",
        purposes=REQUEST_PURPOSES,
        retention="subject_requests",
        description="What the person asked for, in the compliance officer's words",
        owner="kith.privacy",
    ),
    PersonalField(
        table="kith_subject_request",
        column="identity_method",
        category="request_records",
        purposes=REQUEST_PURPOSES,
        retention="subject_requests",
        description="How the requester's identity was checked",
        owner="kith.privacy",
    ),
    PersonalField(
        table="kith_subject_request",
        column="last_error",
        category="request_records",
        purposes=REQUEST_PURPOSES,
        retention="subject_requests",
        description="Why the last run of a request failed (an executor's message)",
        owner="kith.privacy",
    ),
    PersonalField(
        table="kith_subject_request_transition",
        column="note",
        category="request_records",
        purposes=REQUEST_PURPOSES,
        retention="subject_requests",
        description="Notes on a request's steps (e.g. why it was rejected)",
        owner="kith.privacy",
    ),
    PersonalField(
        table="kith_subject_request_extension",
        column="reason",
        category="request_records",
        purposes=REQUEST_PURPOSES,
        retention="subject_requests",
        description="Why a request's deadline was extended",
        owner="kith.privacy",
    ),
)

_REQUEST = ("request_id",)


def _evidence(name: str, description: str, *keys: str) -> EventType:
    """A request's event: it documents the request itself, so an erasure keeps it."""
    return EventType(name, description, (*_REQUEST, *keys), evidence=True)


EVENT_TYPES: tuple[EventType, ...] = (
    _evidence("subject_request.received", "A data subject request was recorded.", "kind"),
    _evidence("subject_request.verified", "A request's identity check was recorded."),
    _evidence("subject_request.extended", "A request's deadline was extended.", "months", "due_on"),
    _evidence("subject_request.previewed", "A request's preview was made."),
    _evidence("subject_request.approved", "A request was approved."),
    _evidence("subject_request.running", "A request started running."),
    _evidence("subject_request.done", "A request was carried out and certified."),
    _evidence("subject_request.rejected", "A request was closed without action."),
)


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    from kith.privacy.requests.piccolo_app import APP_CONFIG

    register(APP_CONFIG)


@hookimpl
def kith_register_routes(register: Callable[[Any], None]) -> None:
    from kith.privacy.requests.routes import REQUEST_ROUTES

    for route in REQUEST_ROUTES:
        register(route)


@hookimpl
def kith_register_pages(register: Callable[[Any], None]) -> None:
    from kith.privacy.requests.pages import PAGES

    for page in PAGES:
        register(page)


@hookimpl
def kith_register_templates(register: Callable[[Path], None]) -> None:
    register(Path(__file__).parent / "templates")


@hookimpl
def kith_register_navigation(register: Callable[[NavLink], None]) -> None:
    from kith.privacy.requests.pages import NAVIGATION

    for link in NAVIGATION:
        register(link)


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    from kith.privacy.requests.cli import privacy

    register(privacy)


@hookimpl
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    from kith.privacy.requests.settings import SECTION, RequestSettings

    register(SECTION, RequestSettings)


@hookimpl
def kith_register_event_types(register: Callable[[EventType], None]) -> None:
    for event_type in EVENT_TYPES:
        register(event_type)


@hookimpl
def kith_register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    for field in PERSONAL_FIELDS:
        register(field)


@hookimpl
def kith_startup(kith: Kith) -> None:
    """Create the certificate signing key on first start (a second process reads it); have
    the worker (and ``kith serve`` when it dispatches) resume requests whose run stopped."""
    from kith.privacy.requests.certificates import load_signing_key
    from kith.privacy.requests.service import RequestService
    from kith.privacy.requests.settings import request_settings

    load_signing_key(kith.settings)

    async def resume() -> None:
        await RequestService(kith).resume_stopped()

    interval = request_settings(kith.settings).resume_check_seconds
    kith.bus.add_job("privacy.requests.resume", interval, resume)


# How a package lists the request it answers: that request is done once the package is
# handed over (its certificate says when), so "running" would tell the person nothing true.
ANSWERING_STATE = "answering"


@hookimpl
async def kith_subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection:
    from kith.privacy.requests.executors import ANSWERING
    from kith.privacy.requests.service import RequestService

    requests = await RequestService(kith).list(include_closed=True, contact_id=contact_id)
    answering = ANSWERING.get()
    return ExportSection(
        source=SOURCE,
        description="The data protection requests you made",
        tables={
            "subject_requests": [
                {
                    "id": str(r.id),
                    "type": r.kind,
                    "state": ANSWERING_STATE if r.id == answering else r.state,
                    "received_on": r.received_on.isoformat(),
                    "due_on": r.due_on.isoformat(),
                    "closed_at": r.closed_at.isoformat() if r.closed_at else None,
                }
                for r in requests
            ]
        },
        descriptions={
            "subject_requests": "The data protection requests you made (the one this package "
            "answers is listed as answering)"
        },
    )


async def _kept_requests(contact_id: uuid.UUID) -> list[ErasureOutcome]:
    """The requests stay, as evidence; their notes become unreadable with the data key."""
    from kith.privacy.encryption.key_usage import rows_under_subject_key
    from kith.privacy.requests.tables import SubjectRequest

    held = await SubjectRequest.count().where(SubjectRequest.contact_id == contact_id)
    # Counted by the key inside each record: what destroying the key makes unreadable.
    sealed = await rows_under_subject_key(
        contact_id,
        SubjectRequest,
        [SubjectRequest.note, SubjectRequest.identity_method, SubjectRequest.last_error],
    )
    return [
        ErasureOutcome(
            source=SOURCE,
            location=SubjectRequest._meta.tablename,
            method="legal_hold" if held else "not_present",
            count=held,
            ground=REQUEST_HOLD_GROUND if held else None,
        ),
        ErasureOutcome(
            source=SOURCE,
            location="kith_subject_request (notes)",
            method="crypto_shredded",
            count=sealed,
            ground="the record is kept as evidence; its text becomes unreadable with the data key",
        ),
    ]


async def _subject_hashes(contact_id: uuid.UUID, clear: bool) -> ErasureOutcome:
    """Keyed hashes of the person's address kept on their requests (by versions that kept one
    beside the contact id): they would let anyone with the keys confirm the address of an
    erased contact, so erasure clears them."""
    from kith.privacy.requests.tables import SubjectRequest

    held = (SubjectRequest.contact_id == contact_id) & SubjectRequest.subject_lookup.is_not_null()
    if clear:
        count = len(
            await SubjectRequest.update({SubjectRequest.subject_lookup: None})
            .where(held)
            .returning(SubjectRequest.id)
        )
    else:
        count = int(await SubjectRequest.count().where(held))
    return ErasureOutcome(
        source=SOURCE,
        location="kith_subject_request (subject_lookup)",
        method="deleted" if count else "not_present",
        count=count,
    )


@hookimpl
async def kith_subject_erase(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    return [*await _kept_requests(contact_id), await _subject_hashes(contact_id, clear=True)]


@hookimpl
async def kith_subject_erase_preview(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    return [*await _kept_requests(contact_id), await _subject_hashes(contact_id, clear=False)]


# Merging contacts: a request still open stays with the record it was made about (the merge,
# or its undo, is refused); closed ones follow the person to the surviving contact, their text
# sealed under the key it was sealed with, which an erasure of the survivor destroys as well.


async def _refuse_open_requests(contact_ids: list[uuid.UUID]) -> None:
    from kith import Conflict
    from kith.privacy.requests.service import OPEN_STATES
    from kith.privacy.requests.tables import SubjectRequest

    row = await (
        SubjectRequest.select(SubjectRequest.id, SubjectRequest.kind, SubjectRequest.contact_id)
        .where(
            SubjectRequest.contact_id.is_in(contact_ids)
            & SubjectRequest.state.is_in(list(OPEN_STATES))
        )
        .first()
        .run()
    )
    if row is not None:
        raise Conflict(
            f"contact {row['contact_id']} has an open {row['kind']} request ({row['id']}): its "
            "deadline and scope are about that contact as it is, so finish or reject the "
            "request first",
            request_id=str(row["id"]),
        )


@hookimpl
async def kith_subject_merge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    choices: dict[str, uuid.UUID],
) -> dict[str, list[str]] | None:
    from kith.privacy.requests.tables import SubjectRequest

    await _refuse_open_requests([survivor, *losers])
    moved: dict[str, list[str]] = {}
    for loser in losers:
        rows = await (
            SubjectRequest.update({SubjectRequest.contact_id: survivor})
            .where(SubjectRequest.contact_id == loser)
            .returning(SubjectRequest.id)
            .run()
        )
        if rows:
            moved[str(loser)] = [str(row["id"]) for row in rows]
    return moved or None


@hookimpl
async def kith_subject_unmerge(
    kith: Kith, merge_id: uuid.UUID, survivor: uuid.UUID, losers: list[uuid.UUID], note: Any
) -> None:
    from kith.privacy.requests.tables import SubjectRequest

    await _refuse_open_requests([survivor])
    for loser, ids in (note or {}).items():
        await (
            SubjectRequest.update({SubjectRequest.contact_id: uuid.UUID(loser)})
            .where(
                SubjectRequest.id.is_in([uuid.UUID(i) for i in ids])
                & (SubjectRequest.contact_id == survivor)
            )
            .run()
        )
