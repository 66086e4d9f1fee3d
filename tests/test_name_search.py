"""Name search through the keyed index of name-word prefixes: found by the start of any word, in
any script, without decrypting contacts that do not match; erased with the person; rebuilt by
``kith migrate`` and the blind-index re-index; turned off by a setting, when search decrypts."""

from __future__ import annotations

import uuid
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from kith import PersonalField, hookimpl, name_index
from kith.bootstrap import open_kith
from kith.cli.setup import migrate_all
from kith.plugin_manager import load_plugin_manager
from kith.privacy.encryption import reindex, rotation
from kith.privacy.encryption.shredding import shred
from kith.privacy.rights.erasure import ErasureService
from kith.runtime import Kith
from kith.schemas import ContactCreate, ContactPatch
from kith.services.contacts import ContactService
from kith.settings import Settings, SettingsError
from kith.tables import Contact, NameIndexState, NameToken
from kith.testing import settings_for
from piccolo.apps.migrations.tables import Migration
from piccolo.columns import UUID, Text
from piccolo.conf.apps import AppConfig
from piccolo.table import Table

_SINCE_FOREIGN_KEY = (
    "kith_2026_12_11t09_00_00_name_token_no_foreign_key",
    "kith_2026_12_11t09_00_02_name_tokens_go_with_their_contact",
)


async def _add(kith: Kith, *names: str, **fields: Any) -> list[uuid.UUID]:
    service = ContactService(kith)
    return [(await service.create(ContactCreate(name=name, **fields))).id for name in names]


async def _found(kith: Kith, q: str, **options: Any) -> list[uuid.UUID]:
    return [c.id for c in (await ContactService(kith).list(q=q, **options)).items]


async def _open(settings: Settings, *plugins: object) -> Kith:
    manager = load_plugin_manager()
    for plugin in plugins:
        manager.register(plugin)
    kith = open_kith(settings, plugin_manager=manager)
    await kith.start()
    return kith


def _with(settings: Settings, **env: str) -> Settings:
    return settings_for(settings.home, settings.database_url, **env)


