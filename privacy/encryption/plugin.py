"""Field encryption and keys, as a built-in plugin (entry point ``privacy.encryption``).

It joins Kith through hooks any plugin can use: its piccolo app (data keys, tombstones, job
progress), its ``kith privacy`` commands (fields, keys, shred, encrypt, verify), its keys of
``[privacy]``, the field protector core stores every personal value through, the default key
provider (the local key file, tried last so a KMS plugin wins), start-up (registry check, keys,
log redaction) and the data migration after ``kith migrate`` (encrypting old plaintext).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
from kith import hookimpl, logs
from kith.privacy.encryption import lifecycle, plaintext_migration
from kith.privacy.encryption.protector import PrivacyProtector
from kith.privacy.encryption.redaction import redactor

if TYPE_CHECKING:
    import click
    import msgspec
    from kith import EventType, Kith, Settings
    from kith.protection import KeyProvider
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


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    from kith.privacy.encryption.piccolo_app import APP_CONFIG

    register(APP_CONFIG)


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    from kith.privacy.encryption.cli import privacy

    register(privacy)


@hookimpl
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    from kith.privacy.encryption.settings import SECTION, EncryptionSettings

    register(SECTION, EncryptionSettings)


@hookimpl
def kith_register_event_types(register: Callable[[EventType], None]) -> None:
    from kith.privacy.encryption.shredding import SHREDDED_EVENT

    register(SHREDDED_EVENT)


@hookimpl
def kith_field_protector(kith: Kith) -> PrivacyProtector:
    return PrivacyProtector()


# Last, so that a plugin keeping the keys in a KMS or Vault wins.
@hookimpl(trylast=True)
def kith_key_provider(settings: Settings) -> KeyProvider:
    from kith.privacy.encryption.keyfile import LocalKeyFile
    from kith.privacy.encryption.settings import key_file_path

    return LocalKeyFile(key_file_path(settings))


# First, so that every other plugin's start-up can already read personal fields.
@hookimpl(tryfirst=True)
async def kith_startup(kith: Kith) -> None:
    install_redaction()
    protector = kith.protector
    if isinstance(protector, PrivacyProtector):
        await lifecycle.start_privacy(kith, protector)
        from kith.privacy.encryption.shredding import RESCRUB_EVERY, rescrub_after_recent_shreds

        async def rescrub() -> None:
            await rescrub_after_recent_shreds(kith)

        kith.bus.add_job("privacy.scrub-keys", RESCRUB_EVERY.total_seconds(), rescrub)


@hookimpl
async def kith_after_migrate(kith: Kith) -> None:
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
