"""The encryption half of the privacy plugin: what :mod:`kith.privacy.plugin`'s hooks call.

Field encryption joins Kith through these hooks: its piccolo app, its commands, the field
protector (created when Kith opens, given its keys at start-up), the default key provider (the
local key file, tried last so a KMS plugin wins), start-up (registry check, keys, log
redaction) and the data migration after ``kith migrate`` (encrypting old plaintext).
"""

from __future__ import annotations

from collections.abc import Callable

import click
import structlog
from kith import logs
from kith.events import EventType
from kith.privacy import cli, lifecycle, plaintext_migration
from kith.privacy.key_settings import key_settings
from kith.privacy.keyfile import LocalKeyFile
from kith.privacy.piccolo_app import APP_CONFIG
from kith.privacy.protector import PrivacyProtector
from kith.privacy.redaction import redactor
from kith.privacy.shredding import SHREDDED_EVENT
from kith.protection import KeyProvider
from kith.runtime import Kith
from kith.settings import Settings
from piccolo.conf.apps import AppConfig

_log = logs.get_logger("kith.privacy")


def install_redaction() -> None:
    """Put the redacting processor into Kith's logging, now and at every later configure."""
    logs.add_processor(redactor)
    if not structlog.is_configured():
        return
    # The CLI configures logging before plugins are loaded; add the processor to the running
    # chain too, before the last two steps (exception formatting and the renderer).
    processors = list(structlog.get_config()["processors"])
    if redactor not in processors:
        processors.insert(max(len(processors) - 2, 0), redactor)
        structlog.configure(processors=processors)


def register_apps(register: Callable[[AppConfig], None]) -> None:
    register(APP_CONFIG)


def add_commands(group: click.Group) -> None:
    cli.add_commands(group)


def register_event_types(register: Callable[[EventType], None]) -> None:
    register(SHREDDED_EVENT)


def field_protector(kith: Kith) -> PrivacyProtector:
    return PrivacyProtector()


def key_provider(settings: Settings) -> KeyProvider:
    return LocalKeyFile(key_settings(settings).key_file)


async def startup(kith: Kith) -> None:
    install_redaction()
    protector = kith.protector
    if isinstance(protector, PrivacyProtector):
        await lifecycle.start_privacy(kith, protector)


async def after_migrate(kith: Kith) -> None:
    protector = kith.protector
    if not isinstance(protector, PrivacyProtector):
        return
    await lifecycle.start_privacy(kith, protector)
    if protector.allow_plaintext:
        _log.info("privacy encrypting personal data stored before encryption")
        report = await plaintext_migration.encrypt_existing(kith)
        _log.info(
            "privacy plaintext encrypted",
            rows_seen=report.rows_seen,
            rows_encrypted=report.rows_encrypted,
        )
