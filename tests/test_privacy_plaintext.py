"""A database written before field encryption existed: ``kith migrate`` encrypts it in
resumable batches, verifies that nothing is left, and scrubs the old plaintext from storage."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _privacy_storage import cli_env, kith_command, protector, raw
from _privacy_workflow import cli_env as workflow_env
from _privacy_workflow import run_services
from kith.bootstrap import open_kith
from kith.cli import main
from kith.cli.setup import migrate_all
from kith.plugin_manager import PluginSelection, load_plugin_manager
from kith.plugins.webhooks.schemas import SubscriptionCreate
from kith.plugins.webhooks.service import WebhookService
from kith.privacy.encryption import jobs, lifecycle, plaintext_migration, table_walk
from kith.privacy.encryption.envelope import PREFIX
from kith.privacy.encryption.lifecycle import STATE_PLAINTEXT
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, InteractionCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.testing import _admin, _with_database, postgres_admin_url, settings_for
from kith.testing import skip_or_fail_without_postgres as _need_postgres

PEOPLE = [(f"Oldrecord Person{index}", f"old.person{index}@Legacy.example") for index in range(7)]


@pytest.fixture
def old_settings(kith_engine: str, tmp_path: Path) -> Iterator:
    """Settings of an empty database that has never seen the privacy plugin."""
    home = tmp_path / "old-home"
    if kith_engine == "sqlite":
        yield settings_for(home, f"sqlite:///{home / 'kith.sqlite3'}")
        return
    _need_postgres()
    import asyncio

    name = f"kith_plain_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield settings_for(home, _with_database(postgres_admin_url(), name))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _write_plaintext(settings) -> list[uuid.UUID]:
    manager = load_plugin_manager(selection=PluginSelection(deny=frozenset({"privacy"})))
    kith = open_kith(settings, plugin_manager=manager)
    await kith.start()
    try:
        await kith.database.migrate()
        ids = []
        for index, (name, email) in enumerate(PEOPLE):
            created = await ContactService(kith).create(
                ContactCreate(
                    name=name,
                    given_name=name.split()[0],
                    emails=[EmailIn(email)],
                    phones=[PhoneIn(f"+44 20 7946 05{index:02d}")],
                )
            )
            await InteractionService(kith).log(
                created.id, InteractionCreate(kind="note", summary=f"legacy note {index}")
            )
            ids.append(created.id)
        rows = await raw(kith, "SELECT display_name FROM kith_contact")
        assert {row["display_name"] for row in rows} == {name for name, _ in PEOPLE}
        return ids
    finally:
        await kith.close()


def _with_privacy():
    return load_plugin_manager()


async def _check_encrypted(kith: Kith, ids: list[uuid.UUID]) -> None:
    for row in await raw(kith, "SELECT * FROM kith_contact"):
        assert row["display_name"].startswith(PREFIX) and row["given_name"].startswith(PREFIX)
    for row in await raw(kith, "SELECT * FROM kith_contact_point"):
        assert row["value"].startswith(PREFIX) and len(row["lookup"]) == 64
    for row in await raw(kith, "SELECT * FROM kith_interaction"):
        assert row["summary"].startswith(PREFIX) and row["body"].startswith(PREFIX)
    assert await plaintext_migration.leftover(protector(kith)) == {}
    service = ContactService(kith)
    for contact_id, (name, email) in zip(ids, PEOPLE, strict=True):
        read = await service.get(contact_id)
        assert read.name == name and read.emails[0].address == email.lower()
        assert await service.find_ids_by("email", email.lower()) == [contact_id]
    assert await service.find_ids_by("phone", "+442079460503") == [ids[3]]


async def test_old_database_is_encrypted_resumably_by_migrate(
    old_settings, kith_engine, monkeypatch
) -> None:
    ids = await _write_plaintext(old_settings)

    kith = open_kith(old_settings, plugin_manager=_with_privacy())
    await kith.start()
    try:
        # A crash after two batches: the batch in flight rolls back with its progress record.
        real_save = table_walk.jobs.save_progress
        calls = {"n": 0}

        async def crash_on_third(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("power cut")
            await real_save(*args, **kwargs)

        monkeypatch.setattr(table_walk.jobs, "save_progress", crash_on_third)
        monkeypatch.setattr(plaintext_migration, "walk", _small_batches(table_walk.walk))
        with pytest.raises(RuntimeError, match="power cut"):
            await migrate_all(kith)
        job = await jobs.get_job(plaintext_migration.JOB)
        assert job is not None and job["state"] == jobs.RUNNING and job["done"] == 4
        assert await jobs.get_state(STATE_PLAINTEXT) == "pending"
        # Meanwhile reads still work: plaintext is read as it is until the job is done.
        assert (await ContactService(kith).get(ids[6])).name == PEOPLE[6][0]
        assert (await ContactService(kith).get(ids[0])).name == PEOPLE[0][0]
        left = await plaintext_migration.leftover(protector(kith))
        assert left["kith_contact.display_name"] == len(PEOPLE) - 4
        monkeypatch.setattr(table_walk.jobs, "save_progress", real_save)
    finally:
        await kith.close()

    # `kith migrate` in another process finishes the job and verifies it.
    result = subprocess.run(
        [*kith_command(), "migrate"],
        env=cli_env(old_settings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr

    kith = open_kith(old_settings, plugin_manager=_with_privacy())
    await kith.start()
    try:
        assert not protector(kith).allow_plaintext
        assert await jobs.get_state(STATE_PLAINTEXT) == jobs.DONE
        job = await jobs.get_job(plaintext_migration.JOB)
        assert job is not None and job["state"] == jobs.DONE
        await _check_encrypted(kith, ids)
        if kith_engine == "sqlite":
            path = kith.settings.sqlite_path
            for suffix in ("", "-wal"):
                if Path(f"{path}{suffix}").exists():
                    data = Path(f"{path}{suffix}").read_bytes().lower()
                    assert b"oldrecord" not in data and b"legacy.example" not in data
                    assert b"legacy note" not in data
    finally:
        await kith.close()


def _small_batches(walk):
    async def with_batch_of_two(*args, **kwargs):
        kwargs["batch_size"] = 2
        return await walk(*args, **kwargs)

    return with_batch_of_two


async def test_reading_plaintext_after_encryption_is_an_error(old_settings, kith_engine) -> None:
    ids = await _write_plaintext(old_settings)
    kith = open_kith(old_settings, plugin_manager=_with_privacy())
    await kith.start()
    try:
        await migrate_all(kith)
        await _check_encrypted(kith, ids)
        await raw(
            kith, "UPDATE kith_contact SET display_name = {} WHERE id = {}", "Slipped In", ids[0]
        )
        from kith.privacy.encryption.errors import EnvelopeError

        with pytest.raises(EnvelopeError, match="is not encrypted"):
            await ContactService(kith).get(ids[0])
        assert await plaintext_migration.leftover(protector(kith)) == {
            "kith_contact.display_name": 1
        }
    finally:
        await kith.close()


# -- a contact's data anywhere else ---------------------------------------------------------------

PROBE_NAME = "Oriel Fenwick-Stroud"
PROBE_EMAIL = "Oriel.FS@Verify-Probe.example"
PROBE_PHONE = "+44 20 7946 0777"


async def _leave_a_person_readable(kith: Kith) -> None:
    """What ends up in columns nobody declared personal: an API client's free text, an id
    made from a name, a note in a webhook's description."""
    service = ContactService(kith)
    person = await service.create(
        ContactCreate(
            name=PROBE_NAME,
            emails=[EmailIn(PROBE_EMAIL)],
            phones=[PhoneIn(PROBE_PHONE)],
            # A one-word name and an organisation's name are no person's name.
            source="referred by Oriel at Acme Widgets",
        )
    )
    await service.create(ContactCreate(name="Acme Widgets", kind="organization"))
    await service.create(ContactCreate(name="Caller", source="call back on 020 7946 0777"))
    await InteractionService(kith).log(
        person.id,
        InteractionCreate(kind="call", summary="intro", external_id="lead/oriel-fenwick-stroud"),
    )
    await WebhookService(kith).create(
        SubscriptionCreate(
            url="https://hooks.example.com/in",
            events=["contact.*"],
            description=f"ask {PROBE_EMAIL.lower()} first",
        )
    )


