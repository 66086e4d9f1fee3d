"""examples/kith-example-plugin, installed with pip (see _example_plugin), proven through its
entry point only: nothing here imports it. On SQLite and PostgreSQL.

``kith plugins list`` shows it, ``kith migrate`` creates its table in an empty database, its
route answers over HTTP with its declared roles, its subscriber receives ``contact.created``,
its command runs and the event type it declares is published.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import _example_plugin
import asyncpg
import pytest
from kith.runtime import Kith
from kith.testing import postgres_admin_url, skip_or_fail_without_postgres

TABLE = "kith_example_welcome"
KITH = str(Path(sys.executable).with_name("kith"))


@pytest.fixture(autouse=True)
def _installed() -> None:
    if _example_plugin.install_error:
        pytest.fail(_example_plugin.install_error, pytrace=False)


def kith_command(
    *args: str, home: Path, database_url: str = "", **extra: str
) -> subprocess.CompletedProcess:
    """The installed ``kith`` command in a process of its own, as an operator runs it."""
    env = {
        **os.environ,
        "KITH_HOME": str(home),
        "KITH_DATABASE_URL": database_url,
        "KITH_LOG_FORMAT": "json",
        **extra,
    }
    return subprocess.run(
        [KITH, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def empty_database_url(kith_engine: str) -> Iterator[str]:
    """No tables at all: the default SQLite file of KITH_HOME, or a new PostgreSQL database."""
    if kith_engine == "sqlite":
        yield ""
        return
    skip_or_fail_without_postgres()
    name = f"kith_example_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(postgres_admin_url())._replace(path=f"/{name}"))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(postgres_admin_url(), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _postgres_tables(url: str) -> set[str]:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        rows = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
    finally:
        await connection.close()
    return {row["tablename"] for row in rows}


def tables_of(home: Path, database_url: str) -> set[str]:
    if not database_url:
        with sqlite3.connect(home / "kith.sqlite3") as connection:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {name for (name,) in rows}
    return asyncio.run(_postgres_tables(database_url))


def test_the_distribution_declares_a_kith_entry_point():
    dist = importlib.metadata.distribution("kith-example-plugin")
    [entry_point] = [ep for ep in dist.entry_points if ep.group == "kith"]
    assert (entry_point.name, entry_point.value) == ("example", "kith_example.plugin")


def test_kith_plugins_list_shows_it(tmp_path: Path):
    listed = kith_command("plugins", "list", "--json", "--hooks", home=tmp_path / "home")
    assert listed.returncode == 0, listed.stderr
    plugins = {row["name"]: row for row in json.loads(listed.stdout)}
    example = plugins["example"]
    assert (example["source"], example["version"], example["status"]) == (
        "kith-example-plugin",
        "0.1.0",
        "loaded",
    )
    assert set(example["hooks"]) >= {
        "kith_register_apps",
        "kith_register_routes",
        "kith_register_commands",
        "kith_register_subscribers",
        "kith_register_event_types",
        "kith_register_settings",
    }
    # Built-in plugins come through the very same entry-point group.
    assert plugins["webhooks"]["source"] == "built-in"
    table = kith_command("plugins", "list", home=tmp_path / "home")
    assert "example" in table.stdout and "kith-example-plugin" in table.stdout


def test_kith_migrate_creates_its_table(tmp_path: Path, empty_database_url: str):
    home = tmp_path / "home"
    migrated = kith_command("migrate", home=home, database_url=empty_database_url)
    assert migrated.returncode == 0, migrated.stderr
    assert "kith_example" in migrated.stdout
    assert TABLE in tables_of(home, empty_database_url)
    # The custom field it declares (kith_register_custom_fields) is added, once.
    assert "Custom field welcome_channel (example): added" in migrated.stdout
    again = kith_command("migrate", home=home, database_url=empty_database_url)
    assert again.returncode == 0 and "kith_example" not in again.stdout
    assert "welcome_channel" not in again.stdout
    fields = kith_command("fields", "list", home=home, database_url=empty_database_url)
    assert "welcome_channel" in fields.stdout and "email, phone, visit" in fields.stdout
    # Its command runs on the new installation, with no settings of its own.
    listed = kith_command("example", "welcomes", home=home, database_url=empty_database_url)
    assert listed.returncode == 0, listed.stderr
    assert "Nobody is waiting to be welcomed." in listed.stderr


def _stored_notes(home: Path, database_url: str) -> list[str]:
    sql = f"SELECT note FROM {TABLE} WHERE note IS NOT NULL"
    if not database_url:
        with sqlite3.connect(home / "kith.sqlite3") as connection:
            return [note for (note,) in connection.execute(sql)]
    return asyncio.run(_postgres_values(database_url, sql))


async def _postgres_values(url: str, sql: str) -> list[str]:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        return [row[0] for row in await connection.fetch(sql)]
    finally:
        await connection.close()


def test_its_personal_column_is_encrypted_like_kiths_own(
    tmp_path: Path, empty_database_url: str
) -> None:
    """The tutorial's table (a contact_id column, no foreign key) with a note written while the
    privacy plugins were off: turning them on encrypts it, and the plugin reads it back."""
    home = tmp_path / "home"
    url = empty_database_url
    off = {"KITH_DISABLE_PLUGINS": "privacy"}
    assert kith_command("migrate", home=home, database_url=url, **off).returncode == 0
    added = kith_command("contacts", "add", "Ada Lovelace", home=home, database_url=url, **off)
    assert added.returncode == 0, added.stderr
    contact_id = added.stdout.split("(")[1].split(")")[0]
    delivered = kith_command("worker", "--once", home=home, database_url=url, **off)
    assert delivered.returncode == 0, delivered.stderr
    text = "Prefers a phone call after 6pm"
    noted = kith_command("example", "note", contact_id, text, home=home, database_url=url, **off)
    assert noted.returncode == 0, noted.stderr
    assert _stored_notes(home, url) == [text]  # no privacy plugin: stored as it is

    migrated = kith_command("migrate", home=home, database_url=url)
    assert migrated.returncode == 0, migrated.stderr
    encrypted = kith_command("privacy", "encrypt", home=home, database_url=url)
    assert encrypted.returncode == 0, encrypted.stderr
    [stored] = _stored_notes(home, url)
    assert text not in stored
    verified = kith_command("privacy", "verify", home=home, database_url=url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    shown = kith_command("example", "welcomes", home=home, database_url=url)
    assert shown.returncode == 0, shown.stderr
    assert text in shown.stdout


async def test_route_subscriber_command_and_event_type(
    kith: Kith, kith_client, kith_auth, kith_settings, kith_engine: str
):
    assert kith.plugins is not None
    assert "example" in [info.name for info in kith.plugins.plugins()]
    agent = await kith_auth("agent")

    # Its subscriber hears contact.created through the event bus.
    created = await kith_client.post("/api/contacts", json={"name": "Ada"}, headers=agent)
    assert created.status_code == 201, created.text
    contact_id = created.json()["id"]
    await kith.bus.drain()

    # Its route answers over HTTP, to the roles it declared and no others.
    listed = await kith_client.get("/api/example/welcomes", headers=agent)
    assert listed.status_code == 200, listed.text
    assert [w["contact_id"] for w in listed.json()] == [contact_id]
    refused = await kith_client.get("/api/example/welcomes", headers=await kith_auth("compliance"))
    assert refused.status_code == 403
    assert (await kith_client.get("/api/example/welcomes")).status_code == 401

    done = await kith_client.post(f"/api/example/welcomes/{contact_id}/done", headers=agent)
    assert done.status_code == 200, done.text
    assert done.json()["welcomed_at"] is not None
    assert (await kith_client.get("/api/example/welcomes", headers=agent)).json() == []
    # The event type it declared was published in the same transaction.
    assert len(await kith.bus.list_events(name="example.welcomed")) == 1
    assert "example.welcomed" in kith.event_types

    # Its command runs against the same database, in a process of its own.
    shown = await asyncio.to_thread(
        kith_command,
        "example",
        "welcomes",
        "--all",
        home=kith_settings.home,
        database_url=kith_settings.database_url,
    )
    assert shown.returncode == 0, shown.stderr
    assert contact_id in shown.stdout


def test_its_own_tests_pass_with_the_kith_pytest_fixtures():
    # A third-party package gets the fixtures from the installed kith (pytest11 entry point),
    # with no conftest of ours: its suite runs in a pytest of its own, in its own folder.
    example = _example_plugin.EXAMPLE
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=example,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


async def test_an_access_package_holds_the_example_plugins_data(kith: Kith, kith_client, kith_auth):
    """Loaded through its entry point, the example answers the export and erase hooks."""
    from _privacy_subjects import make_person, run_request
    from _privacy_workflow import make_user

    assert "example" in [plugin.name for plugin in kith.plugins.plugins()]
    contact_id = await make_person(kith, notes=0, orders=0)
    await kith.bus.drain()  # its subscriber puts the new contact on the welcome list
    _, done = await run_request(kith, "access", contact_id, await make_user(kith))
    response = await kith_client.get(
        f"/api/privacy/requests/{done.id}/package", headers=await kith_auth("compliance")
    )
    assert response.status_code == 200, response.text
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    document = json.loads(archive.read("example.json"))
    [welcome] = document["tables"]["welcomes"]
    assert welcome["added_at"] and welcome["welcomed_at"] is None
    assert "csv/example/welcomes.csv" in archive.namelist()

    results = await kith.plugins.call_async("kith_subject_erase", kith=kith, contact_id=contact_id)
    [outcome] = next(r.value for r in results if r.plugin == "example")
    assert (outcome.method, outcome.count) == ("deleted", 1)
    results = await kith.plugins.call_async("kith_subject_export", kith=kith, contact_id=contact_id)
    assert "example" not in [r.plugin for r in results]  # nothing left to export
