"""Data subject rights, as a built-in plugin (entry point ``privacy.rights``).

It joins Kith through hooks any plugin can use: its piccolo app (consent ledger, audit log,
suppression list, restrictions, legal holds, erasure jobs...), its routes, web pages and
``kith privacy`` commands, its keys of ``[privacy]``, its purposes, personal fields and
events; the checks core asks before processing (restriction, consent, objections, the
suppression list), the audit log of every access core and plugins report, the legal holds an
erasure keeps, its part of access and erasure, and the worker's periodic retention run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kith import (
    Access,
    Actor,
    ConsentGiven,
    ConsentLine,
    ConsentReceipt,
    ErasureOutcome,
    Event,
    EventType,
    ExportSection,
    Kith,
    NavLink,
    PersonalField,
    Purpose,
    SubjectHold,
    Subscriber,
    hookimpl,
)
from kith.privacy.rights.audit import AuditLog

if TYPE_CHECKING:
    import click
    import msgspec
    from piccolo.conf.apps import AppConfig

# The audit log and the suppression list are sealed and keyed by field encryption's keys.
KITH_REQUIRES = ("privacy.encryption",)
OWNER = "kith.privacy"
PURPOSES = ("subject_rights",)
SUPPRESSION_SUBSCRIBER = "privacy.suppression"

SUBJECT_RIGHTS = Purpose(
    name="subject_rights",
    description="Answering data subject requests and keeping the evidence that they were "
    "answered (Art. 12-22 and 5(2) GDPR)",
    lawful_basis="legal_obligation",
    owner=OWNER,
)

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
        table="kith_privacy_erasure_job",
        column="last_error",
        category="request_records",
        purposes=PURPOSES,
        retention="subject_requests",
        description="Why the last run of an erasure stopped (a step's message)",
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
        "subject.erased",
        "A data subject was erased (records under a legal hold may remain, restricted).",
        ("contact_id", "job_id"),
        evidence=True,
    ),
    EventType(
        "subject.restricted",
        "A contact's processing was restricted (Art. 18): only storage is allowed.",
        ("contact_id", "ground"),
        evidence=True,
    ),
    EventType(
        "subject.restriction_lifted",
        "A contact's restriction of processing was lifted.",
        ("contact_id",),
        evidence=True,
    ),
)


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    from kith.privacy.rights.piccolo_app import APP_CONFIG

    register(APP_CONFIG)


@hookimpl
def kith_register_routes(register: Callable[[Any], None]) -> None:
    from kith.privacy.rights.routes import RIGHTS_ROUTES

    for route in RIGHTS_ROUTES:
        register(route)


@hookimpl
def kith_register_pages(register: Callable[[Any], None]) -> None:
    from kith.privacy.rights.pages import PAGES

    for page in PAGES:
        register(page)


@hookimpl
def kith_register_templates(register: Callable[[Path], None]) -> None:
    register(Path(__file__).parent / "templates")


@hookimpl
def kith_register_navigation(register: Callable[[NavLink], None]) -> None:
    from kith.privacy.rights.pages import NAVIGATION

    for link in NAVIGATION:
        register(link)


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    from kith.privacy.rights.cli import privacy

    register(privacy)


@hookimpl
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    from kith.privacy.rights.settings import SECTION, RightsSettings

    register(SECTION, RightsSettings)


@hookimpl
def kith_register_event_types(register: Callable[[EventType], None]) -> None:
    for event_type in EVENT_TYPES:
        register(event_type)


@hookimpl
def kith_register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    for field in PERSONAL_FIELDS:
        register(field)


@hookimpl
def kith_register_purposes(register: Callable[[Purpose], None]) -> None:
    register(SUBJECT_RIGHTS)


async def on_consent_withdrawn(kith: Kith, event: Event) -> None:
    """An objection to a marketing purpose puts the person's addresses on the suppression
    list (reason ``objection``), so a later import cannot quietly re-add them to marketing."""
    from kith import ContactService
    from kith.privacy.rights.suppression import SuppressionList, marketing_objection_purposes

    if event.contact_id is None:
        return
    purpose = str(event.payload.get("purpose", ""))
    if not marketing_objection_purposes(kith, [purpose]):
        return
    if not await ContactService(kith).exists(event.contact_id):
        return
    await SuppressionList(kith).add_contact(event.contact_id, "objection")


@hookimpl
def kith_register_subscribers(register: Callable[[Subscriber], None]) -> None:
    register(
        Subscriber(
            name=SUPPRESSION_SUBSCRIBER,
            events=("consent.withdrawn",),
            handler=on_consent_withdrawn,
        )
    )


@hookimpl
async def kith_startup(kith: Kith) -> None:
    """Open the audit log's writer; carry suppression entries from before root keys over; have
    the worker (and ``kith serve`` when it dispatches) apply the retention rules."""
    from kith.privacy.rights.audit import open_writer
    from kith.privacy.rights.retention import periodic
    from kith.privacy.rights.settings import rights_settings
    from kith.privacy.rights.suppression import carry_over

    open_writer(kith)
    await carry_over(kith)
    minutes = rights_settings(kith.settings).retention_interval_minutes

    async def retention() -> None:
        await periodic(kith)

    kith.bus.add_job("privacy.retention", minutes * 60.0, retention)


@hookimpl
async def kith_shutdown(kith: Kith) -> None:
    """Write the audit entries still queued and stop the writer."""
    from kith.privacy.rights.audit import close_writer

    await close_writer(kith)


@hookimpl
async def kith_check_new_contact(
    kith: Kith,
    contact_id: uuid.UUID,
    emails: list[str],
    phones: list[str],
    override_reason: str | None,
    actor: Actor,
) -> None:
    from kith.privacy.encryption.protector import PrivacyProtector
    from kith.privacy.rights.suppression import SuppressionList

    # The suppression list hashes under the installation's keys: without them (a protector
    # of another kind, or before start-up) there is nothing it could match.
    protector = kith.protector
    if not (emails or phones) or not isinstance(protector, PrivacyProtector) or not protector.ready:
        return
    await SuppressionList(kith).check(contact_id, emails, phones, override_reason, actor)


@hookimpl
async def kith_check_processing(kith: Kith, contact_id: uuid.UUID, activity: str) -> str | None:
    from kith.privacy.rights.consent import ConsentService
    from kith.privacy.rights.restriction import RestrictionService

    reason = await RestrictionService(kith).refusal(contact_id, activity)
    if reason is None and activity.startswith("purpose:"):
        purpose = activity.removeprefix("purpose:")
        if not await ConsentService(kith).can_process(contact_id, purpose):
            reason = (
                f"contact {contact_id} gives no basis to process their data for the {purpose} "
                "purpose (no current consent, or an objection)"
            )
    return reason


@hookimpl
async def kith_record_consent(
    kith: Kith, contact_id: uuid.UUID, consent: ConsentGiven, actor: Actor
) -> ConsentReceipt:
    from kith.privacy.rights.consent import ConsentService

    ledger = ConsentService(kith)
    # The text the person saw becomes a notice version (the current one when unchanged).
    notice = await ledger.notice_for_text(consent.purpose, consent.notice_text, actor)
    event = await ledger.given_under(
        contact_id,
        notice,
        channel=consent.channel,
        source_interaction_id=consent.source_interaction_id,
        occurred_at=consent.occurred_at,
        actor=actor,
        created_here=consent.created_in_transaction,
    )
    return ConsentReceipt(
        event_id=event.id,
        purpose=event.purpose,
        notice_version=event.notice_version,
        notice_sha256=event.notice_sha256,
    )


@hookimpl
async def kith_record_access(kith: Kith, access: Access) -> None:
    # Imported at module level, unlike the other parts: this runs on every read.
    await AuditLog(kith).record_access(access)


@hookimpl
async def kith_subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection:
    from kith.privacy.rights.export import rights_section

    return await rights_section(kith, contact_id)


@hookimpl
async def kith_subject_erase(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.privacy.rights.erasure import erase_rights_records

    return await erase_rights_records(kith, contact_id)


@hookimpl
async def kith_subject_erase_preview(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.privacy.rights.erasure import erase_rights_records

    return await erase_rights_records(kith, contact_id, dry_run=True)


@hookimpl
async def kith_subject_holds(kith: Kith, contact_id: uuid.UUID) -> list[SubjectHold]:
    from kith.privacy.rights.erasure import legal_holds

    return await legal_holds(kith, contact_id)


@hookimpl
async def kith_subject_merge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    choices: dict[str, uuid.UUID],
) -> Any:
    from kith.privacy.rights import merging

    return await merging.merge(kith, survivor, losers)


@hookimpl
async def kith_subject_unmerge(
    kith: Kith, merge_id: uuid.UUID, survivor: uuid.UUID, losers: list[uuid.UUID], note: Any
) -> None:
    from kith.privacy.rights import merging

    await merging.unmerge(kith, survivor, note)


@hookimpl
async def kith_subject_consents(kith: Kith, contact_id: uuid.UUID) -> list[ConsentLine]:
    from kith.privacy.rights.consent import ConsentService

    return [
        ConsentLine(
            purpose=state.purpose,
            lawful_basis=state.lawful_basis,
            status=state.status,
            since=state.since,
            channel=state.channel,
            notice_version=state.notice_version,
        )
        for state in await ConsentService(kith).current(contact_id)
    ]


@hookimpl
async def kith_change_consent(
    kith: Kith, contact_id: uuid.UUID, purpose: str, action: str, channel: str, actor: Actor
) -> ConsentReceipt:
    from kith.privacy.rights.consent import ConsentRecord, ConsentService

    # The API's own service and rules: a given consent refers to the current notice.
    event = await ConsentService(kith).record(
        contact_id,
        ConsentRecord(purpose=purpose, action=action, channel=channel),  # type: ignore[arg-type]
        actor,
    )
    return ConsentReceipt(
        event_id=event.id,
        purpose=event.purpose,
        notice_version=event.notice_version,
        notice_sha256=event.notice_sha256,
    )
