"""Outgoing webhooks: HMAC-signed deliveries of Kith's events, as a built-in plugin.

Registered through the ``kith`` entry-point group (``webhooks = "kith.plugins.webhooks"``),
exactly like a third-party plugin, and built only on hooks any plugin can use: its tables, its
API, its ``kith webhooks`` command, its settings section and an event-bus subscriber.
docs/plugins/webhooks.md describes it for receivers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kith import (
    ErasureOutcome,
    Event,
    ExportSection,
    PersonalField,
    Purpose,
    Recipient,
    RecipientNotice,
    Subscriber,
    hookimpl,
)

if TYPE_CHECKING:
    import click
    import msgspec
    from kith import Kith, NavLink
    from piccolo.conf.apps import AppConfig

SUBSCRIBER_NAME = "webhooks"

# The hooks import their modules when called: loading the plugin stays cheap, and the CLI and
# HTTP modules (which import Kith's own CLI and HTTP packages) load only where they are used.


async def on_event(kith: Kith, event: Event) -> None:
    """The bus subscriber: record a delivery per matching subscription and try it at once."""
    from kith.plugins.webhooks.delivery import WebhookDeliverer

    await WebhookDeliverer(kith).handle(event)


@hookimpl
def kith_startup(kith: Kith) -> None:
    """Have the bus send due retries whenever it runs in the background (``kith serve``,
    ``kith worker``)."""
    from kith.plugins.webhooks.delivery import WebhookDeliverer, settings_of

    if not kith.bus.running:
        retries = WebhookDeliverer(kith).run_due
        kith.bus.add_job("webhooks.retries", settings_of(kith).poll_seconds, retries)


# Last, so that field encryption has started (its own data migration runs before this one).
@hookimpl(trylast=True)
async def kith_after_migrate(kith: Kith) -> None:
    """Seal the subscription secrets stored readable by an earlier version."""
    from kith.plugins.webhooks.secret_store import seal_readable

    await seal_readable(kith)


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    from kith.plugins.webhooks.piccolo_app import APP_CONFIG

    register(APP_CONFIG)


@hookimpl
def kith_register_pages(register: Callable[[Any], None]) -> None:
    from kith.plugins.webhooks.pages import PAGES

    for page in PAGES:
        register(page)


@hookimpl
def kith_register_templates(register: Callable[[Path], None]) -> None:
    register(Path(__file__).parent / "templates")


@hookimpl
def kith_register_navigation(register: Callable[[NavLink], None]) -> None:
    from kith.plugins.webhooks.pages import NAVIGATION

    register(NAVIGATION)


@hookimpl
def kith_register_routes(register: Callable[[Any], None]) -> None:
    from kith.plugins.webhooks.routes import WebhookController

    register(WebhookController)


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    from kith.plugins.webhooks.cli import webhooks

    register(webhooks)


@hookimpl
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    from kith.plugins.webhooks.schemas import WebhookSettings

    register("webhooks", WebhookSettings)


@hookimpl
def kith_register_subscribers(register: Callable[[Subscriber], None]) -> None:
    # Every event: which ones go out is up to the subscriptions, which change at run time.
    register(Subscriber(name=SUBSCRIBER_NAME, events=("*",), handler=on_event))


@hookimpl
def kith_register_purposes(register: Callable[[Purpose], None]) -> None:
    from kith.plugins.webhooks.privacy import WEBHOOK_PURPOSE

    register(WEBHOOK_PURPOSE)


@hookimpl
def kith_register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    from kith.plugins.webhooks.privacy import RESPONSE_FIELD

    register(RESPONSE_FIELD)


@hookimpl
def kith_register_recipients(register: Callable[[Recipient], None]) -> None:
    from kith.plugins.webhooks.privacy import WEBHOOK_RECIPIENT

    register(WEBHOOK_RECIPIENT)


@hookimpl
async def kith_subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    from kith.plugins.webhooks import privacy

    return await privacy.export(kith, contact_id)


@hookimpl
async def kith_subject_erase(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.plugins.webhooks import privacy

    return await privacy.erase(contact_id)


@hookimpl
async def kith_subject_erase_preview(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.plugins.webhooks import privacy

    return await privacy.erase(contact_id, dry_run=True)


@hookimpl
async def kith_notify_recipient(
    recipient: Recipient, action: str, contact_id: uuid.UUID, notice_id: uuid.UUID
) -> RecipientNotice | None:
    from kith.plugins.webhooks import privacy

    return await privacy.notify(recipient, action, contact_id, notice_id)


@hookimpl
async def kith_notify_recipient_preview(
    recipient: Recipient, contact_id: uuid.UUID
) -> RecipientNotice | None:
    from kith.plugins.webhooks import privacy

    return await privacy.notify_preview(recipient, contact_id)


@hookimpl
async def kith_subject_merge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    choices: dict[str, uuid.UUID],
) -> Any:
    from kith.plugins.webhooks import privacy

    return await privacy.merge(kith, survivor, losers)


@hookimpl
async def kith_subject_unmerge(
    kith: Kith, merge_id: uuid.UUID, survivor: uuid.UUID, losers: list[uuid.UUID], note: Any
) -> None:
    from kith.plugins.webhooks import privacy

    await privacy.unmerge(kith, survivor, note)
