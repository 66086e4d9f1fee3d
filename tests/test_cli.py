"""The ``kith`` command, run in-process with click's runner against SQLite and PostgreSQL.

These tests are plain sync functions: the commands call ``asyncio.run`` themselves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import os
import pty
import re
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec
import pytest
from click.testing import CliRunner, Result
from kith.bootstrap import open_kith
from kith.cli import main
from kith.cli.setup import settings_template
from kith.errors import NotAuthenticated
from kith.runtime import Kith
from kith.schemas import ContactCreate, InteractionCreate
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.services.users import UserService
from kith.settings import SETTINGS_FILE, Settings
from kith.testing import postgres_admin_url, settings_for, skip_or_fail_without_postgres

T = TypeVar("T")


@dataclass
class Cli:
    """Runs ``kith ...`` for one installation (KITH_HOME + KITH_DATABASE_URL)."""

    home: Path
    database_url: str

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "KITH_HOME": str(self.home),
            "KITH_DATABASE_URL": self.database_url,
            "KITH_LOG_FORMAT": "json",
            **extra,
        }

    def __call__(self, *args: str, input: str | None = None, **env: str) -> Result:
        return CliRunner().invoke(main, list(args), env=self.env(**env), input=input)

    @property
    def settings(self) -> Settings:
        return settings_for(self.home, self.database_url)

    def run(self, work: Callable[[Kith], Awaitable[T]]) -> T:
        """Call services directly, to set up data or check what a command did."""

        async def go() -> T:
            kith = open_kith(self.settings)
            await kith.start()
            try:
                return await work(kith)
            finally:
                await kith.close()

        return asyncio.run(go())


@pytest.fixture
def cli(kith_database_url: str, tmp_path: Path) -> Cli:
    """An installation with a migrated database, on SQLite and on PostgreSQL."""
    return Cli(tmp_path / "kith-home", kith_database_url)


@pytest.fixture
def empty_database_url(kith_engine: str) -> Iterator[str]:
    """A database with no tables at all: the default SQLite file in KITH_HOME (empty URL), or
    a new, empty PostgreSQL database."""
    if kith_engine == "sqlite":
        yield ""
        return
    skip_or_fail_without_postgres()
    name = f"kith_cli_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(postgres_admin_url())._replace(path=f"/{name}"))
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _postgres_admin(sql: str) -> None:
    connection = await asyncpg.connect(postgres_admin_url(), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


def one_line_error(result: Result, exit_code: int) -> str:
    """The single ``kith: ...`` line an expected failure prints, checked for its form."""
    assert result.exit_code == exit_code, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kith: "), result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return lines[0]


# -- init and migrate ------------------------------------------------------------------------


def test_init_on_an_empty_home_then_nothing_is_pending(
    empty_database_url: str, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "new" / "kith-data", empty_database_url)
    result = ok(cli("init"))
    assert f"Created {cli.home}" in result.stdout
    assert "Wrote" in result.stdout and "applied" in result.stdout
    assert "kith users add" in result.stdout
    assert (cli.home / SETTINGS_FILE).read_text() == settings_template()
    if not empty_database_url:
        assert (cli.home / "kith.sqlite3").exists()

    assert "Nothing to migrate" in ok(cli("migrate")).stdout

    # A second init changes nothing and keeps an edited settings file.
    (cli.home / SETTINGS_FILE).write_text('default_region = "DE"\n')
    again = ok(cli("init"))
    assert "Kept" in again.stdout and "already up to date" in again.stdout
    assert (cli.home / SETTINGS_FILE).read_text() == 'default_region = "DE"\n'


def test_migrate_applies_what_is_pending(empty_database_url: str, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", empty_database_url)
    result = ok(cli("migrate"))
    assert result.stdout.startswith("Applied ")
    assert "  kith " in result.stdout
    assert "Nothing to migrate" in ok(cli("migrate")).stdout


def test_settings_template_lists_every_setting_with_its_default(tmp_path: Path) -> None:
    template = settings_template()
    # The settings of kith.toml's top level: not where it lives, nor the plugins' sections or
    # the variables they may read.
    names = [
        f.name
        for f in fields(Settings)
        if f.init and f.name not in ("home", "extra", "environment")
    ]
    for name in names:
        assert f"# {name} = " in template
    # Uncommented, the file is valid TOML and sets exactly the defaults.
    uncommented = "\n".join(
        line[2:]
        for line in template.splitlines()
        if any(line.startswith(f"# {n} =") for n in names)
    )
    assert sorted(tomllib.loads(uncommented)) == sorted(names)
    (tmp_path / SETTINGS_FILE).write_text(uncommented)
    with_file = settings_for(tmp_path, "")
    without = settings_for(tmp_path / "other", "")
    for name in names:
        if name != "database_url":
            assert getattr(with_file, name) == getattr(without, name), name


def test_commands_refuse_an_unmigrated_database(empty_database_url: str, tmp_path: Path) -> None:
    line = one_line_error(Cli(tmp_path / "home", empty_database_url)("users", "list"), 1)
    assert "kith migrate" in line


# -- settings and database errors ------------------------------------------------------------


def test_bad_database_url_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", "mysql://db.example/kith")
    line = one_line_error(cli("contacts", "list"), 2)
    assert "KITH_DATABASE_URL" in line


def test_bad_setting_in_kith_toml_names_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / SETTINGS_FILE).write_text('timezone = "Mars/Olympus"\n')
    line = one_line_error(Cli(home, "")("users", "list"), 2)
    assert "timezone" in line and SETTINGS_FILE in line


def test_unreachable_postgres_is_a_readable_line(tmp_path: Path) -> None:
    # Port 1 is never a PostgreSQL server: the connection is refused at once.
    cli = Cli(tmp_path / "home", "postgresql://postgres@127.0.0.1:1/kith")
    line = one_line_error(cli("users", "list"), 1)
    assert "cannot open the database" in line and "KITH_DATABASE_URL" in line


def test_help_works_without_valid_settings(tmp_path: Path) -> None:
    result = ok(Cli(tmp_path, "mysql://nope")("--help"))
    for command in ("init", "migrate", "serve", "users", "tokens", "contacts", "tasks"):
        assert command in result.stdout


# -- users and tokens ------------------------------------------------------------------------


def test_users_add_and_list(cli: Cli) -> None:
    added = ok(cli("users", "add", "Ada@Example.COM", "--role", "admin", "--name", "Ada L"))
    assert "ada@example.com" in added.stdout
    ok(cli("users", "add", "bob@example.com", "--role", "agent"))

    table = ok(cli("users", "list")).stdout.splitlines()
    assert table[0].split() == ["email", "name", "role", "active", "created"]
    assert table[1].split()[:5] == ["ada@example.com", "Ada", "L", "admin", "yes"]
    assert table[2].split()[:3] == ["bob@example.com", "agent", "yes"]

    listed = msgspec.json.decode(ok(cli("users", "list", "--json")).stdout)
    assert [(u["email"], u["role"]) for u in listed] == [
        ("ada@example.com", "admin"),
        ("bob@example.com", "agent"),
    ]


def test_users_add_with_a_password_prompts_twice(cli: Cli) -> None:
    ok(
        cli(
            "users",
            "add",
            "pw@example.com",
            "--role",
            "agent",
            "--password",
            input="s3cret-pass\n" * 2,
        )
    )
    user = cli.run(lambda kith: UserService(kith).verify_password("pw@example.com", "s3cret-pass"))
    assert user.email == "pw@example.com"


def test_users_add_with_a_bad_role_says_which_roles_exist(cli: Cli) -> None:
    line = one_line_error(cli("users", "add", "x@example.com", "--role", "king"), 1)
    assert "'king' is not a role" in line and "admin" in line
    line = one_line_error(cli("users", "add", "not-an-email", "--role", "agent"), 1)
    assert "not a valid email address" in line
    ok(cli("users", "add", "x@example.com", "--role", "agent"))
    line = one_line_error(cli("users", "add", "X@example.com", "--role", "agent"), 1)
    assert "already exists" in line


def test_token_is_printed_alone_authenticates_and_can_be_revoked(cli: Cli) -> None:
    ok(cli("users", "add", "ada@example.com", "--role", "admin"))
    created = ok(cli("tokens", "create", "ada@example.com", "--expires-days", "7"))
    token = created.stdout.strip()
    assert created.stdout == token + "\n"
    assert token.startswith("kith_") and " " not in token
    assert "shown only this once" in created.stderr

    actor = cli.run(lambda kith: UserService(kith).authenticate(token))
    assert actor.name == "ada@example.com"

    listed = ok(cli("tokens", "list", "ada@example.com")).stdout
    assert token[:11] in listed and "active" in listed and token not in listed

    revoked = ok(cli("tokens", "revoke", token[:11]))
    assert "Revoked" in revoked.stdout
    with pytest.raises(NotAuthenticated, match="revoked"):
        cli.run(lambda kith: UserService(kith).authenticate(token))
    assert "revoked" in ok(cli("tokens", "list")).stdout


def test_tokens_for_an_unknown_user_or_token_are_readable_errors(cli: Cli) -> None:
    assert "kith users add" in one_line_error(cli("tokens", "create", "ghost@example.com"), 1)
    assert "kith tokens list" in one_line_error(cli("tokens", "revoke", "kith_nope00"), 1)


def test_tokens_list_shows_when_a_token_was_last_used(cli: Cli) -> None:
    ok(cli("users", "add", "ada@example.com", "--role", "admin"))
    token = ok(cli("tokens", "create", "ada@example.com")).stdout.strip()
    (unused,) = msgspec.json.decode(ok(cli("tokens", "list", "--json")).stdout)
    assert unused["last_used_at"] is None

    cli.run(lambda kith: UserService(kith).authenticate(token))
    (used,) = msgspec.json.decode(ok(cli("tokens", "list", "--json")).stdout)
    assert used["last_used_at"] is not None
    header, row = ok(cli("tokens", "list", KITH_TIMEZONE="UTC")).stdout.splitlines()
    assert header.split()[-2:] == ["last", "used"]
    last_used = dt.datetime.fromisoformat(used["last_used_at"])
    assert row.endswith(last_used.strftime("%Y-%m-%d %H:%M"))


def test_a_token_lives_at_most_ten_years(cli: Cli) -> None:
    ok(cli("users", "add", "ada@example.com", "--role", "admin"))
    line = one_line_error(
        cli("tokens", "create", "ada@example.com", "--expires-days", "999999999"), 1
    )
    assert "3650 days" in line


# -- contacts --------------------------------------------------------------------------------


def test_contact_with_an_odd_phone_is_found_by_the_phone_typed_differently(cli: Cli) -> None:
    added = ok(
        cli(
            "contacts", "add", "Ada Lovelace",
            "--phone", " 020 7946-0018 ",
            "--email", "Ada@Example.com",
            "--tag", "vip",
            "--json",
        )
    )  # fmt: skip
    contact = msgspec.json.decode(added.stdout)
    assert contact["phones"] == [{"number": "+442079460018", "label": "", "primary": True}]
    assert contact["emails"][0]["address"] == "ada@example.com"

    for typed in ("+44 (20) 7946 0018", "0044 20 79460018", "ADA@example.COM", "lov"):
        found = msgspec.json.decode(ok(cli("contacts", "search", typed, "--json")).stdout)
        assert [c["id"] for c in found] == [contact["id"]], typed

    table = ok(cli("contacts", "search", "+44 20 7946 0018")).stdout
    assert "Ada Lovelace" in table and "+442079460018" in table

    missing = ok(cli("contacts", "search", "+44 20 7946 0019"))
    assert missing.stdout == "" and "No contacts match" in missing.stderr


def test_contacts_list_filters_and_orders(cli: Cli) -> None:
    ok(cli("contacts", "add", "Ada Lovelace", "--tag", "vip"))
    ok(cli("contacts", "add", "Bob Brown", "--tag", "london"))
    ok(cli("contacts", "add", "Acme Ltd", "--kind", "organization", "--tag", "vip"))
    listed = ok(cli("contacts", "list", "--tag", "vip", "--kind", "person", "--json")).stdout
    assert [c["name"] for c in msgspec.json.decode(listed)] == ["Ada Lovelace"]
    newest = ok(cli("contacts", "list", "--sort", "-created", "--json")).stdout
    assert msgspec.json.decode(newest)[0]["name"] == "Acme Ltd"
    assert "owner" in one_line_error(cli("contacts", "list", "--owner", "me"), 1)


def test_contacts_add_rejects_bad_input_with_one_line(cli: Cli) -> None:
    assert "phone" in one_line_error(cli("contacts", "add", "Ada", "--phone", "12"), 1)
    assert "email" in one_line_error(cli("contacts", "add", "Ada", "--email", "ada@"), 1)
    assert "name" in one_line_error(cli("contacts", "add", "x" * 300), 1)
    ok(cli("contacts", "add", "Ada", "--email", "ada@example.com"))
    assert "already has" in one_line_error(
        cli("contacts", "add", "Ada Two", "--email", "ada@example.com"), 1
    )


def test_contacts_list_limits_and_includes_archived_with_all(cli: Cli) -> None:
    ids = [
        msgspec.json.decode(ok(cli("contacts", "add", name, "--json")).stdout)["id"]
        for name in ("Ann", "Ben", "Cat")
    ]
    cli.run(lambda kith: ContactService(kith).archive(uuid.UUID(ids[0])))

    listed = msgspec.json.decode(ok(cli("contacts", "list", "--json")).stdout)
    assert [c["id"] for c in listed] == ids[1:]
    everything = msgspec.json.decode(ok(cli("contacts", "list", "--all", "--json")).stdout)
    assert [c["id"] for c in everything] == ids

    limited = ok(cli("contacts", "list", "--limit", "1"))
    assert limited.stdout.splitlines()[0].split()[:3] == ["id", "kind", "name"]
    assert len(limited.stdout.splitlines()) == 2
    assert "--limit" in limited.stderr


def test_contacts_show_prints_the_contact_and_its_timeline(cli: Cli) -> None:
    contact = msgspec.json.decode(
        ok(cli("contacts", "add", "Acme Ltd", "--kind", "organization", "--json")).stdout
    )
    key = uuid.UUID(contact["id"])
    cli.run(
        lambda kith: InteractionService(kith).log(
            key, InteractionCreate(kind="call", direction="inbound", summary="asked for a quote")
        )
    )
    shown = ok(cli("contacts", "show", contact["id"])).stdout
    assert shown.startswith("Acme Ltd\n")
    assert "organization" in shown and "asked for a quote" in shown and "inbound" in shown

    detail = msgspec.json.decode(ok(cli("contacts", "show", contact["id"], "--json")).stdout)
    assert detail["contact"]["id"] == contact["id"]
    assert [i["summary"] for i in detail["timeline"]] == ["asked for a quote"]

    assert "not a contact id" in one_line_error(cli("contacts", "show", "42"), 1)
    assert "does not exist" in one_line_error(cli("contacts", "show", str(uuid.uuid4())), 1)


# -- tasks -----------------------------------------------------------------------------------


def test_tasks_list_by_due_date_and_assignee(cli: Cli) -> None:
    ok(cli("users", "add", "ada@example.com", "--role", "agent"))
    ok(cli("users", "add", "bob@example.com", "--role", "agent"))
    now = dt.datetime.now(dt.UTC)

    async def setup(kith: Kith) -> None:
        ada = await UserService(kith).by_email("ada@example.com")
        contact = await ContactService(kith).create(ContactCreate(name="Grace Hopper"))
        log = InteractionService(kith).log
        for summary, due in (("call back", now - dt.timedelta(days=2)), ("send offer", None)):
            task = InteractionCreate(kind="task", summary=summary, due_at=due, assignee_id=ada.id)
            await log(contact.id, task)

    cli.run(setup)

    overdue = ok(cli("tasks", "list", "--due", "overdue")).stdout.splitlines()
    assert len(overdue) == 2
    assert "call back" in overdue[1] and "Grace Hopper" in overdue[1] and "overdue" in overdue[1]
    assert "ada@example.com" in overdue[1]

    every = msgspec.json.decode(ok(cli("tasks", "list", "--json")).stdout)
    assert sorted(t["summary"] for t in every) == ["call back", "send offer"]
    mine = msgspec.json.decode(
        ok(cli("tasks", "list", "--assignee", "ADA@example.com", "--json")).stdout
    )
    assert len(mine) == 2

    none = ok(cli("tasks", "list", "--assignee", "bob@example.com"))
    assert none.stdout == "" and "No open tasks" in none.stderr
    assert "kith users add" in one_line_error(
        cli("tasks", "list", "--assignee", "ghost@example.com"), 1
    )


def test_tasks_list_is_soonest_due_first_whatever_order_they_were_added(cli: Cli) -> None:
    contact = msgspec.json.decode(ok(cli("contacts", "add", "Grace Hopper", "--json")).stdout)
    for summary, due in (
        ("whenever", None),
        ("next week", "2030-01-08 09:00"),
        ("first thing", "2030-01-01"),
    ):
        ok(cli("tasks", "add", contact["id"], summary, *(["--due", due] if due else [])))
    listed = msgspec.json.decode(ok(cli("tasks", "list", "--json")).stdout)
    assert [t["summary"] for t in listed] == ["first thing", "next week", "whenever"]


def test_tasks_add_and_done(cli: Cli) -> None:
    ok(cli("users", "add", "ada@example.com", "--role", "agent"))
    contact = msgspec.json.decode(ok(cli("contacts", "add", "Grace Hopper", "--json")).stdout)
    added = ok(
        cli(
            "tasks", "add", contact["id"], "Send the quote",
            "--due", "2030-01-10 09:00", "--assignee", "ADA@example.com",
            KITH_TIMEZONE="Europe/Berlin",
        )
    )  # fmt: skip
    assert "Send the quote" in added.stdout and "Grace Hopper" in added.stdout
    assert "2030-01-10 09:00" in added.stdout and "ada@example.com" in added.stdout
    by_date = msgspec.json.decode(
        ok(cli("tasks", "add", contact["id"], "Call back", "--due", "2030-01-11", "--json")).stdout
    )
    # A date alone is due by the end of that day, in the installation's time zone (UTC here).
    assert by_date["due_at"].startswith("2030-01-11T23:59:59")

    listed = msgspec.json.decode(ok(cli("tasks", "list", "--json")).stdout)
    assert [t["summary"] for t in listed] == ["Send the quote", "Call back"]
    send = listed[0]
    # 09:00 in Berlin is 08:00 UTC in winter.
    assert dt.datetime.fromisoformat(send["due_at"]) == dt.datetime(2030, 1, 10, 8, tzinfo=dt.UTC)
    assert send["assignee_id"] is not None and send["contact_id"] == contact["id"]

    done = ok(cli("tasks", "done", send["id"]))
    assert done.stdout.startswith("Done: 'Send the quote'")
    again = ok(cli("tasks", "done", send["id"], "--json"))
    closed = msgspec.json.decode(again.stdout)
    assert closed["done_at"] is not None
    assert [
        t["summary"] for t in msgspec.json.decode(ok(cli("tasks", "list", "--json")).stdout)
    ] == ["Call back"]
    # Done twice keeps the first time.
    assert ok(cli("tasks", "done", send["id"])).stderr.startswith("Task 'Send the quote'")
    assert (
        msgspec.json.decode(ok(cli("tasks", "done", send["id"], "--json")).stdout)["done_at"]
        == closed["done_at"]
    )


def test_tasks_add_and_done_refuse_bad_input_with_one_line(cli: Cli) -> None:
    contact = msgspec.json.decode(ok(cli("contacts", "add", "Grace Hopper", "--json")).stdout)
    assert "not a contact id" in one_line_error(cli("tasks", "add", "42", "Call"), 1)
    assert "does not exist" in one_line_error(cli("tasks", "add", str(uuid.uuid4()), "Call"), 1)
    assert "kith users add" in one_line_error(
        cli("tasks", "add", contact["id"], "Call", "--assignee", "ghost@example.com"), 1
    )
    assert "summary" in one_line_error(cli("tasks", "add", contact["id"], "x" * 600), 1)
    bad_due = cli("tasks", "add", contact["id"], "Call", "--due", "next tuesday")
    assert bad_due.exit_code == 2 and "is not a date or time" in bad_due.stderr
    note = msgspec.json.decode(ok(cli("log", "note", contact["id"], "hello", "--json")).stdout)
    assert "is a note, not a task" in one_line_error(cli("tasks", "done", note["id"]), 1)
    assert "not a task id" in one_line_error(cli("tasks", "done", "42"), 1)
    assert "does not exist" in one_line_error(cli("tasks", "done", str(uuid.uuid4())), 1)


def test_log_puts_a_call_and_a_note_on_the_timeline(cli: Cli) -> None:
    contact = msgspec.json.decode(ok(cli("contacts", "add", "Grace Hopper", "--json")).stdout)
    call = msgspec.json.decode(
        ok(
            cli(
                "log", "call", contact["id"], "Asked for a quote",
                "--direction", "inbound", "--minutes", "2.5", "--channel", "phone",
                "--at", "2025-03-04 10:00", "--json",
                KITH_TIMEZONE="Europe/Berlin",
            )
        ).stdout
    )  # fmt: skip
    assert call["kind"] == "call" and call["direction"] == "inbound"
    assert call["duration_s"] == 150 and call["channel"] == "phone" and call["source"] == "cli"
    assert dt.datetime.fromisoformat(call["occurred_at"]) == dt.datetime(
        2025, 3, 4, 9, tzinfo=dt.UTC
    )
    logged = ok(cli("log", "note", contact["id"], "Prefers email", "--body", "Said so at the fair"))
    assert logged.stdout.startswith("Logged note with Grace Hopper at ")
    order = msgspec.json.decode(
        ok(cli("log", "order", contact["id"], "--amount", "1234.50", "--json")).stdout
    )
    assert decimal.Decimal(order["amount"]) == decimal.Decimal("1234.50")

    detail = msgspec.json.decode(ok(cli("contacts", "show", contact["id"], "--json")).stdout)
    timeline = detail["timeline"]
    assert [i["kind"] for i in timeline] == ["order", "note", "call"]
    assert timeline[1]["body"] == "Said so at the fair"

    assert "amount" in one_line_error(cli("log", "order", contact["id"], "--amount", "lots"), 1)
    assert "two decimal places" in one_line_error(
        cli("log", "order", contact["id"], "--amount", "1.234"), 1
    )
    assert "does not exist" in one_line_error(cli("log", "note", str(uuid.uuid4()), "hi"), 1)
    refused = cli("log", "task", contact["id"], "Call back")
    assert refused.exit_code == 2 and "task" in refused.stderr
    assert cli("log", "call", contact["id"], "--minutes", "-1").exit_code == 2


def test_an_organization_lists_its_people_and_their_timeline(cli: Cli) -> None:
    def add(*args: str) -> str:
        return str(msgspec.json.decode(ok(cli("contacts", "add", *args, "--json")).stdout)["id"])

    firm = add("Engines Ltd", "--kind", "organization")
    ada = add("Ada Lovelace", "--organization", firm, "--email", "ada@engines.example")
    bob = add("Bob Babbage", "--organization", firm)
    add("Dot Elsewhere")
    ok(cli("log", "call", ada, "Asked for a quote", "--at", "2025-01-02 09:00"))
    ok(cli("log", "note", firm, "Met at the fair", "--at", "2025-01-01 09:00"))

    listed = msgspec.json.decode(
        ok(cli("contacts", "list", "--organization", firm, "--json")).stdout
    )
    assert [c["id"] for c in listed] == [ada, bob]
    assert "is a person" in one_line_error(cli("contacts", "list", "--organization", ada), 1)
    assert "not an organization id" in one_line_error(
        cli("contacts", "list", "--organization", "42"), 1
    )

    shown = ok(cli("contacts", "show", firm)).stdout
    people = shown[shown.index("People:") : shown.index("Timeline")]
    assert "Ada Lovelace" in people and "ada@engines.example" in people and "Bob Babbage" in people
    assert "Met at the fair" in shown and "Asked for a quote" not in shown

    both = ok(cli("contacts", "show", firm, "--include-people")).stdout
    timeline = both[both.index("Timeline") :].splitlines()
    assert "Ada Lovelace" in timeline[2] and "Asked for a quote" in timeline[2]
    assert "Engines Ltd" in timeline[3] and "Met at the fair" in timeline[3]
    detail = msgspec.json.decode(
        ok(cli("contacts", "show", firm, "--include-people", "--json")).stdout
    )
    assert [p["id"] for p in detail["people"]] == [ada, bob]
    assert [i["contact_id"] for i in detail["timeline"]] == [ada, firm]
    person = msgspec.json.decode(ok(cli("contacts", "show", ada, "--json")).stdout)
    assert person["people"] == [] and person["contact"]["organization_id"] == firm


# -- what a command logs among its output ------------------------------------------------------

KITH = str(Path(sys.executable).with_name("kith"))


def _kith_in_terminal(home: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """Run ``kith`` as a person does in a terminal: stderr is a pseudo-terminal (stdout is
    read here). Returns the exit code, stdout and what the terminal showed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [KITH, *args],
        env={**os.environ, "KITH_HOME": str(home), **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the command closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    out = process.communicate(timeout=120)[0]
    return process.returncode, out.decode(), shown.decode(errors="replace")


def _kith_piped(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KITH, *args],
        env={**os.environ, "KITH_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def quiet_home(tmp_path: Path) -> Path:
    """An installation whose kith.toml makes every command warn (a section nobody declares),
    and whose retention run logs an info line."""
    home = tmp_path / "home"
    home.mkdir()
    (home / SETTINGS_FILE).write_text("[nobody]\nanswer = 42\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITH_")}
    migrated = subprocess.run(
        [KITH, "migrate"], env={**env, "KITH_HOME": str(home)}, capture_output=True, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    return home


WARNING = "kith.toml has a section no loaded plugin declares; it is ignored"
INFO = "retention run"


def test_a_command_in_a_terminal_shows_only_warnings_readably(quiet_home: Path) -> None:
    code, out, shown = _kith_in_terminal(quiet_home, "privacy", "retention", "run")
    assert code == 0, shown
    assert "Retention rules:" in out
    assert WARNING in shown and "section=nobody" in re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert INFO not in shown
    assert '{"' not in shown  # no JSON among what a person reads


def test_a_command_piped_logs_warnings_as_json(quiet_home: Path) -> None:
    done = _kith_piped(quiet_home, "privacy", "retention", "run")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [line["event"] for line in lines] == [WARNING]
    assert lines[0]["level"] == "warning" and "timestamp" in lines[0]


def test_kith_log_format_json_keeps_every_line_for_scripts(quiet_home: Path) -> None:
    done = _kith_piped(quiet_home, "privacy", "retention", "run", KITH_LOG_FORMAT="json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line)["event"] for line in done.stderr.splitlines() if line[:1] == "{"]
    assert WARNING in events and INFO in events
