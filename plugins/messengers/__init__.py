"""Messengers: conversations with contacts on Telegram, WhatsApp and any channel another
package adds, on the right contact's timeline, with replies from the card.

Registered through the ``kith`` entry-point group (``messengers = "kith.plugins.messengers"``),
exactly like a third-party plugin. It declares a hook of its own (``kith_messenger_adapters``,
in :mod:`kith.plugins.messengers.hookspecs`) through which channel adapters plug in, and
brings two itself: the Telegram Bot API and the WhatsApp Business Cloud API.
docs/messengers.md describes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kith import (
    Actor,
    CardSection,
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
    from kith import Event, Kith
    from kith.plugins.messengers.adapters import MessengerAdapter
    from piccolo.conf.apps import AppConfig

SEND_SUBSCRIBER = "messengers.send"
_MESSAGE = (
    "message_id",
    "conversation_id",
    "channel",
    "external_id",
    "direction",
    "status",
    "interaction_id",
    "attachments",
)

EVENT_TYPES = (
    EventType(
        "message.received",
        "A contact wrote on a messenger. new_lead says the sender was unknown and a lead was "
        "made; attachments counts the files (their references are on the message).",
        (*_MESSAGE, "new_lead"),
    ),
    EventType(
        "message.queued",
        "A message to a contact is waiting for its provider (the send subscriber takes it).",
        _MESSAGE,
    ),
    EventType("message.sent", "The provider took a message to a contact.", _MESSAGE),
    EventType(
        "message.status",
        "What became of a message sent: delivered, read, or failed with error.",
        (*_MESSAGE, "error", "at"),
    ),
)


@hookimpl
def kith_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    from kith.plugins.messengers import hookspecs

    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def kith_messenger_adapters(kith: Kith) -> list[MessengerAdapter]:
    from kith.plugins.messengers.registry import built_in

    return built_in(kith)


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    from kith.plugins.messengers.piccolo_app import APP_CONFIG

    register(APP_CONFIG)


@hookimpl
def kith_register_routes(register: Callable[[Any], None]) -> None:
    from kith.plugins.messengers.routes import ROUTES

    for route in ROUTES:
        register(route)


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    from kith.plugins.messengers.cli import messengers

    register(messengers)


@hookimpl
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    from kith.plugins.messengers.settings import SECTION, MessengersSettings

    register(SECTION, MessengersSettings)


@hookimpl
def kith_register_event_types(register: Callable[[EventType], None]) -> None:
    for event_type in EVENT_TYPES:
        register(event_type)


async def _send(kith: Kith, event: Event) -> None:
    from kith.plugins.messengers.services import on_queued

    await on_queued(kith, event)


@hookimpl
def kith_register_subscribers(register: Callable[[Subscriber], None]) -> None:
    from kith.plugins.messengers.services import QUEUED, SEND_ATTEMPTS

    register(
        Subscriber(
            name=SEND_SUBSCRIBER, events=(QUEUED,), handler=_send, max_attempts=SEND_ATTEMPTS
        )
    )


@hookimpl
def kith_register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    from kith.plugins.messengers.privacy import PERSONAL_FIELDS

    for field in PERSONAL_FIELDS:
        register(field)


@hookimpl
def kith_register_recipients(register: Callable[[Recipient], None]) -> None:
    from kith.plugins.messengers.privacy import RECIPIENTS

    for recipient in RECIPIENTS:
        register(recipient)


@hookimpl
async def kith_contact_card_sections(
    kith: Kith, contact_id: uuid.UUID, actor: Actor, csrf_input: str, language: str
) -> CardSection | None:
    from kith.plugins.messengers.card import section

    return await section(kith, contact_id, actor, csrf_input, language)


@hookimpl
async def kith_subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    from kith.plugins.messengers import privacy

    return await privacy.export(kith, contact_id)


@hookimpl
async def kith_subject_erase(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.plugins.messengers import privacy

    return await privacy.erase(contact_id)


@hookimpl
async def kith_subject_erase_preview(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.plugins.messengers import privacy

    return await privacy.erase(contact_id, dry_run=True)


@hookimpl
async def kith_notify_recipient(
    kith: Kith, recipient: Recipient, action: str, contact_id: uuid.UUID
) -> RecipientNotice | None:
    from kith.plugins.messengers import privacy

    return await privacy.notify(kith, recipient, action, contact_id)


@hookimpl
async def kith_notify_recipient_preview(
    kith: Kith, recipient: Recipient, contact_id: uuid.UUID
) -> RecipientNotice | None:
    from kith.plugins.messengers import privacy

    return await privacy.notify_preview(kith, recipient, contact_id)


@hookimpl
async def kith_subject_merge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    choices: dict[str, uuid.UUID],
) -> Any:
    from kith.plugins.messengers import privacy

    return await privacy.merge(kith, survivor, losers)


@hookimpl
async def kith_subject_unmerge(
    kith: Kith, merge_id: uuid.UUID, survivor: uuid.UUID, losers: list[uuid.UUID], note: Any
) -> None:
    from kith.plugins.messengers import privacy

    await privacy.unmerge(kith, survivor, note)