class RevealCounter:
    """Counts the contact rows whose names the real protector decrypts."""

    def __init__(self, kith: Kith, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: list[uuid.UUID] = []
        reveal = kith.protector.reveal

        async def counting(subject_id, table, row_id, values):  # type: ignore[no-untyped-def]
            if table == Contact._meta.tablename:
                self.rows.append(row_id)
            return await reveal(subject_id, table, row_id, values)

        monkeypatch.setattr(kith.protector, "reveal", counting)


async def _lose_the_index() -> None:
    """As after an upgrade from a version without it: contacts, no index."""
    await NameToken.delete(force=True)
    await NameIndexState.delete(force=True)


# -- searching ---------------------------------------------------------------------------------


async def test_a_search_decrypts_only_the_contacts_it_may_find(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _add(kith, *(f"Person {n}" for n in range(120)))
    [zelda] = await _add(kith, "Zelda Fitzgerald")
    counter = RevealCounter(kith, monkeypatch)
    assert await _found(kith, "fitz") == [zelda]
    # The candidate once to check it, once to answer with it; none of the 120 others.
    assert set(counter.rows) == {zelda}
    counter.rows.clear()
    assert await _found(kith, "nobody") == []
    assert counter.rows == []


async def test_found_by_the_start_of_any_word_in_any_order(kith: Kith) -> None:
    ada, grace, ada_king = await _add(kith, "Ada Lovelace", "Grace Hopper", "Ada King")
    [org] = await _add(kith, "O'Brien-Smith & Sons", kind="organization")
    assert await _found(kith, "ad") == [ada, ada_king]
    assert await _found(kith, "LOVE ada") == [ada]
    assert await _found(kith, "ada lov") == [ada]
    assert await _found(kith, "ada h") == []
    assert await _found(kith, "gr hop") == [grace]
    assert await _found(kith, "velace") == []
    assert await _found(kith, "a") == [ada, ada_king]  # one letter: no index, still answered
    assert await _found(kith, "brien sons") == [org]
    assert await _found(kith, "o'brien") == [org]
    assert await _found(kith, "smith") == [org]
    assert await _found(kith, "&&") == []
    # Words longer than the index keeps are told apart after decryption.
    short, longer = await _add(kith, "Wolfeschlegelstein", "Wolfeschlegelsteinhausen")
    assert await _found(kith, "wolfeschlegel") == [short, longer]
    assert await _found(kith, "wolfeschlegelsteinh") == [longer]


async def test_pages_of_a_search_skip_archived_contacts_and_repeat_none(kith: Kith) -> None:
    service = ContactService(kith)
    smiths = []
    for n in range(21):
        name = ("Smith", "Jones", "Смит")[n % 3]
        [contact] = await _add(kith, f"{name} {n}")
        if name != "Jones":
            smiths.append(contact)
    await service.archive(smiths[1])
    await service.archive(smiths[4])
    wanted = [c for c in smiths if c not in (smiths[1], smiths[4])]
    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        page = await service.list(q="smi", limit=2, cursor=cursor)
        seen += [c.id for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == wanted
    assert await _found(kith, "smi", include_archived=True, limit=50) == smiths


async def test_pages_of_a_two_word_search_list_each_contact_once(kith: Kith) -> None:
    """Both words must start a word of the name, in any column; a word in two of a
    contact's names (display name and given name) lists the contact once."""
    service = ContactService(kith)
    wanted = []
    for n in range(9):
        family = ("Smith", "Jones", "Smithers")[n % 3]
        created = await service.create(ContactCreate(given_name=f"Anna{n}", family_name=family))
        if family != "Jones":
            wanted.append(created.id)
    await _add(kith, "Smith Annabel", "Anna", "Smith")
    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        page = await service.list(q="smi ann", limit=2, cursor=cursor)
        seen += [c.id for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    annabel = (await _found(kith, "annabel"))[0]
    assert seen == [*wanted, annabel]


async def test_names_are_found_from_another_script(kith: Kith) -> None:
    gagarin, petrov, muller = await _add(kith, "Юрий Гагарин", "Ivan Petrov", "Jörg Müller")
    assert await _found(kith, "yuri") == [gagarin]
    assert await _found(kith, "Gagarin") == [gagarin]
    assert await _found(kith, "Гага") == [gagarin]
    assert await _found(kith, "Иван") == [petrov]
    assert await _found(kith, "Пет") == [petrov]
    assert await _found(kith, "jorg muller") == [muller]
    assert await _found(kith, "MÜL") == [muller]


async def test_a_renamed_contact_is_found_by_its_new_name_only(kith: Kith) -> None:
    [ada] = await _add(kith, "Ada Lovelace")
    await ContactService(kith).update(ada, ContactPatch(name="Grace Hopper"))
    assert await _found(kith, "ada") == []
    assert await _found(kith, "lovelace") == []
    assert await _found(kith, "hopper grace") == [ada]


async def test_each_column_has_its_own_key(kith: Kith) -> None:
    """The same word as a given name and as a family name gives unrelated tokens."""
    service = ContactService(kith)
    first = (await service.create(ContactCreate(name="Alpha", given_name="Morgan"))).id
    second = (await service.create(ContactCreate(name="Beta", family_name="Morgan"))).id

    async def tokens(contact: uuid.UUID) -> set[int]:
        rows = await NameToken.select(NameToken.token).where(NameToken.contact == contact)
        return {row["token"] for row in rows}

    assert await tokens(first) and not await tokens(first) & await tokens(second)
    assert await _found(kith, "morg") == [first, second]


# -- erasure -----------------------------------------------------------------------------------


async def test_an_erased_person_is_not_found(kith: Kith) -> None:
    ada, grace, keep = await _add(kith, "Ada Lovelace", "Grace Lovelace", "Lovelace Kept")
    done = await ErasureService(kith).run(ada, job_id=ada)
    assert done.state == "done"
    assert "name search index (kith_name_token)" in {entry.location for entry in done.entries}
    assert await NameToken.count().where(NameToken.contact == ada) == 0
    await shred(kith, grace)
    assert await NameToken.count().where(NameToken.contact == grace) == 0
    assert await _found(kith, "lovelace") == [keep]
    assert await _found(kith, "ada") == []
    assert await _found(kith, "erased") == []


async def test_a_contact_deleted_by_other_code_takes_its_tokens_along(kith: Kith) -> None:
    """A plugin deleting contacts it made knows nothing of the index; the database deletes their
    tokens with them, one contact or many in one statement."""
    ada, grace, keep = await _add(kith, "Ada Lovelace", "Grace Hopper", "Lovelace Kept")
    assert await NameToken.count().where(NameToken.contact.is_in([ada, grace])) > 0
    await Contact.delete().where(Contact.id == ada)
    assert await NameToken.count().where(NameToken.contact == ada) == 0
    await Contact.delete().where(Contact.id.is_in([grace]))
    assert await NameToken.count().where(NameToken.contact == grace) == 0
    assert await NameToken.count().where(NameToken.contact == keep) > 0
    assert await _found(kith, "lovelace") == [keep]


# -- building it again -------------------------------------------------------------------------


async def test_migrate_builds_the_index_for_contacts_already_there(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada, grace = await _add(kith, "Ada Lovelace", "Grace Hopper")
    await _lose_the_index()
    restarted = await _open(kith.settings)
    try:
        # Incomplete: answered by decrypting, so nobody is missed.
        assert await _found(restarted, "hop") == [grace]
        await migrate_all(restarted)
        counter = RevealCounter(restarted, monkeypatch)
        assert await _found(restarted, "hop") == [grace]
        assert await _found(restarted, "ada") == [ada]
        assert set(counter.rows) == {grace, ada}
    finally:
        await restarted.close()


async def test_the_blind_index_reindex_builds_it_again_under_the_new_keys(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada, grace = await _add(kith, "Ada Lovelace", "Grace Hopper")
    before = {row["token"] for row in await NameToken.select(NameToken.token)}
    await rotation.rotate(kith)
    report = await reindex.reindex(kith)
    assert report is not None and report.names_indexed == 2
    after = {row["token"] for row in await NameToken.select(NameToken.token)}
    assert after and not before & after

    restarted = await _open(kith.settings)
    try:
        counter = RevealCounter(restarted, monkeypatch)
        assert await _found(restarted, "lovel") == [ada]
        assert await _found(restarted, "grace") == [grace]
        assert set(counter.rows) == {ada, grace}
    finally:
        await restarted.close()


def test_the_reindex_command_builds_a_lost_index(
    kith_settings: Settings, kith_cli: Any, tmp_path: Path
) -> None:
    import asyncio

    async def prepare() -> None:
        kith = await _open(kith_settings)
        try:
            await _add(kith, "Ada Lovelace")
            await _lose_the_index()
        finally:
            await kith.close()

    asyncio.run(prepare())
    env = {
        "KITH_HOME": str(kith_settings.home),
        "KITH_DATABASE_URL": kith_settings.database_url,
        "KITH_LOG_FORMAT": "json",
    }
    result = kith_cli("privacy", "keys", "reindex", env=env)
    assert result.exit_code == 0, result.output
    assert "name search index built again from 1 rows." in result.output

    async def check() -> None:
        kith = await _open(kith_settings)
        try:
            assert await name_index.name_index(kith).complete()
        finally:
            await kith.close()

    asyncio.run(check())


# The token table as migrations before the foreign key was dropped made it.
_OLD_SQLITE_TABLE = (
    'CREATE TABLE "kith_name_token_old" ("id" INTEGER PRIMARY KEY NOT NULL, '
    '"token" INTEGER NOT NULL DEFAULT 0, "contact" UUID NOT NULL REFERENCES "kith_contact" '
    '("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, '
    '"source" INTEGER NOT NULL DEFAULT 0)'
)
# Nor did those versions have the trigger that deletes a contact's tokens with it.
_OLD_SQLITE = (
    "DROP TRIGGER kith_contact_name_tokens",
    _OLD_SQLITE_TABLE,
    "INSERT INTO kith_name_token_old SELECT id, token, contact, source FROM kith_name_token",
    "DROP TABLE kith_name_token",
    "ALTER TABLE kith_name_token_old RENAME TO kith_name_token",
    "CREATE INDEX kith_name_token_search ON kith_name_token (token, contact)",
    "CREATE INDEX kith_name_token_contact ON kith_name_token (contact, source)",
)
_OLD_POSTGRES = (
    "DROP TRIGGER kith_contact_name_tokens ON kith_contact",
    "ALTER TABLE kith_name_token ADD CONSTRAINT kith_name_token_contact_fkey FOREIGN KEY "
    "(contact) REFERENCES kith_contact (id) ON DELETE CASCADE ON UPDATE CASCADE",
)


async def _foreign_keys() -> list[Any]:
    if NameToken._meta.db.engine_type == "postgres":
        sql = (
            "SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'kith_name_token'::regclass AND contype = 'f'"
        )
    else:
        sql = "SELECT * FROM pragma_foreign_key_list('kith_name_token')"
    return list(await NameToken.raw(sql).run())


async def test_dropping_the_foreign_key_keeps_every_token(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installation whose token table still has its foreign key to contacts keeps every
    token through ``kith migrate``, and searches still use them."""
    ada, grace = await _add(kith, "Ada Lovelace", "Grace Hopper")
    columns = (NameToken.id, NameToken.token, NameToken.contact, NameToken.source)
    before = await NameToken.select(*columns).order_by(NameToken.id)
    engine = NameToken._meta.db
    for statement in _OLD_POSTGRES if kith.database.kind == "postgresql" else _OLD_SQLITE:
        await engine.run_ddl(statement)
    assert await _foreign_keys()
    later = [import_module(f"kith.migrations.{name}").ID for name in _SINCE_FOREIGN_KEY]
    await Migration.delete().where((Migration.app_name == "kith") & Migration.name.is_in(later))

    await kith.database.migrate()

    assert await _foreign_keys() == []
    assert await NameToken.select(*columns).order_by(NameToken.id) == before
    restarted = await _open(kith.settings)
    try:
        counter = RevealCounter(restarted, monkeypatch)
        assert await _found(restarted, "lovel") == [ada]
        assert await _found(restarted, "gr hop") == [grace]
        # Found through the index: nobody else decrypted.
        assert set(counter.rows) == {ada, grace}
    finally:
        await restarted.close()
    # The upgraded table's tokens go with their contact, as a new installation's do.
    await Contact.delete().where(Contact.id == ada)
    assert await NameToken.count().where(NameToken.contact == ada) == 0


# -- turned off --------------------------------------------------------------------------------


async def test_turned_off_no_index_is_kept_and_search_still_finds(kith: Kith) -> None:
    [ada] = await _add(kith, "Ada Lovelace")
    off = await _open(_with(kith.settings, NAME_SEARCH_INDEX="false"))
    try:
        assert await _found(off, "lovel") == [ada]
        assert await NameToken.count() == 0
        [grace] = await _add(off, "Grace Hopper")
        assert await NameToken.count() == 0
        assert await _found(off, "hopp") == [grace]
        assert await _found(off, "Ада") == [ada]
    finally:
        await off.close()

    on = await _open(kith.settings)
    try:
        # Grace was added while it was off: until it is built, search decrypts.
        assert not await name_index.name_index(on).complete()
        assert await _found(on, "hopp") == [grace]
        await migrate_all(on)
        assert await name_index.name_index(on).complete()
        assert await _found(on, "hopp") == [grace]
        assert await _found(on, "lovel") == [ada]
    finally:
        await on.close()


def test_the_setting_takes_true_or_false(tmp_path: Path) -> None:
    assert settings_for(tmp_path).name_search_index is True
    assert settings_for(tmp_path, NAME_SEARCH_INDEX="no").name_search_index is False
    with pytest.raises(SettingsError, match="KITH_NAME_SEARCH_INDEX: expected true or false"):
        settings_for(tmp_path, NAME_SEARCH_INDEX="sometimes")


# -- a plugin's name fields --------------------------------------------------------------------


class Nickname(Table, tablename="test_name_nickname"):
    id = UUID(primary_key=True)
    contact_id = UUID()
    nickname = Text(secret=True)


NICKNAME = PersonalField(
    table="test_name_nickname",
    column="nickname",
    category="identity",
    purposes=("customer_relationship",),
    name_search=True,
    owner="nicknames",
)


class NicknamePlugin:
    def __init__(self, migrations: Path) -> None:
        self.app = AppConfig(
            app_name="test_name_nicknames", migrations_folder_path=migrations, table_classes=[]
        )

    @hookimpl
    def kith_register_apps(self, register: Any) -> None:
        self.app.table_classes.append(Nickname)
        register(self.app)

    @hookimpl
    def kith_register_personal_fields(self, register: Any) -> None:
        register(NICKNAME)


async def _nickname(kith: Kith, contact_id: uuid.UUID, nickname: str) -> None:
    row_id = uuid.uuid4()
    async with kith.unit_of_work() as _:
        stored = await kith.protector.protect(
            contact_id, "test_name_nickname", row_id, {"nickname": nickname}
        )
        await Nickname.insert(Nickname(id=row_id, contact_id=contact_id, **stored))
        await name_index.index_row(
            kith, contact_id, "test_name_nickname", row_id, {"nickname": nickname}, new=True
        )


async def test_a_plugins_name_field_is_searched_too(
    kith_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kith = await _open(kith_settings, NicknamePlugin(tmp_path))
    try:
        await Nickname.create_table(if_not_exists=True)
        ada, grace = await _add(kith, "Ada Lovelace", "Grace Hopper")
        await _nickname(kith, grace, "Amazing Grace")
        await _nickname(kith, ada, "Enchantress of Numbers")
        assert await _found(kith, "amaz") == [grace]
        assert await _found(kith, "enchant ada") == [ada]
        assert await _found(kith, "numbers hopper") == []

        await _lose_the_index()
        await migrate_all(kith)
        counter = RevealCounter(kith, monkeypatch)
        assert await _found(kith, "enchantress") == [ada]
        assert set(counter.rows) == {ada}

        await ErasureService(kith).run(ada, job_id=ada)
        assert await NameToken.count().where(NameToken.contact == ada) == 0
        assert await _found(kith, "enchantress") == []
    finally:
        await kith.close()


async def test_on_postgresql_the_index_is_kept_vacuumed_and_analysed(kith: Kith) -> None:
    """A search reads the index alone only where vacuum has marked the rows: after a rebuild
    the index is vacuumed and analysed at once, and autovacuum keeps up as it grows."""
    if kith.database.kind != "postgresql":
        pytest.skip("PostgreSQL's vacuum")
    ada, _ = await _add(kith, "Ada Lovelace", "Grace Hopper")
    table = NameToken._meta.tablename
    engine = kith.database.engine
    await name_index.rebuild(kith)
    stats = await engine._run_in_pool(
        "SELECT last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = $1", [table]
    )
    assert stats[0]["last_vacuum"] is not None and stats[0]["last_analyze"] is not None
    options = await engine._run_in_pool(
        "SELECT reloptions FROM pg_class WHERE relname = $1", [table]
    )
    assert "autovacuum_vacuum_insert_scale_factor=0.01" in options[0]["reloptions"]
    assert await _found(kith, "ada lov") == [ada]
