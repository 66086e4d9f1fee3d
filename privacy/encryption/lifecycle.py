"""Starting field encryption when Kith opens: registry check, keys, blind-index root key, state.

Runs from ``kith_startup`` (after the database is connected) and again after ``kith migrate``
(the privacy tables may only exist from then on). It is idempotent: running it again keeps the
data-key cache.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from kith.logs import for_a_command, get_logger
from kith.privacy.encryption import jobs, root_keys
from kith.privacy.encryption.blind_index import ROOT_PURPOSE, BlindIndex
from kith.privacy.encryption.errors import UnknownKek
from kith.privacy.encryption.field_registry import FieldRegistry, build_registry
from kith.privacy.encryption.keyfile import LocalKeyFile
from kith.privacy.encryption.keys import DataKeyStore, KeyCache
from kith.privacy.encryption.primitives import random_key
from kith.privacy.encryption.protector import PrivacyProtector
from kith.privacy.encryption.redaction import redactor
from kith.privacy.encryption.settings import (
    encryption_settings,
    key_file_beside_database,
    key_file_path,
)
from kith.privacy.encryption.tables import DataKey, Tombstone
from kith.protection import KeyProvider
from kith.runtime import Kith
from kith.settings import Settings
from kith.subject_data import holds_of

# Before root keys, the KEK the blind-index root was derived from; carried over at start-up.
STATE_INDEX_KEK = "blind_index_kek"
STATE_INDEX_ROOT = "blind_index_root"
STATE_PLAINTEXT = "plaintext_encrypted"

_log = get_logger("kith.privacy")
_warned: set[str] = set()


def key_provider(kith: Kith) -> KeyProvider:
    """The provider a plugin offers through ``kith_key_provider``, else the local key file."""
    plugins: Any = getattr(kith, "plugins", None)
    if plugins is not None:
        result = plugins.call_first("kith_key_provider", settings=kith.settings)
        if result is not None:
            provider: KeyProvider = result.value
            return provider
    return LocalKeyFile(key_file_path(kith.settings))


def key_file_warning(settings: Settings, provider: object) -> str | None:
    """Why the built-in key file's place is unsafe, if it is (another provider has no file)."""
    if not isinstance(provider, LocalKeyFile):
        return None
    return key_file_beside_database(settings, provider.path)


def registry_of(kith: Kith) -> FieldRegistry:
    fields = getattr(kith, "personal_fields", None)
    if fields is None:
        from kith.personal import CORE_PERSONAL_FIELDS

        fields = list(CORE_PERSONAL_FIELDS)
    return build_registry(fields, kith.database.apps)


async def _personal_rows_exist(registry: FieldRegistry) -> bool:
    for personal in registry.tables.values():
        if await personal.table.table_exists().run() and await personal.table.exists().run():
            return True
    return False


async def _index_root(provider: KeyProvider, tables_ready: bool, encrypted: bool) -> BlindIndex:
    """The blind index over the recorded root key; made (or carried over from the KEK an older
    version derived it from) on the first start with the privacy tables."""
    if not tables_ready:
        # Nothing can be stored yet; this runs again after ``kith migrate``.
        return BlindIndex(random_key(), "")
    recorded = await jobs.get_state(STATE_INDEX_ROOT)
    if recorded is None:
        legacy = await jobs.get_state(STATE_INDEX_KEK)
        if legacy is not None and legacy in await provider.kek_ids():
            made = await root_keys.adopt(provider, root_keys.BLIND_INDEX, legacy, ROOT_PURPOSE)
        elif legacy is not None and encrypted:
            raise UnknownKek(
                f"the blind indexes derive from key-encryption key {legacy}, which the key "
                "provider does not have; restore the key file that holds it"
            )
        else:
            made = await root_keys.create(provider, root_keys.BLIND_INDEX)
        recorded = await jobs.claim_state(STATE_INDEX_ROOT, str(made))
        if recorded != str(made):
            # Another process started at the same moment and its root was recorded first.
            await root_keys.delete(made)
        await jobs.delete_state(STATE_INDEX_KEK)
    root = await root_keys.load(provider, uuid.UUID(recorded))
    if root is None:
        raise UnknownKek(
            f"the root key {recorded} of the blind indexes is not in kith_privacy_root_key; "
            "restore that table from the backup of the key table"
        )
    return BlindIndex(root, recorded)


async def _forget_resurrected_keys(kith: Kith) -> None:
    """Delete data keys of shredded subjects. They can only come back with a key-table backup
    restored over a database that records the shredding; the tombstones win."""
    shredded = DataKey.subject.is_in(Tombstone.select(Tombstone.subject))
    if not await DataKey.exists().where(shredded):
        return
    await DataKey.delete().where(shredded).run()
    # As after a shred: leave no copy in the database's own files.
    from kith.privacy.encryption.shredding import scrub_key_storage

    await scrub_key_storage(kith)


async def _hold_subjects(kith: Kith, subject: uuid.UUID) -> list[uuid.UUID]:
    """The subjects whose keys seal what the legal holds of ``subject`` keep."""
    return [hold.seal_for for hold in await holds_of(kith, subject)]


async def start_privacy(kith: Kith, protector: PrivacyProtector) -> None:
    """Make ``protector`` ready: check the registry, open the keys, load the state."""
    registry = registry_of(kith)
    for warning in registry.warnings:
        _log.warning("privacy registry", problem=warning)
    redactor.set_field_names(registry.log_keys())

    settings = encryption_settings(kith.settings)
    provider = protector.context.get("provider") or key_provider(kith)
    ready = await jobs.tables_ready()
    encrypted = ready and await DataKeyStore.encrypted_data_exists()
    await provider.open(encrypted)
    beside = key_file_warning(kith.settings, provider)
    # Said at every start of the server and the worker (once, though `kith serve` opens Kith
    # twice); `kith privacy verify` says it too.
    if beside is not None and not for_a_command() and beside not in _warned:
        _warned.add(beside)
        _log.warning("privacy key file beside the database", problem=beside)

    index = await _index_root(provider, ready, encrypted)
    store = protector._keys or DataKeyStore(
        provider, KeyCache(settings.key_cache_size, settings.key_cache_ttl_seconds)
    )
    protector.attach(store, index)
    protector.other_key_owners = functools.partial(_hold_subjects, kith)
    protector.context.update(registry=registry, provider=provider, tables_ready=ready)

    protector.allow_plaintext = False
    if ready:
        await _forget_resurrected_keys(kith)
        state = await jobs.get_state(STATE_PLAINTEXT)
        if state is None:
            # First start with the privacy tables: a database older than encryption may hold
            # plaintext; a fresh one does not.
            state = "pending" if await _personal_rows_exist(registry) else jobs.DONE
            await jobs.set_state(STATE_PLAINTEXT, state)
        if state != jobs.DONE:
            protector.allow_plaintext = True
            _log.warning(
                "personal data from before encryption is still stored in plaintext; "
                "run `kith migrate` to encrypt it"
            )
