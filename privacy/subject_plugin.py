"""What the data-subject-rights part of the privacy plugin registers with Kith.

``kith.privacy.plugin`` holds the hook implementations (one per hook for the whole privacy
plugin) and calls these functions from them: the tables, routes and commands of audit,
export, erasure, rectification, restriction, suppression and retention; the executors of the
five request types; the checks core asks before processing (restriction, suppression); the
audit log of accesses; and the periodic retention job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import click
from kith.actor import Actor
from kith.events import Event, EventType
from kith.personal import PersonalField
from kith.privacy.audit import AuditLog
from kith.privacy.subject_piccolo_app import APP_CONFIG
from kith.runtime import Kith
from kith.subjects import Access, Subscriber
from piccolo.conf.apps import AppConfig

OWNER = "kith.privacy"
PURPOSES = ("subject_rights",)

PERSONAL_FIELDS: tuple[PersonalField, ...] = (
    PersonalField(
        table="kith_privacy_audit",
        column="details",
        category="audit_records",
        purposes=PURPOSES,
        retention="audit_log",
        description="What an access to a person's data touched (fields, items)",
        owner=OWNER,
    ),
    PersonalField(
        table="kith_privacy_suppression_override",
        column="reason",
        category="request_records",
        purposes=PURPOSES,
        retention="subject_requests",
        description="Why an operator re-created a person who had asked to be erased",
        owner=OWNER,
    ),
    PersonalField(
        table="kith_privacy_restriction",
        column="lift_notice",
        category="request_records",
        purposes=PURPOSES,
        retention="subject_requests",
        description="How the person was told that a restriction would be lifted",
        owner=OWNER,
    ),
    PersonalField(
        table="kith_privacy_rectification",
        column="patch",
        category="request_records",
        purposes=PURPOSES,
        retention="subject_requests",
        description="The corrections a rectification request makes",
        owner=OWNER,
    ),
)

EVENT_TYPES: tuple[EventType, ...] = (
    EventType(
        "subject.erased",
        "A data subject was erased (records under a legal hold may remain, restricted).",
        ("contact_id", "job_id"),
    ),
    EventType(
        "subject.restricted",
        "A contact's processing was restricted (Art. 18): only storage is allowed.",
        ("contact_id", "ground"),
    ),
    EventType(
        "subject.restriction_lifted",
        "A contact's restriction of processing was lifted.",
        ("contact_id",),
    ),
)

SUPPRESSION_SUBSCRIBER = "privacy.suppression"

# The Kith this process opened last: the bus calls handlers with the event only.
_kith: Kith | None = None


def register_apps(register: Callable[[AppConfig], None]) -> None:
    register(APP_CONFIG)


def register_routes(register: Callable[[Any], None]) -> None:
    from kith.privacy.subject_routes import SUBJECT_ROUTES

    for route in SUBJECT_ROUTES:
        register(route)


def add_commands(group: click.Group) -> None:
    from kith.privacy.subject_cli import add_subject_commands

    add_subject_commands(group)


def register_event_types(register: Callable[[EventType], None]) -> None:
    for event_type in EVENT_TYPES:
        register(event_type)


def register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    for field in PERSONAL_FIELDS:
        register(field)


async def on_consent_withdrawn(kith: Kith, event: Event) -> None:
    """An objection to a marketing purpose puts the person's addresses on the suppression
    list (reason ``objection``), so a later import cannot quietly re-add them to marketing."""
    from kith.privacy.suppression import SuppressionList, marketing_objection_purposes
    from kith.tables import Contact

    if event.contact_id is None:
        return
    purpose = str(event.payload.get("purpose", ""))
    if not marketing_objection_purposes(kith, [purpose]):
        return
    if not await Contact.exists().where(Contact.id == event.contact_id):
        return
    await SuppressionList(kith).add_contact(event.contact_id, "objection")


def register_subscribers(register: Callable[[Subscriber], None]) -> None:
    register(
        Subscriber(
            name=SUPPRESSION_SUBSCRIBER,
            events=("consent.withdrawn",),
            handler=on_consent_withdrawn,
        )
    )


def startup(kith: Kith) -> None:
    """Install the executors and checks, and the periodic retention job."""
    global _kith
    _kith = kith
    from kith.privacy.consent import register_processing_check
    from kith.privacy.erasure import ErasureExecutor
    from kith.privacy.export import AccessExecutor
    from kith.privacy.rectification import RectificationExecutor, RestrictionExecutor
    from kith.privacy.requests import register_executor
    from kith.privacy.restriction import processing_check
    from kith.privacy.retention import periodic
    from kith.privacy.subject_settings import subject_settings
    from kith.privacy.suppression import objection_check

    access = AccessExecutor()
    # replace=True: every Kith opened in this process installs them again (tests open many).
    register_executor("access", access, replace=True)
    register_executor("portability", access, replace=True)
    register_executor("erasure", ErasureExecutor(), replace=True)
    register_executor("rectification", RectificationExecutor(), replace=True)
    register_executor("restriction", RestrictionExecutor(), replace=True)
    register_processing_check(processing_check)
    register_processing_check(objection_check)
    add_job = getattr(getattr(kith, "bus", None), "add_job", None)
    if add_job is not None:
        minutes = subject_settings(kith.settings).retention_interval_minutes

        async def retention() -> None:
            await periodic(kith)

        add_job("privacy.retention", minutes * 60.0, retention)


async def check_new_contact(
    kith: Kith,
    contact_id: uuid.UUID,
    emails: list[str],
    phones: list[str],
    override_reason: str | None,
    actor: Actor,
) -> None:
    from kith.privacy.protector import PrivacyProtector
    from kith.privacy.suppression import SuppressionList

    if not emails and not phones:
        return
    if not isinstance(kith.protector, PrivacyProtector) or not kith.protector.ready:
        return
    await SuppressionList(kith).check(contact_id, emails, phones, override_reason, actor)


async def check_processing(kith: Kith, contact_id: uuid.UUID, activity: str) -> str | None:
    from kith.privacy.consent import ConsentService
    from kith.privacy.restriction import RestrictionService

    reason = await RestrictionService(kith).refusal(contact_id, activity)
    if reason is None and activity.startswith("purpose:"):
        purpose = activity.removeprefix("purpose:")
        if not await ConsentService(kith).can_process(contact_id, purpose):
            reason = (
                f"contact {contact_id} gives no basis to process their data for the {purpose} "
                "purpose (no current consent, or an objection)"
            )
    return reason


async def record_access(kith: Kith, access: Access) -> None:
    # Imported at module level, unlike the other parts: this runs on every read.
    await AuditLog(kith).record_access(access)


async def shutdown(kith: Kith) -> None:
    from kith.privacy import audit

    await audit.shutdown()
