"""Telephony: every call from the office PBX or a cloud provider on the right contact's timeline.

Registered through the ``kith`` entry-point group (``telephony = "kith.plugins.telephony"``),
exactly like a third-party plugin. It declares a hook of its own (``kith_telephony_providers``,
in :mod:`kith.plugins.telephony.hookspecs`) through which provider adapters plug in, and brings
three webhook providers itself: Twilio, Zadarma and Mango Office. docs/telephony.md describes it.
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
    PersonalField,
    Recipient,
    RecipientNotice,
    Subscriber,
    hookimpl,
)

if TYPE_CHECKING:
    import click
    import msgspec
    import pluggy
    from kith import Actor, CardSection, InteractionOut, Kith, NavLink
    from kith.plugins.telephony.providers import CallProvider
    from piccolo.conf.apps import AppConfig

RETENTION_EVERY_S = 3600.0
_CALL = ("call_id", "provider", "provider_call_id", "interaction_id", "contact_id", "extension")
_WHO = ("user_id", "direction")

EVENT_TYPES = (
    EventType(
        "call.started",
        "A call began (usually while the phone still rings): pop the caller's card on "
        "user_id's screen. new_lead says the caller was unknown and a lead was made.",
        (*_CALL, *_WHO, "new_lead"),
    ),
    EventType("call.answered", "Someone answered a call.", (*_CALL, *_WHO)),
    EventType(
        "call.missed",
        "An inbound call nobody answered; callback_task_id is the task made to call back.",
        (*_CALL, *_WHO, "callback_task_id"),
    ),
    EventType(
        "call.ended",
        "A call ended, with its outcome and durations.",
        (*_CALL, *_WHO, "outcome", "duration_s", "talk_s"),
    ),
    EventType(
        "call.recording_ready",
        "The provider has a recording of a call.",
        (*_CALL, *_WHO, "recording_seconds"),
    ),
)


@hookimpl
def kith_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    from kith.plugins.telephony import hookspecs

    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def kith_telephony_providers(kith: Kith) -> list[CallProvider]:
    from kith.plugins.telephony.providers_registry import built_in

    return built_in(kith)


async def _forget_old_recordings(kith: Kith) -> None:
    from kith.plugins.telephony.services import CallService

    await CallService(kith).forget_old_recordings()


@hookimpl
def kith_startup(kith: Kith) -> None:
    """Delete recordings past their retention whenever the bus runs in the
    background (``kith serve``, ``kith worker``)."""
    if not kith.bus.running:
        kith.bus.add_job(
            "telephony.recordings", RETENTION_EVERY_S, lambda: _forget_old_recordings(kith)
        )
        _keep_asterisk_connected(kith)


def _keep_asterisk_connected(kith: Kith) -> None:
    """Keep the AMI connection up while the bus runs (``kith worker``, ``kith serve``)."""
    from kith.plugins.telephony.asterisk import worker
    from kith.plugins.telephony.settings import settings_of

    asterisk = settings_of(kith).asterisk
    if asterisk.enabled:
        kith.bus.add_job(
            "telephony.asterisk", worker.CHECK_EVERY_S, lambda: worker.keep_running(kith, asterisk)
        )


@hookimpl
async def kith_shutdown(kith: Kith) -> None:
    """Close the AMI connection."""
    from kith.plugins.telephony.asterisk import worker

    await worker.stop(kith)


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    from kith.plugins.telephony.piccolo_app import APP_CONFIG

    register(APP_CONFIG)


@hookimpl
def kith_register_routes(register: Callable[[Any], None]) -> None:
    from kith.plugins.telephony.routes import ROUTES

    for route in ROUTES:
        register(route)


@hookimpl
def kith_register_pages(register: Callable[[Any], None]) -> None:
    from kith.plugins.telephony import pages, routes

    for page in (*routes.PAGES, *pages.PAGES):
        register(page)


@hookimpl
def kith_register_templates(register: Callable[[Path], None]) -> None:
    register(Path(__file__).parent / "templates")


@hookimpl
def kith_register_navigation(register: Callable[[NavLink], None]) -> None:
    from kith.plugins.telephony.pages import NAVIGATION

    register(NAVIGATION)


@hookimpl
async def kith_timeline_audio(
    kith: Kith, interactions: list[InteractionOut]
) -> dict[uuid.UUID, str]:
    """Calls on the timeline whose recording is stored in Kith play on the card."""
    from kith.plugins.telephony.recordings import timeline_audio

    return await timeline_audio([item.id for item in interactions if item.kind == "call"])


@hookimpl
async def kith_contact_card_sections(
    kith: Kith, contact_id: uuid.UUID, actor: Actor, csrf_input: str, language: str
) -> CardSection | None:
    from kith.plugins.telephony.card import section

    return await section(kith, contact_id, actor, csrf_input, language)


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    from kith.plugins.telephony.cli import call, telephony

    register(telephony)
    register(call)


@hookimpl
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    from kith.plugins.telephony.settings import SECTION, TelephonySettings

    register(SECTION, TelephonySettings)


@hookimpl
def kith_register_event_types(register: Callable[[EventType], None]) -> None:
    for event_type in EVENT_TYPES:
        register(event_type)


@hookimpl
def kith_register_subscribers(register: Callable[[Subscriber], None]) -> None:
    from kith.plugins.telephony.recordings import SUBSCRIBERS

    for subscriber in SUBSCRIBERS:
        register(subscriber)


@hookimpl
def kith_register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    from kith.plugins.telephony.privacy import PERSONAL_FIELDS

    for field in PERSONAL_FIELDS:
        register(field)


@hookimpl
def kith_register_recipients(register: Callable[[Recipient], None]) -> None:
    from kith.plugins.telephony.privacy import RECIPIENTS

    for recipient in RECIPIENTS:
        register(recipient)


@hookimpl
async def kith_subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    from kith.plugins.telephony import privacy

    return await privacy.export(kith, contact_id)


@hookimpl
async def kith_subject_erase(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.plugins.telephony import privacy

    return await privacy.erase(contact_id)


@hookimpl
async def kith_subject_erase_preview(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.plugins.telephony import privacy

    return await privacy.erase(contact_id, dry_run=True)


@hookimpl
async def kith_notify_recipient(
    kith: Kith, recipient: Recipient, action: str, contact_id: uuid.UUID
) -> RecipientNotice | None:
    from kith.plugins.telephony import privacy

    return await privacy.notify(kith, recipient, action, contact_id)


@hookimpl
async def kith_notify_recipient_preview(
    kith: Kith, recipient: Recipient, contact_id: uuid.UUID
) -> RecipientNotice | None:
    from kith.plugins.telephony import privacy

    return await privacy.notify_preview(kith, recipient, contact_id)


@hookimpl
async def kith_subject_merge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    choices: dict[str, uuid.UUID],
) -> Any:
    from kith.plugins.telephony import privacy

    return await privacy.merge(kith, survivor, losers)


@hookimpl
async def kith_subject_unmerge(
    kith: Kith, merge_id: uuid.UUID, survivor: uuid.UUID, losers: list[uuid.UUID], note: Any
) -> None:
    from kith.plugins.telephony import privacy

    await privacy.unmerge(kith, survivor, note)