def test_verify_finds_a_contact_s_data_readable_in_any_table(
    kith_database_url: str, tmp_path: Path
) -> None:
    runner, env = workflow_env(kith_database_url, tmp_path / "kith-home")
    clean = runner.invoke(main, ["privacy", "verify"], env=env)
    assert clean.exit_code == 0, clean.output
    assert "Every personal value is encrypted." in clean.stdout
    assert "No contact's name, email address or phone number is readable elsewhere" in clean.stdout

    run_services(env, _leave_a_person_readable)
    found = runner.invoke(main, ["privacy", "verify"], env=env)
    assert found.exit_code == 1, found.output
    assert found.stdout.splitlines() == [
        "kith_contact.source: 1 row(s) hold a contact's phone number readable",
        # The contact.created event carries the source, as given.
        "kith_event.payload: 1 row(s) hold a contact's phone number readable",
        "kith_interaction.external_id: 1 row(s) hold a contact's name readable",
        "webhooks_subscription.description: 1 row(s) hold a contact's email address readable",
    ]
    # One error line; on SQLite also the warning that the key file sits beside the database.
    [error] = [line for line in found.stderr.splitlines() if "key file" not in line]
    assert "readable outside the encrypted fields" in error
    # It says where, never what.
    for value in ("Oriel", "Fenwick", "verify-probe", "7946"):
        assert value.lower() not in found.output.lower()


