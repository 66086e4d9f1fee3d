"""Keys on SQLite and PostgreSQL: the key file's safety checks, the registry's start-up check,
KEK rotation (while serving, and killed half-way), pruning and the blind-index re-index."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import structlog
from _privacy_storage import cli_env, kith_command, protector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kith.bootstrap import open_kith
from kith.hookspecs import hookimpl
from kith.logs import configure_logging
from kith.personal import PersonalField
from kith.plugin_manager import load_plugin_manager
from kith.privacy.encryption import jobs, reindex, rotation
from kith.privacy.encryption.errors import KeyFileError, RegistryError
from kith.privacy.encryption.settings import encryption_settings, key_file_path
from kith.privacy.encryption.tables import DataKey, RootKey
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, PhoneIn
from kith.services.contacts import ContactService
from kith.settings import SettingsError
from kith.testing import settings_for
from piccolo.columns import UUID, Text
from piccolo.conf.apps import AppConfig
from piccolo.table import Table


def _manager(*plugins: object):
    manager = load_plugin_manager()
    for plugin in plugins:
        manager.register(plugin)
    return manager


async def _open(settings, *plugins: object) -> Kith:
    kith = open_kith(settings, plugin_manager=_manager(*plugins))
    await kith.start()
    return kith


async def _contacts(kith: Kith, count: int) -> list[uuid.UUID]:
    service = ContactService(kith)
    ids = []
    for index in range(count):
        created = await service.create(
            ContactCreate(
                name=f"Person {index}",
                emails=[EmailIn(f"person{index}@example.com")],
                phones=[PhoneIn(f"+44 20 7946 {index:04d}")],
            )
        )
        ids.append(created.id)
    return ids


# -- the key file ------------------------------------------------------------------------------


async def test_key_file_is_created_private(kith: Kith, kith_settings) -> None:
    path = key_file_path(kith_settings)
    assert path.exists()
    assert path.stat().st_mode & 0o777 == 0o600
    content = json.loads(path.read_text())
    assert content["current"] in content["keys"]


async def test_start_refuses_a_key_file_others_can_read(kith: Kith, kith_settings) -> None:
    path = key_file_path(kith_settings)
    path.chmod(0o644)
    second = open_kith(kith_settings, plugin_manager=_manager())
    with pytest.raises(KeyFileError, match="chmod 600"):
        await second.start()
    await second.close()
    path.chmod(0o640)
    third = open_kith(kith_settings, plugin_manager=_manager())
    with pytest.raises(KeyFileError, match="other users"):
        await third.start()
    await third.close()


async def test_start_refuses_a_missing_key_file_when_data_is_encrypted(
    kith: Kith, kith_settings
) -> None:
    await _contacts(kith, 1)
    path = key_file_path(kith_settings)
    saved = path.read_bytes()
    path.unlink()
    second = open_kith(kith_settings, plugin_manager=_manager())
    with pytest.raises(KeyFileError, match="missing, but the database holds encrypted"):
        await second.start()
    await second.close()
    assert not path.exists()  # nothing was created over the existing data
    path.write_bytes(saved)
    path.chmod(0o600)
    third = await _open(kith_settings)
    await third.close()


async def test_kith_init_creates_the_key_file(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    result = subprocess.run(
        [*kith_command(), "init"],
        env={**os.environ, "KITH_HOME": str(home), "KITH_DATABASE_URL": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (home / "kith-keys.json").stat().st_mode & 0o777 == 0o600


# -- the registry -------------------------------------------------------------------------------


class Undeclared(Table, tablename="test_undeclared_personal"):
    id = UUID(primary_key=True)
    note = Text(secret=True)


class Declared(Table, tablename="test_declared_personal"):
    id = UUID(primary_key=True)
    note = Text(secret=True)


class TablePlugin:
    def __init__(self, table: type[Table], tmp: Path, *fields: PersonalField) -> None:
        self.app = AppConfig(
            app_name=f"test_{table._meta.tablename}",
            migrations_folder_path=tmp,
            table_classes=[table],
        )
        self.fields = fields

    @hookimpl
    def kith_register_apps(self, register) -> None:
        register(self.app)

    @hookimpl
    def kith_register_personal_fields(self, register) -> None:
        for field in self.fields:
            register(field)


async def test_undeclared_personal_column_stops_start_up(kith_settings, tmp_path: Path) -> None:
    kith = open_kith(kith_settings, plugin_manager=_manager(TablePlugin(Undeclared, tmp_path)))
    with pytest.raises(RegistryError, match=r"test_undeclared_personal\.note is marked personal"):
        await kith.start()
    await kith.close()


async def test_declaration_of_a_missing_column_stops_start_up(
    kith_settings, tmp_path: Path
) -> None:
    wrong = PersonalField(
        table="test_declared_personal", column="nickname", category="identity", purposes=("x",)
    )
    right = PersonalField(
        table="test_declared_personal", column="note", category="notes", purposes=("x",)
    )
    kith = open_kith(
        kith_settings, plugin_manager=_manager(TablePlugin(Declared, tmp_path, wrong, right))
    )
    with pytest.raises(RegistryError, match="test_declared_personal has no column nickname"):
        await kith.start()
    await kith.close()
    nowhere = PersonalField(table="no_such_table", column="x", category="c", purposes=("x",))
    kith = open_kith(
        kith_settings, plugin_manager=_manager(TablePlugin(Declared, tmp_path, right, nowhere))
    )
    with pytest.raises(RegistryError, match="no registered table is called no_such_table"):
        await kith.start()
    await kith.close()


async def test_declared_plugin_field_starts(kith_settings, tmp_path: Path) -> None:
    right = PersonalField(
        table="test_declared_personal", column="note", category="notes", purposes=("x",)
    )
    kith = await _open(kith_settings, TablePlugin(Declared, tmp_path, right))
    assert "test_declared_personal.note" in {
        f.key for f in protector(kith).context["registry"].fields
    }
    await kith.close()


# -- round trip of every registered field --------------------------------------------------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)
    | st.sampled_from(["", " ", "Ångström", "Žofie Nováková", "山田太郎", "+7 (495) 123-45-67"]),
)
async def test_every_registered_field_round_trips(kith: Kith, data, value) -> None:
    guard = protector(kith)
    field = data.draw(
        st.sampled_from(sorted(guard.context["registry"].fields, key=lambda f: f.key))
    )
    subject, row = uuid.uuid4(), uuid.uuid4()
    stored = await guard.protect(subject, field.table, row, {field.column: value, "other": None})
    assert stored["other"] is None
    assert (await guard.reveal(subject, field.table, row, stored))[field.column] == value


# -- rotation ------------------------------------------------------------------------------------


async def test_rotation_while_serving(kith: Kith, kith_client, kith_auth) -> None:
    headers = await kith_auth("agent")
    ids = await _contacts(kith, 24)
    before = await rotation.status(kith)
    old = before.current
    guard = protector(kith)

    async def reads() -> int:
        answered = 0
        while not done.is_set():
            for contact_id in ids[::5]:
                guard.keys.cache.clear()  # every read unwraps, under the old KEK or the new
                response = await kith_client.get(f"/api/contacts/{contact_id}", headers=headers)
                assert response.status_code == 200, response.text
                answered += 1
            await asyncio.sleep(0)
        return answered

    done = asyncio.Event()
    reader = asyncio.create_task(reads())
    report = await rotation.rotate(kith, batch_size=4, pause=0.01)
    done.set()
    assert await reader > 0
    assert report.rewrapped == sum(before.data_keys.values()) >= 24
    after = await rotation.status(kith)
    assert after.current == report.target != old
    assert after.data_keys == {report.target: report.rewrapped}
    # The root keys of the keyed hashes moved too: nothing needs the old KEK any more.
    assert set(after.root_keys) == {report.target}
    assert after.unused == [old]

    # Every reader, fresh or cached, still answers; a restarted process too.
    guard.keys.cache.clear()
    assert (await ContactService(kith).get(ids[3])).name == "Person 3"
    found = await kith_client.get(
        "/api/contacts", params={"q": "person7@example.com"}, headers=headers
    )
    assert [c["id"] for c in found.json()["items"]] == [str(ids[7])]


async def test_reindex_then_prune_the_old_kek(kith: Kith, kith_settings) -> None:
    ids = await _contacts(kith, 6)
    old = (await rotation.status(kith)).current
    old_root = protector(kith).index.root_id
    await rotation.rotate(kith)
    report = await reindex.reindex(kith, batch_size=2)
    assert report.from_root == old_root != report.to_root and report.rows_changed == 12
    # The replaced root key is deleted: it could only confirm guesses now.
    assert await RootKey.count().where(RootKey.id == uuid.UUID(old_root)) == 0
    service = ContactService(kith)
    assert await service.find_ids_by("email", "person4@example.com") == [ids[4]]
    assert await service.find_ids_by("phone", "+442079460005") == [ids[5]]
    status = await rotation.status(kith)
    assert status.unused == [old]
    assert await rotation.prune(kith) == [old]
    keys = json.loads(key_file_path(kith_settings).read_text())["keys"]
    assert old not in keys

    restarted = await _open(kith_settings)
    try:
        again = ContactService(restarted)
        assert (await again.get(ids[2])).name == "Person 2"
        assert await again.find_ids_by("email", "person2@example.com") == [ids[2]]
    finally:
        await restarted.close()


async def test_rotation_killed_half_way_resumes_and_completes(
    kith: Kith, kith_settings, kith_client, kith_auth
) -> None:
    headers = await kith_auth("agent")
    ids = await _contacts(kith, 12)
    total = await DataKey.count()
    env = cli_env(kith_settings)
    first = subprocess.Popen(
        [*kith_command(), "privacy", "keys", "rotate", "--batch-size", "1", "--pause", "0.3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    answered = 0
    try:
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline, "the rotation never started"
            assert first.poll() is None, first.communicate()
            job = await jobs.get_job(rotation.JOB)
            # The server keeps answering while the other process re-wraps (the key file it
            # loaded gains a KEK under its feet).
            protector(kith).keys.cache.clear()
            response = await kith_client.get(f"/api/contacts/{ids[answered % 12]}", headers=headers)
            assert response.status_code == 200, response.text
            answered += 1
            if job is not None and job["done"] >= 3:
                break
            await asyncio.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    job = await jobs.get_job(rotation.JOB)
    assert job is not None and job["state"] == jobs.RUNNING
    assert 3 <= job["done"] < total
    target = job["details"]["target"]

    second = subprocess.run(
        [*kith_command(), "privacy", "keys", "rotate", "--batch-size", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    assert f"Resumed and finished rotation to {target}" in second.stdout
    job = await jobs.get_job(rotation.JOB)
    assert job is not None and job["state"] == jobs.DONE
    assert (await rotation.status(kith)).data_keys == {target: total}

    status = subprocess.run(
        [*kith_command(), "privacy", "keys", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["current"] == target and shown["data_keys"] == {target: total}
    protector(kith).keys.cache.clear()
    for index, contact_id in enumerate(ids):
        assert (await ContactService(kith).get(contact_id)).name == f"Person {index}"


# -- another key provider -----------------------------------------------------------------------


class FakeKms:
    """A KMS-style provider: KEKs never leave it; Kith asks it to wrap, unwrap and derive."""

    def __init__(self) -> None:
        from kith.privacy.encryption.primitives import aes_gcm, random_key

        self._keys = {"kms-v1": random_key()}
        self._current = "kms-v1"
        self._aes = aes_gcm
        self.calls: list[str] = []

    async def open(self, encrypted_data_exists: bool) -> None:
        self.calls.append("open")

    async def current_kek_id(self) -> str:
        return self._current

    async def kek_ids(self) -> list[str]:
        return sorted(self._keys)

    async def wrap(self, kek_id: str, key: bytes, context: bytes) -> bytes:
        self.calls.append("wrap")
        nonce = os.urandom(12)
        return nonce + self._aes(self._keys[kek_id]).encrypt(nonce, key, context)

    async def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        self.calls.append("unwrap")
        return self._aes(self._keys[kek_id]).decrypt(wrapped[:12], wrapped[12:], context)

    async def derive(self, kek_id: str, purpose: bytes) -> bytes:
        from kith.privacy.encryption.primitives import hmac_sha256

        return hmac_sha256(self._keys[kek_id], purpose)

    async def create_kek(self) -> str:
        from kith.privacy.encryption.primitives import random_key

        self._current = f"kms-v{len(self._keys) + 1}"
        self._keys[self._current] = random_key()
        return self._current

    async def retire_kek(self, kek_id: str) -> None:
        self._keys.pop(kek_id, None)


class KmsPlugin:
    def __init__(self) -> None:
        self.provider = FakeKms()

    @hookimpl
    def kith_key_provider(self, settings):
        return self.provider


async def test_a_plugin_key_provider_wins_over_the_key_file(kith_settings) -> None:
    plugin = KmsPlugin()
    kith = await _open(kith_settings, plugin)
    try:
        assert not key_file_path(kith_settings).exists()
        ids = await _contacts(kith, 2)
        protector(kith).keys.cache.clear()
        assert (await ContactService(kith).get(ids[1])).name == "Person 1"
        assert {"open", "wrap", "unwrap"} <= set(plugin.provider.calls)
        report = await rotation.rotate(kith)
        assert report.target == "kms-v2"
        assert (await rotation.status(kith)).data_keys == {"kms-v2": 2}
    finally:
        await kith.close()


async def test_restored_keys_of_shredded_subjects_are_deleted_at_start(
    kith: Kith, kith_settings
) -> None:
    from kith.privacy.encryption import shredding

    ids = await _contacts(kith, 2)
    backup = await DataKey.select().where(DataKey.subject == ids[0]).run()
    await shredding.shred(kith, ids[0])
    await DataKey.insert(*[DataKey(**row) for row in backup]).run()  # an old key backup
    restarted = await _open(kith_settings)
    try:
        assert not await DataKey.exists().where(DataKey.subject == ids[0])
        assert (await ContactService(restarted).get(ids[0])).name == "[erased]"
        assert (await ContactService(restarted).get(ids[1])).name == "Person 1"
    finally:
        await restarted.close()


async def test_missing_key_without_tombstone_is_an_error_until_shredded_again(
    kith: Kith,
) -> None:
    from kith.privacy.encryption import shredding
    from kith.privacy.encryption.errors import MissingDataKey

    ids = await _contacts(kith, 2)
    # A database restored from before an erasure, with a key backup from after it.
    await DataKey.delete().where(DataKey.subject == ids[0]).run()
    protector(kith).keys.cache.clear()
    with pytest.raises(MissingDataKey, match="never shredded"):
        await ContactService(kith).get(ids[0])
    result = await shredding.shred(kith, ids[0], reason="erased before the restore")
    assert not result.already
    assert (await ContactService(kith).get(ids[0])).name == "[erased]"
    assert (await ContactService(kith).get(ids[1])).name == "Person 1"


# -- the key file's contents and place ---------------------------------------------------------


async def test_a_key_encryption_key_that_is_not_32_bytes_is_refused(
    kith: Kith, kith_settings
) -> None:
    path = key_file_path(kith_settings)
    content = json.loads(path.read_text())
    current = content["current"]
    for size in (16, 31, 33, 64):
        content["keys"][current]["key"] = base64.urlsafe_b64encode(b"k" * size).decode()
        path.write_text(json.dumps(content))
        path.chmod(0o600)
        again = open_kith(kith_settings, plugin_manager=_manager())
        with pytest.raises(KeyFileError, match=f"{size} bytes long.*exactly 32 bytes"):
            await again.start()
        await again.close()


async def test_a_key_file_beside_the_sqlite_database_is_warned_about(
    kith_settings, kith_engine: str, tmp_path: Path
) -> None:
    configure_logging(kith_settings)  # as `kith serve` and `kith worker` log
    with structlog.testing.capture_logs() as captured:
        beside = await _open(kith_settings)
        await beside.close()
    warned = [e for e in captured if e["event"] == "privacy key file beside the database"]
    if kith_engine == "sqlite":
        assert len(warned) == 1
        assert "one backup" in warned[0]["problem"]
    else:
        assert warned == []  # PostgreSQL keeps its data elsewhere
    # Before the output of any other command it is not repeated (verify says it, below).
    configure_logging(kith_settings, command=True)
    with structlog.testing.capture_logs() as captured:
        command = await _open(kith_settings)
        await command.close()
    assert not [e for e in captured if e["event"] == "privacy key file beside the database"]
    configure_logging(kith_settings)
    apart = settings_for(
        kith_settings.home,
        kith_settings.database_url,
        privacy_key_file=str(tmp_path / "keys-elsewhere" / "kith-keys.json"),
    )
    # Moved as the warning advises: the same keys, on another disk.
    moved = key_file_path(apart)
    moved.parent.mkdir(mode=0o700)
    shutil.move(key_file_path(kith_settings), moved)
    with structlog.testing.capture_logs() as captured:
        elsewhere = await _open(apart)
        await elsewhere.close()
    assert not [e for e in captured if e["event"] == "privacy key file beside the database"]


def test_kith_privacy_verify_warns_of_a_key_file_beside_the_database(
    kith_settings, kith_engine: str, tmp_path: Path
) -> None:
    env = cli_env(kith_settings)
    beside = subprocess.run(
        [*kith_command(), "privacy", "verify"], env=env, capture_output=True, text=True
    )
    assert beside.returncode == 0, beside.stderr
    if kith_engine == "sqlite":
        assert "warning: the key file" in beside.stderr
        assert "same folder as the database" in beside.stderr
    else:
        assert "warning" not in beside.stderr
    moved = tmp_path / "keys-elsewhere"
    moved.mkdir(mode=0o700)
    key_file_path(kith_settings).rename(moved / "kith-keys.json")
    apart = subprocess.run(
        [*kith_command(), "privacy", "verify"],
        env={**env, "KITH_PRIVACY_KEY_FILE": str(moved / "kith-keys.json")},
        capture_output=True,
        text=True,
    )
    assert apart.returncode == 0, apart.stderr
    assert "warning" not in apart.stderr


@pytest.mark.parametrize("ttl", ["3601", "86400"])
def test_the_key_cache_lifetime_is_capped_at_an_hour(tmp_path: Path, ttl: str) -> None:
    settings = settings_for(tmp_path, privacy_key_cache_ttl_seconds=ttl)
    with pytest.raises(SettingsError, match=r"KEY_CACHE_TTL_SECONDS.*<= 3600"):
        encryption_settings(settings)
    allowed = settings_for(tmp_path, privacy_key_cache_ttl_seconds="3600")
    assert encryption_settings(allowed).key_cache_ttl_seconds == 3600


async def test_blind_index_keys_are_per_kind_as_documented(kith: Kith) -> None:
    from kith.tables import ContactPoint

    [contact_id] = await _contacts(kith, 1)
    rows = await ContactPoint.select(ContactPoint.kind, ContactPoint.lookup).where(
        ContactPoint.contact == contact_id
    )
    stored = {row["kind"]: row["lookup"] for row in rows}
    keys = protector(kith)
    # A plugin asking for the email kind gets the contact-point index's key, whatever its column.
    assert keys.lookup_key("email", "person0@example.com") == stored["email"]
    assert keys.lookup_key("phone", "+442079460000") == stored["phone"]
    # Kinds are keyed apart: the same string gives unrelated hashes.
    assert keys.lookup_key("phone", "person0@example.com") != stored["email"]
    text = (Path(__file__).parents[1] / "docs" / "privacy-keys.md").read_text(encoding="utf-8")
    assert "per kind, not per column" in text
