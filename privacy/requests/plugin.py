"""What the request-workflow half of the privacy plugin registers with Kith.

``kith.privacy.plugin`` holds the hook implementations (one per hook for the whole privacy
plugin) and calls these functions from them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import click
from kith.events import EventType
from kith.personal import PersonalField
from kith.privacy.requests.certificates import load_signing_key
from kith.privacy.requests.piccolo_app import APP_CONFIG
from kith.privacy.requests.settings import workflow_settings
from kith.runtime import Kith
from kith.subjects import ErasureOutcome, ExportSection
from piccolo.conf.apps import AppConfig

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
EVENT_TYPES: tuple[EventType, ...] = (
    EventType(
        "consent.given",
        "A contact gave consent for a purpose (a ledger event).",
        ("contact_id", "purpose", "event_id"),
    ),
    EventType(
        "consent.withdrawn",
        "A contact withdrew consent for, or objected to, a purpose (a ledger event).",
        ("contact_id", "purpose", "event_id"),
    ),
    EventType(
        "privacy.notice_published",
        "A new version of a purpose's notice text was published.",
        ("purpose", "version"),
    ),
    EventType(
        "subject_request.received", "A data subject request was recorded.", (*_REQUEST, "kind")
    ),
    EventType("subject_request.verified", "A request's identity check was recorded.", _REQUEST),
    EventType(
        "subject_request.extended",
        "A request's deadline was extended.",
        (*_REQUEST, "months", "due_on"),
    ),
    EventType("subject_request.previewed", "A request's preview was made.", _REQUEST),
    EventType("subject_request.approved", "A request was approved.", _REQUEST),
    EventType("subject_request.running", "A request started running.", _REQUEST),
    EventType("subject_request.done", "A request was carried out and certified.", _REQUEST),
    EventType("subject_request.rejected", "A request was closed without action.", _REQUEST),
)


def register_apps(register: Callable[[AppConfig], None]) -> None:
    register(APP_CONFIG)


def register_routes(register: Callable[[Any], None]) -> None:
    from kith.privacy.requests.routes import WORKFLOW_ROUTES

    for route in WORKFLOW_ROUTES:
        register(route)


def add_commands(group: click.Group) -> None:
    """Add the workflow's commands to the ``kith privacy`` group."""
    from kith.privacy.requests.cli import add_workflow_commands

    add_workflow_commands(group)


def register_event_types(register: Callable[[EventType], None]) -> None:
    for event_type in EVENT_TYPES:
        register(event_type)


def register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    for field in PERSONAL_FIELDS:
        register(field)


def startup(kith: Kith) -> None:
    """Validate the workflow settings and create the certificate signing key on first start."""
    workflow_settings(kith.settings)
    load_signing_key(kith.settings)


async def subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection:
    """The workflow's part of an access or portability export: consent and requests."""
    from kith.privacy.rights.consent import ConsentService
    from kith.privacy.requests.service import RequestService

    requests = await RequestService(kith).list(include_closed=True, contact_id=contact_id)
    return ExportSection(
        source="kith.privacy",
        description="Consent you gave or withdrew, and the data protection requests you made",
        tables={
            "consent_events": await ConsentService(kith).export_subject(contact_id),
            "subject_requests": [
                {
                    "id": str(r.id),
                    "type": r.kind,
                    "state": r.state,
                    "received_on": r.received_on.isoformat(),
                    "due_on": r.due_on.isoformat(),
                    "closed_at": r.closed_at.isoformat() if r.closed_at else None,
                }
                for r in requests
            ],
        },
    )


async def subject_erase(
    kith: Kith, contact_id: uuid.UUID, *, dry_run: bool = False
) -> list[ErasureOutcome]:
    """The workflow's part of an erasure (or, with ``dry_run``, of its preview): the consent
    ledger is anonymised; the requests stay, as evidence, their free text unreadable once the
    subject's key is shredded."""
    from kith.privacy.rights.consent import ConsentService
    from kith.privacy.requests.tables import SubjectRequest

    outcomes = await ConsentService(kith).anonymise_subject(contact_id, dry_run=dry_run)
    held = await SubjectRequest.count().where(SubjectRequest.contact_id == contact_id)
    outcomes.append(
        ErasureOutcome(
            source="kith.privacy",
            location=SubjectRequest._meta.tablename,
            method="legal_hold" if held else "not_present",
            count=held,
            ground=REQUEST_HOLD_GROUND if held else None,
        )
    )
    return outcomes