async def test_values_already_encrypted_are_left_as_they_are(old_settings, kith_engine) -> None:
    # Between the upgrade and the end of the migration, what Kith writes is already encrypted;
    # encrypting it again would store an envelope inside an envelope, and the contact would
    # read back as "$k1$...".
    ids = await _write_plaintext(old_settings)
    kith = open_kith(old_settings, plugin_manager=_with_privacy())
    await kith.start()
    try:
        await kith.database.migrate()
        await lifecycle.start_privacy(kith, protector(kith))
        assert protector(kith).allow_plaintext
        newer = await ContactService(kith).create(
            ContactCreate(name="Newer Person", emails=[EmailIn("newer@current.example")])
        )
        written = await raw(kith, "SELECT display_name FROM kith_contact WHERE id = {}", newer.id)
        assert written[0]["display_name"].startswith(PREFIX)
        written_points = await raw(kith, "SELECT value, lookup FROM kith_contact_point")

        report = await plaintext_migration.encrypt_existing(kith)
        # Seven contacts, their fourteen emails and phones and seven interactions; not the
        # contact and the email written encrypted.
        assert report.rows_encrypted == 28

        again = await raw(kith, "SELECT display_name FROM kith_contact WHERE id = {}", newer.id)
        assert again == written
        points = {row["value"]: row["lookup"] for row in written_points}
        for row in await raw(kith, "SELECT value, lookup FROM kith_contact_point"):
            if row["value"] in points:
                assert row["lookup"] == points[row["value"]]
        read = await ContactService(kith).get(newer.id)
        assert read.name == "Newer Person"
        assert read.emails[0].address == "newer@current.example"
        assert await ContactService(kith).find_ids_by("email", "newer@current.example") == [
            newer.id
        ]
        assert await plaintext_migration.leftover(protector(kith)) == {}
        for contact_id, (name, _email) in zip(ids, PEOPLE, strict=True):
            assert (await ContactService(kith).get(contact_id)).name == name
    finally:
        await kith.close()
