"""Web forms: lead capture from any website, as a built-in plugin.

Registered through the ``kith`` entry-point group (``webforms = "kith.plugins.webforms"``),
like a third-party plugin, and built only on hooks any plugin can use. A submission becomes a
contact (found by email or phone, or new), a ``form_submission`` interaction with its
attribution, and consent tied to the notice shown. docs/webforms.md describes it.
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
    Purpose,
    hookimpl,
)

if TYPE_CHECKING:
    import click
    import msgspec
    from kith import Kith, NavLink
    from piccolo.conf.apps import AppConfig

EXPIRY_INTERVAL_S = 600.0


@hookimpl
async def kith_startup(kith: Kith) -> None:
    """Write the forms of kith.toml; have the bus drop unconfirmed opt-ins in time."""
    from kith.plugins.webforms.service import FormService, SubmissionService

    await FormService(kith).sync_settings()
    if not kith.bus.running:
        kith.bus.add_job(
            "webforms.opt_in_expiry", EXPIRY_INTERVAL_S, SubmissionService(kith).expire
        )


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    from kith.plugins.webforms.piccolo_app import APP_CONFIG

    register(APP_CONFIG)


@hookimpl
def kith_register_routes(register: Callable[[Any], None]) -> None:
    from kith.plugins.webforms.routes import FormController, public_router

    register(FormController)
    register(public_router())


@hookimpl
def kith_register_pages(register: Callable[[Any], None]) -> None:
    from kith.plugins.webforms.pages import PAGES

    for page in PAGES:
        register(page)


@hookimpl
def kith_register_templates(register: Callable[[Path], None]) -> None:
    register(Path(__file__).parent / "templates")


@hookimpl
def kith_register_navigation(register: Callable[[NavLink], None]) -> None:
    from kith.plugins.webforms.pages import NAVIGATION

    register(NAVIGATION)


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    from kith.plugins.webforms.cli import forms

    register(forms)


@hookimpl
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    from kith.plugins.webforms.schemas import WebformSettings

    register("webforms", WebformSettings)


@hookimpl
def kith_register_event_types(register: Callable[[EventType], None]) -> None:
    register(
        EventType(
            "form.submitted",
            "A web form was submitted and recorded on a contact's timeline.",
            ("form_id", "interaction_id", "contact_id", "created"),
        )
    )


@hookimpl
def kith_register_purposes(register: Callable[[Purpose], None]) -> None:
    from kith.plugins.webforms.privacy import MARKETING

    register(MARKETING)


@hookimpl
def kith_register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    from kith.plugins.webforms.privacy import PERSONAL_FIELDS

    for field in PERSONAL_FIELDS:
        register(field)


@hookimpl
async def kith_subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    from kith.plugins.webforms import privacy

    return await privacy.export(kith, contact_id)


@hookimpl
async def kith_subject_erase(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.plugins.webforms import privacy

    return await privacy.erase(contact_id)


@hookimpl
async def kith_subject_erase_preview(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    from kith.plugins.webforms import privacy

    return await privacy.erase(contact_id, dry_run=True)


@hookimpl
async def kith_subject_merge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    choices: dict[str, uuid.UUID],
) -> Any:
    from kith.plugins.webforms import privacy

    return await privacy.merge(kith, survivor, losers)


@hookimpl
async def kith_subject_unmerge(
    kith: Kith, merge_id: uuid.UUID, survivor: uuid.UUID, losers: list[uuid.UUID], note: Any
) -> None:
    from kith.plugins.webforms import privacy

    await privacy.unmerge(kith, survivor, note)
