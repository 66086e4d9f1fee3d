"""An installation made by Kith 0.1.0 carries on after ``kith migrate``.

The fixtures under ``fixtures/installation-0.1.0`` are dumps of a SQLite and a PostgreSQL
installation made by Kith 0.1.0 (one privacy plugin; see the folder's README), with their key
files: three contacts, a note that is a consent's source, an order, consent given and
withdrawn, a notice, an audit entry, a restriction, an open access request and a finished
erasure whose order is under a legal hold. Since then the privacy module became three plugins
and the consent ledger moved to the rights plugin's piccolo app.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from kith import ContactService, Kith, name_index
from kith.bootstrap import open_kith
from kith.plugin_manager import load_plugin_manager
from kith.privacy.encryption import rotation
from kith.privacy.requests.service import RequestService
from kith.privacy.requests.tables import SubjectRequest
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.consent import ConsentService
from kith.privacy.rights.erasure import ErasureService
from kith.privacy.rights.restriction import RestrictionService
from kith.privacy.rights.suppression import SuppressionList
from kith.privacy.rights.tables import ConsentEvent, LegalHold, Suppression
from kith.tables import Contact, Interaction
from kith.testing import (
    _admin,
    _with_database,
    postgres_admin_url,
    settings_for,
    skip_or_fail_without_postgres,
)
from piccolo.apps.migrations.tables import Migration
from piccolo.query.functions.aggregate import Max

FIXTURES = Path(__file__).parent / "fixtures" / "installation-0.1.0"
KEPT_FILES = ("kith-keys.json", "certificate-signing-key.pem", "kith.toml")


def _home(engine: str, tmp_path: Path) -> Path:
    home = tmp_path / "kith-home"
    home.mkdir()
    for name in KEPT_FILES:
        shutil.copyfile(FIXTURES / engine / name, home / name)
        # The key files are refused unless only their owner can read them.
        os.chmod(home / name, 0o600)
    return home


def _restore_sqlite(home: Path) -> str:
    path = home / "kith.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript((FIXTURES / "sqlite" / "dump.sql").read_text())
    return f"sqlite:///{path}"


async def _restore_postgres(url: str) -> None:
    # psql's own commands (\restrict...) are not SQL; the rest is pg_dump's plain output.
    dump = "\n".join(
        line
        for line in (FIXTURES / "postgres" / "dump.sql").read_text().splitlines()
        if not line.startswith("\\")
    )
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(dump)
    finally:
        await connection.close()


@pytest.fixture(params=("sqlite", "postgres"))
def upgraded_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """(home, database URL) of a restored 0.1.0 installation, not migrated yet."""
    engine = request.param
    home = _home(engine, tmp_path)
    if engine == "sqlite":
        yield home, _restore_sqlite(home)
        return
    skip_or_fail_without_postgres()
    name = f"kith_upgrade_{os.urandom(6).hex()}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = _with_database(postgres_admin_url(), name)
    try:
        asyncio.run(_restore_postgres(url))
        yield home, url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# The plugins the installation had: Kith's own (other installed ones would add their tables).
BUILT_IN = {"KITH_PLUGINS": "privacy,webhooks,telephony,messengers"}


async def _opened(home: Path, url: str) -> Kith:
    kith = open_kith(settings_for(home, url), plugin_manager=load_plugin_manager(BUILT_IN))
    await kith.start()
    return kith


async def _migrate(home: Path, url: str) -> list[str]:
    """``kith migrate``: what was pending, by app."""
    kith = await _opened(home, url)
    try:
        before = await kith.database.migrate()
        assert kith.plugins is not None
        await kith.plugins.call_async("kith_after_migrate", kith=kith)
        return [f"{s.app_name}:{m}" for s in before for m in s.pending]
    finally:
        await kith.close()


async def _check(home: Path, url: str) -> None:
    pending = await _migrate(home, url)
    # Only what this version added; the tables of 0.1.0 are not made again.
    assert sorted(pending) == [
        "kith:2026-12-04T17:30:00:000000",
        "kith:2026-12-07T09:00:00:000000",
        "kith:2026-12-07T09:00:01:000000",
        "kith:2026-12-07T09:30:00:000000",
        "kith:2026-12-08T10:00:00:000000",
        "kith:2026-12-08T11:00:00:000000",
        "kith:2026-12-08T12:00:00:000000",
        "kith:2026-12-08T13:00:00:000000",
        "kith:2026-12-08T13:00:01:000000",
        "kith:2026-12-08T14:00:00:000000",
        "kith:2026-12-09T12:10:00:000000",
        "kith:2026-12-09T16:10:00:000000",
        "kith:2026-12-10T09:00:00:000000",
        "kith:2026-12-10T12:00:00:000000",
        "kith:2026-12-10T12:00:01:000000",
        "kith:2026-12-11T09:00:00:000000",
        "kith:2026-12-11T09:00:01:000000",
        "kith:2026-12-11T09:00:02:000000",
        "kith:2026-12-11T09:00:03:000000",
        "kith_privacy:2026-12-07T08:00:00:000000",
        "kith_privacy_subjects:2026-12-04T17:30:00:000000",
        "kith_privacy_subjects:2026-12-04T17:30:01:000000",
        "kith_privacy_subjects:2026-12-06T09:00:01:000000",
        "kith_privacy_subjects:2026-12-07T08:00:01:000000",
        "kith_privacy_subjects:2026-12-07T10:40:00:000000",
        "kith_privacy_workflow:2026-12-04T17:30:02:000000",
        "kith_privacy_workflow:2026-12-06T09:00:00:000000",
        "kith_privacy_workflow:2026-12-07T08:00:02:000000",
        "messengers:2026-12-10T09:00:00:000000",
        "telephony:2026-12-09T10:17:00:000000",
        "telephony:2026-12-10T09:00:00:000000",
        "webhooks:2026-12-05T09:00:00:000000",
        "webhooks:2026-12-07T10:41:00:000000",
    ]
    assert await _migrate(home, url) == []

    kith = await _opened(home, url)
    try:
        await kith.database.ensure_migrated()
        contacts = ContactService(kith)
        [ada_id] = await contacts.find_ids_by("email", "ada@example.com")
        [grace_id] = await contacts.find_ids_by("email", "grace@example.com")
        ada = await contacts.get(ada_id)
        assert (ada.given_name, ada.family_name) == ("Ada", "Lovelace")
        # The name search index was built for the contacts already there.
        assert await name_index.name_index(kith).complete()
        assert [c.id for c in (await contacts.list(q="lovel")).items] == [ada_id]

        # The consent ledger, now the rights plugin's, reads as before and stays append-only.
        consent = ConsentService(kith)
        assert [e.action for e in await consent.history(grace_id)] == ["given", "withdrawn"]
        assert await consent.can_process(ada_id, "newsletter")
        with pytest.raises(Exception, match="append-only"):
            await ConsentEvent.update({ConsentEvent.channel: "rewritten"}).where(
                ConsentEvent.channel == "api"
            )
        # The moved migrations were recorded, not run again, on the old app's tables.
        recorded = await Migration.select(Migration.name).where(
            Migration.app_name == "kith_privacy_subjects"
        )
        assert "2026-12-04T17:30:00:000000" in {row["name"] for row in recorded}

        # Each contact's last interaction was worked out from the interactions there were.
        latest = {
            # SQLite answers an aggregate of times as text.
            row["contact"]: dt.datetime.fromisoformat(str(row["latest"]))
            for row in await Interaction.select(
                Interaction.contact, Max(Interaction.occurred_at, alias="latest")
            )
            .where(Interaction.kind != "task")
            .group_by(Interaction.contact)
        }
        assert latest
        stored = await Contact.select(Contact.id, Contact.last_interaction_at)
        assert {r["id"]: r["last_interaction_at"] for r in stored} == {
            r["id"]: latest.get(r["id"]) for r in stored
        }

        assert await RestrictionService(kith).active(grace_id) is not None
        assert [e.action for e in await AuditLog(kith).entries(ada_id)][-1] == "read"
        requests = await RequestService(kith).list(include_closed=True)
        assert sorted(r.state for r in requests) == ["done", "verified"]

        # The erased contact's order is still held; a new erasure runs on the upgraded tables.
        assert await LegalHold.count() == 1
        erased = await ErasureService(kith).run(ada_id, job_id=ada_id)
        assert erased.state == "done"
        assert await contacts.find_ids_by("email", "ada@example.com") == []

        # The keyed hashes were carried over to root keys of their own: the KEK of 0.1.0 can
        # be rotated out and pruned, and lookups and the suppression list still match.
        assert await Suppression.count() > 0
        assert all(row["root_key_id"] for row in await Suppression.select())
        assert not await SubjectRequest.exists().where(
            SubjectRequest.contact_id.is_not_null() & SubjectRequest.subject_lookup.is_not_null()
        )
        old = (await rotation.status(kith)).current
        await rotation.rotate(kith)
        assert await rotation.prune(kith) == [old]
        assert await contacts.find_ids_by("email", "grace@example.com") == [grace_id]
        # Alan was erased by 0.1.0; the entry made then still refuses him.
        assert await SuppressionList(kith).match("email", "alan@example.com") is not None
    finally:
        await kith.close()


def test_an_installation_of_0_1_0_carries_on(upgraded_url: tuple[Path, str]) -> None:
    home, url = upgraded_url
    asyncio.run(_check(home, url))
