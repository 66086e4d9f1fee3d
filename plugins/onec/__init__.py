"""1C:Enterprise sync, as a built-in plugin: the CommerceML exchange 1C drives ("exchange with
the site"), and a client for 1C's OData interface for two-way sync of counterparties.

Registered through the ``kith`` entry-point group (``onec = "kith.plugins.onec"``), exactly
like a third-party plugin, built only on hooks any plugin can use. docs/onec.md describes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kith import (
    ErasureOutcome,
    ExportSection,
    FieldCreate,
    Purpose,
    Recipient,
    RecipientNotice,
    Subscriber,
    hookimpl,
)

if TYPE_CHECKING:
    import click
    import msgspec
    from kith import Kith, NavLink, Settings
    from piccolo.conf.apps import AppConfig

# The hooks import their modules when called: loading the plugin stays cheap, and the CLI and
# HTTP modules load only where they are used.


@hookimpl
def kith_startup(kith: Kith) -> None:
    """Have the worker pull from and push to 1C on a schedule when OData is configured."""
    from kith.plugins.onec.settings import onec_settings

    settings = onec_settings(kith)
    if kith.bus.running or not settings.odata_url or not settings.sync_minutes:
        return
    from kith.plugins.onec.odata import scheduled_sync

    async def job() -> object:
        return await scheduled_sync(kith)

    kith.bus.add_job("onec.sync", settings.sync_minutes * 60, job)


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    from kith.plugins.onec.piccolo_app import APP_CONFIG

    register(APP_CONFIG)


@hookimpl
def kith_register_pages(register: Callable[[Any], None]) -> None:
    from kith.plugins.onec.pages import PAGES

    for page in PAGES:
        register(page)


@hookimpl
def kith_register_templates(register: Callable[[Path], None]) -> None:
    register(Path(__file__).parent / "templates")


@hookimpl
def kith_register_navigation(register: Callable[[NavLink], None]) -> None:
    from kith.plugins.onec.pages import NAVIGATION

    register(NAVIGATION)


@hookimpl
def kith_register_configured_routes(settings: Settings, register: Callable[[Any], None]) -> None:
    """The exchange endpoint at the paths 1C's node was given (``[onec] exchange_paths``)."""
    from kith.plugins.onec.routes import exchange_handler
    from kith.plugins.onec.settings import OnecSettings

    register(exchange_handler(settings.parsed("onec", OnecSettings).exchange_paths))


@hookimpl
def kith_register_subscribers(register: Callable[[Subscriber], None]) -> None:
    """Orders logged in Kith for customers 1C knows wait for the next query reply."""
    from kith.plugins.onec.query import on_order_logged

    register(
        Subscriber(name="onec.orders", events=("interaction.logged",), handler=on_order_logged)
    )


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    from kith.plugins.onec.cli import onec

    register(onec)


@hookimpl
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    from kith.plugins.onec.settings import OnecSettings

    register("onec", OnecSettings)


@hookimpl
def kith_register_custom_fields(register: Callable[[FieldCreate], None]) -> None:
    from kith.plugins.onec.fields import CUSTOM_FIELDS

    for field in CUSTOM_FIELDS:
        register(field)


@hookimpl
def kith_register_purposes(register: Callable[[Purpose], None]) -> None:
    from kith.plugins.onec.privacy import ACCOUNTING_PURPOSE

    register(ACCOUNTING_PURPOSE)


@hookimpl
def kith_register_recipients(register: Callable[[Recipient], None]) -> None:
    from kith.plugins.onec.privacy import ONEC_RECIPIENT

    register(ONEC_RECIPIENT)


@hookimpl
async def kith_subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    from kith.plugins.onec import privacy

    return await privacy.export(kith, contact_id)


@hookimpl
async def kith_subject_erase(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.plugins.onec import privacy

    return await privacy.erase(contact_id)


@hookimpl
async def kith_subject_erase_preview(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.plugins.onec import privacy

    return await privacy.erase(contact_id, dry_run=True)


@hookimpl
async def kith_notify_recipient(
    kith: Kith, recipient: Recipient, action: str, contact_id: uuid.UUID, notice_id: uuid.UUID
) -> RecipientNotice | None:
    from kith.plugins.onec import privacy

    return await privacy.notify(kith, recipient, action, contact_id, notice_id)


@hookimpl
async def kith_notify_recipient_preview(
    recipient: Recipient, contact_id: uuid.UUID
) -> RecipientNotice | None:
    from kith.plugins.onec import privacy

    return await privacy.notify_preview(recipient, contact_id)


@hookimpl
async def kith_subject_merge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    choices: dict[str, uuid.UUID],
) -> Any:
    from kith.plugins.onec import privacy

    return await privacy.merge(kith, survivor, losers)


@hookimpl
async def kith_subject_unmerge(
    kith: Kith, merge_id: uuid.UUID, survivor: uuid.UUID, losers: list[uuid.UUID], note: Any
) -> None:
    from kith.plugins.onec import privacy

    await privacy.unmerge(kith, survivor, note)
