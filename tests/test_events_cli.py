"""``kith events``, ``kith worker`` and in-process dispatch by the HTTP app, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
from click.testing import CliRunner, Result
from kith.bootstrap import open_kith
from kith.cli import main
from kith.console import PLUGIN_MANAGER
from kith.events import Event
from kith.hookspecs import hookimpl
from kith.http import create_app
from kith.plugin_manager import KithPluginManager
from kith.runtime import Kith
from kith.schemas import ContactCreate, InteractionCreate
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.settings import Settings
from kith.subjects import Subscriber

T = TypeVar("T")

received: list[Event] = []


def _healthy(kith: Kith, event: Event) -> None:
    received.append(event)


class HealthySubscriberPlugin:
    """Gives the ``kith`` command of the test the subscriber ``test.cli``."""

    @hookimpl
    def kith_register_subscribers(self, register: Callable[[Subscriber], None]) -> None:
        register(Subscriber(name="test.cli", events=("contact.*",), handler=_healthy))


def run(settings: Settings, work: Callable[[Kith], Awaitable[T]]) -> T:
    """Call the bus or services directly from a sync test."""

    async def go() -> T:
        kith = open_kith(settings)
        await kith.start()
        try:
            return await work(kith)
        finally:
            await kith.close()

    return asyncio.run(go())


def kith_cli(settings: Settings, *args: str, plugins: KithPluginManager | None = None) -> Result:
    """Run the ``kith`` command in-process, with ``plugins`` if given (else it loads its own)."""
    env = {
        "KITH_HOME": str(settings.home),
        "KITH_DATABASE_URL": settings.database_url,
        "KITH_LOG_FORMAT": "json",
    }
    obj = {PLUGIN_MANAGER: plugins} if plugins is not None else None
    return CliRunner().invoke(main, list(args), env=env, obj=obj)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


def dead_letter(settings: Settings) -> uuid.UUID:
    """A contact.created event whose delivery to ``test.cli`` failed for good."""

    async def work(kith: Kith) -> uuid.UUID:
        def broken(kith: Kith, event: Event) -> None:
            raise ConnectionError("receiver down")

        kith.subscribers = [
            Subscriber(name="test.cli", events=("contact.*",), handler=broken, max_attempts=1)
        ]
        await ContactService(kith).create(ContactCreate(name="Dead Letter"))
        await kith.bus.drain()
        [summary] = await kith.bus.list_events(state="dead")
        return summary.event.id

    return run(settings, work)


@pytest.mark.kith_plugins(HealthySubscriberPlugin())
def test_list_show_replay_and_worker_once(
    kith_settings: Settings, kith_plugin_manager: KithPluginManager
) -> None:
    def cli(*args: str) -> Result:
        return kith_cli(kith_settings, *args, plugins=kith_plugin_manager)

    received.clear()
    event_id = dead_letter(kith_settings)

    listed = ok(cli("events", "list", "--state", "dead"))
    [line] = [row for row in listed.stdout.splitlines() if str(event_id) in row]
    assert "contact.created" in line and "dead" in line and "1 dead" in line
    assert ok(cli("events", "list", "--state", "pending")).stdout == ""

    shown = ok(cli("events", "show", str(event_id)))
    assert "contact.created" in shown.stdout
    assert "ConnectionError: receiver down" in shown.stdout
    as_json = msgspec.json.decode(ok(cli("events", "show", str(event_id), "--json")).stdout)
    [delivery] = [d for d in as_json["deliveries"] if d["subscriber"] == "test.cli"]
    assert (delivery["state"], delivery["attempts"]) == ("dead", 1)

    subscribers = ok(cli("events", "subscribers")).stdout
    assert "test.cli" in subscribers

    replayed = ok(cli("events", "replay", str(event_id)))
    assert "1 dead delivery pending again" in replayed.stdout
    again = cli("events", "replay", str(event_id))
    assert again.exit_code == 1 and "has no dead deliveries" in again.stderr
    assert "No dead deliveries" in ok(cli("events", "replay", "--all-dead")).stderr
    pending = ok(cli("events", "list", "--state", "pending", "--json"))
    assert [e["event"]["id"] for e in msgspec.json.decode(pending.stdout)] == [str(event_id)]

    # The worker run with the test's plugins has the healthy subscriber: it delivers.
    ok(cli("worker", "--once"))
    assert [e.id for e in received] == [event_id]
    delivered = ok(cli("events", "list", "--state", "delivered", "--json"))
    assert str(event_id) in delivered.stdout


def test_bad_arguments_are_one_readable_line(kith_settings: Settings) -> None:
    both = kith_cli(kith_settings, "events", "replay")
    assert both.exit_code == 2 and "give an event ID or --all-dead" in both.output
    bad = kith_cli(kith_settings, "events", "show", "not-an-id")
    assert bad.exit_code == 1 and bad.stderr.startswith("kith: 'not-an-id' is not an event id")
    missing = kith_cli(kith_settings, "events", "show", str(uuid.uuid4()))
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.output


def test_forget_drops_a_subscriber_and_its_pending_deliveries(kith_settings: Settings) -> None:
    async def work(kith: Kith) -> None:
        kith.subscribers = [Subscriber(name="test.gone", events=("*",), handler=_healthy)]
        await kith.bus.record_subscribers()
        await ContactService(kith).create(ContactCreate(name="Pending"))
        await kith.bus.dispatcher.fan_out()

    run(kith_settings, work)
    result = ok(kith_cli(kith_settings, "events", "forget", "test.gone", "--yes"))
    assert "1 pending deliveries dropped" in result.stdout
    assert "test.gone" not in ok(kith_cli(kith_settings, "events", "subscribers")).stdout
    unknown = kith_cli(kith_settings, "events", "forget", "test.gone", "--yes")
    assert unknown.exit_code == 1


def test_worker_process_dispatches_schedules_and_stops_on_sigterm(
    kith_settings: Settings,
) -> None:
    """A real ``kith worker``: it fans out what was committed before it started, publishes a
    task that is already due, and stops cleanly on SIGTERM."""

    async def setup(kith: Kith) -> uuid.UUID:
        contact = await ContactService(kith).create(ContactCreate(name="Worker Test"))
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        task, _ = await InteractionService(kith).log(
            contact.id, InteractionCreate(kind="task", summary="call", due_at=past)
        )
        return task.id

    task_id = run(kith_settings, setup)
    env = {
        **os.environ,
        "KITH_HOME": str(kith_settings.home),
        "KITH_DATABASE_URL": kith_settings.database_url,
        "KITH_LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "from kith.cli import main; main()", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        async def published(kith: Kith) -> list[Any]:
            return await kith.bus.list_events(name="task.due")

        deadline = time.monotonic() + 60
        while not run(kith_settings, published):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the worker published no task.due"
            time.sleep(0.2)

        async def unfanned(kith: Kith) -> int:
            return (await kith.bus.counts())["unfanned"]

        while run(kith_settings, unfanned):
            assert time.monotonic() < deadline, "the worker fanned nothing out"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Kith worker stopped." in err
    [due] = run(kith_settings, published)
    assert due.event.payload["interaction_id"] == str(task_id)


async def test_http_app_dispatches_in_process_unless_told_not_to(kith: Kith) -> None:
    kith.subscribers = []
    got: list[Event] = []

    async def handler(kith: Kith, event: Event) -> None:
        got.append(event)

    kith.bus.subscribe(Subscriber(name="test.http", events=("contact.created",), handler=handler))

    quiet = create_app(kith, manage_lifecycle=False)
    async with quiet.lifespan():
        assert not kith.bus.running  # tests share their Kith: no dispatch by default

    app = create_app(kith, manage_lifecycle=False, dispatch=True)
    async with app.lifespan():
        assert kith.bus.running
        contact = await ContactService(kith).create(ContactCreate(name="Via HTTP app"))
        async with asyncio.timeout(30):
            while not got:
                await asyncio.sleep(0.02)
    assert not kith.bus.running
    assert [(e.name, e.contact_id) for e in got] == [("contact.created", contact.id)]


def test_serve_dispatch_option_follows_the_setting(kith_settings: Settings) -> None:
    kith = open_kith(kith_settings)
    assert kith.settings.dispatch_in_process
    on_startup = create_app(kith).on_startup
    assert any(hook.__name__ == "start_dispatch" for hook in on_startup)
    assert not any(
        hook.__name__ == "start_dispatch" for hook in create_app(kith, dispatch=False).on_startup
    )


def test_events_settings_are_validated(tmp_path: Path) -> None:
    from kith.dispatcher import EventsConfig
    from kith.settings import SettingsError
    from kith.testing import settings_for

    home = tmp_path / "home"
    home.mkdir()
    (home / "kith.toml").write_text("[events]\nbackoff_base_s = 0.5\nbatch_size = 10\n")
    config = EventsConfig.from_settings(settings_for(home))
    assert (config.backoff_base_s, config.batch_size) == (0.5, 10)
    for bad, message in (
        ("backoff_base_s = 'soon'", r"^\[events\] backoff_base_s: Expected `float`"),
        ("batch_size = 0", r"^\[events\] batch_size: Expected `int` >= 1"),
        ("lease_s = 10", r"^\[events\] lease_s: must be longer than handler_timeout_s"),
    ):
        (home / "kith.toml").write_text(f"[events]\n{bad}\n")
        with pytest.raises(SettingsError, match=message):
            EventsConfig.from_settings(settings_for(home))
    # Core declares [events] like a plugin its section: a misspelt key stops start-up.
    (home / "kith.toml").write_text("[events]\nretries = 3\n")
    with pytest.raises(SettingsError, match=r"^\[events\] retries: unknown setting"):
        open_kith(settings_for(home))
    overridden = settings_for(home, "", events_batch_size="7")
    (home / "kith.toml").write_text("")
    assert EventsConfig.from_settings(overridden).batch_size == 7
