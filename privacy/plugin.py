"""The privacy module's plugin object: the hooks through which it joins Kith.

Registered through the ``kith`` entry-point group (``privacy = "kith.privacy.plugin"``), exactly
like a third-party plugin. A hook is implemented once per plugin, so each implementation here
calls both halves of the privacy module: encryption and keys
(:mod:`kith.privacy.encryption_plugin`), and the request workflow
(:mod:`kith.privacy.workflow_plugin`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import click
import msgspec
from kith.actor import Actor
from kith.events import EventType
from kith.hookspecs import hookimpl
from kith.personal import PersonalField
from kith.privacy import encryption_plugin, subject_plugin, workflow_plugin
from kith.privacy.protector import PrivacyProtector
from kith.privacy.section import PrivacySection
from kith.protection import KeyProvider
from kith.runtime import Kith
from kith.settings import Settings
from kith.subjects import Access, ErasureOutcome, ExportSection, Subscriber
from piccolo.conf.apps import AppConfig


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    encryption_plugin.register_apps(register)
    workflow_plugin.register_apps(register)
    subject_plugin.register_apps(register)


@hookimpl
def kith_register_routes(register: Callable[[Any], None]) -> None:
    workflow_plugin.register_routes(register)
    subject_plugin.register_routes(register)


@click.group("privacy")
def privacy() -> None:
    """Privacy: personal fields, keys and shredding; consent, data subject requests,
    certificates, records of processing."""


encryption_plugin.add_commands(privacy)
workflow_plugin.add_commands(privacy)
subject_plugin.add_commands(privacy)


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    register(privacy)


@hookimpl
def kith_register_event_types(register: Callable[[EventType], None]) -> None:
    encryption_plugin.register_event_types(register)
    workflow_plugin.register_event_types(register)
    subject_plugin.register_event_types(register)


@hookimpl
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    register("privacy", PrivacySection)


@hookimpl
def kith_register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    workflow_plugin.register_personal_fields(register)
    subject_plugin.register_personal_fields(register)


@hookimpl
def kith_field_protector(kith: Kith) -> PrivacyProtector:
    return encryption_plugin.field_protector(kith)


# Last, so that a plugin keeping the keys in a KMS or Vault wins.
@hookimpl(trylast=True)
def kith_key_provider(settings: Settings) -> KeyProvider:
    return encryption_plugin.key_provider(settings)


# First, so that every other plugin's start-up can already read personal fields.
@hookimpl(tryfirst=True)
async def kith_startup(kith: Kith) -> None:
    await encryption_plugin.startup(kith)
    workflow_plugin.startup(kith)
    subject_plugin.startup(kith)


@hookimpl
async def kith_shutdown(kith: Kith) -> None:
    await subject_plugin.shutdown(kith)


@hookimpl
async def kith_after_migrate(kith: Kith) -> None:
    await encryption_plugin.after_migrate(kith)


@hookimpl
async def kith_subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection:
    return await workflow_plugin.subject_export(kith, contact_id)


@hookimpl
async def kith_subject_erase(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    return await workflow_plugin.subject_erase(kith, contact_id)


@hookimpl
async def kith_subject_erase_preview(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    return await workflow_plugin.subject_erase(kith, contact_id, dry_run=True)


@hookimpl
def kith_register_subscribers(register: Callable[[Subscriber], None]) -> None:
    subject_plugin.register_subscribers(register)


@hookimpl
async def kith_check_new_contact(
    kith: Kith,
    contact_id: uuid.UUID,
    emails: list[str],
    phones: list[str],
    override_reason: str | None,
    actor: Actor,
) -> None:
    await subject_plugin.check_new_contact(kith, contact_id, emails, phones, override_reason, actor)


@hookimpl
async def kith_check_processing(kith: Kith, contact_id: uuid.UUID, activity: str) -> str | None:
    return await subject_plugin.check_processing(kith, contact_id, activity)


@hookimpl
async def kith_record_access(kith: Kith, access: Access) -> None:
    await subject_plugin.record_access(kith, access)
