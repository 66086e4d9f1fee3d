"""The plugin system: discovery through the ``kith`` entry-point group, selection, broken plugins,
validated register-style hooks, tracing, and a plugin registered for one test reaching the
database, the HTTP app and the ``kith`` command.

Third-party plugins here are real distributions: a ``*.dist-info`` folder with an
``entry_points.txt`` next to the plugin module, in a folder put on ``sys.path`` for one test, so
discovery runs exactly as it does for a pip-installed package.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import json
import re
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import msgspec
import pytest
import structlog
from click.testing import CliRunner
from kith import __version__
from kith.actor import Role
from kith.bootstrap import open_kith
from kith.cli import main
from kith.console import run_with_kith
from kith.events import Event, EventType
from kith.hookspecs import hookimpl, hookspec, may_be_async
from kith.http.auth import public, roles
from kith.personal import CORE_PURPOSES, PersonalField
from kith.plugin_manager import (
    HookResult,
    KithPluginManager,
    PluginError,
    PluginSelection,
    load_plugin_manager,
)
from kith.protection import PlaintextProtector
from kith.runtime import Kith
from kith.settings import Settings, SettingsError
from kith.subjects import Purpose, Recipient, Subscriber
from kith.testing import settings_for
from litestar import get
from litestar.datastructures import State
from piccolo.columns import UUID, Varchar
from piccolo.conf.apps import AppConfig
from piccolo.table import Table

# -- throw-away distributions ------------------------------------------------------------------


@dataclass
class Site:
    """A folder on ``sys.path`` that distributions are installed into for one test."""

    root: Path
    modules: list[str] = field(default_factory=list)

    def install(self, name: str, version: str, plugins: dict[str, str]) -> dict[str, str]:
        """Install distribution ``name`` whose ``kith`` entry points are modules with the given
        sources; returns entry-point name → module name."""
        modules: dict[str, str] = {}
        lines = ["[kith]"]
        for entry_point, source in plugins.items():
            # Unique module names: a module imported by one test must not answer for another.
            module = f"kithtest_{uuid.uuid4().hex[:10]}_{entry_point}"
            (self.root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            lines.append(f"{entry_point} = {module}")
            modules[entry_point] = module
            self.modules.append(module)
        info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        importlib.invalidate_caches()
        return modules


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    installed = Site(root)
    yield installed
    for module in installed.modules:
        sys.modules.pop(module, None)


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


GOOD = """
    from kith.events import EventType
    from kith.hookspecs import hookimpl

    @hookimpl
    def kith_register_event_types(register):
        register(EventType("fake.happened", "Something fake happened."))
"""

OTHER = """
    from kith.events import EventType
    from kith.hookspecs import hookimpl

    @hookimpl
    def kith_register_event_types(register):
        register(EventType("other.happened", "Something else happened."))
"""

BROKEN_IMPORT = """
    raise ImportError("the fake SDK is not installed")
"""

BROKEN_REGISTER = """
    from kith.events import EventType
    from kith.hookspecs import hookimpl

    @hookimpl
    def kith_register_event_types(register):
        register(EventType("broken.partial", "Registered before the failure."))

    @hookimpl
    def kith_register_subscribers(register):
        raise RuntimeError("no credentials configured")
"""

MISSPELT = """
    from kith.hookspecs import hookimpl

    @hookimpl
    def kith_register_route(register):
        pass
"""

SPECS = """
    from kith.hookspecs import hookimpl, hookspec

    class Specs:
        @hookspec
        def kith_fake_call_matched(self, number_kind: str) -> str | None:
            '''A call was matched to a contact. Collecting. Sync only.'''

    @hookimpl
    def kith_add_hookspecs(plugin_manager):
        plugin_manager.add_hookspecs(Specs)
"""

LISTENER = """
    from kith.hookspecs import hookimpl

    @hookimpl
    def kith_fake_call_matched(number_kind):
        return "listener saw " + number_kind
"""


def loaded(manager: KithPluginManager) -> list[str]:
    return [info.name for info in manager.plugins()]


def skipped(manager: KithPluginManager) -> dict[str, tuple[str, str]]:
    return {entry.name: (entry.status, entry.reason) for entry in manager.skipped()}


def event_names(manager: KithPluginManager) -> set[str]:
    return {event_type.name for event_type in manager.event_types()}


# -- discovery -----------------------------------------------------------------------------------


def test_builtin_plugins_are_found_through_the_kith_entry_point_group():
    declared = {
        entry_point.name: entry_point.value
        for entry_point in importlib.metadata.entry_points(group="kith")
        if entry_point.dist is not None and entry_point.dist.name == "kith"
    }
    assert declared["privacy.encryption"] == "kith.privacy.encryption.plugin"
    assert declared["privacy.rights"] == "kith.privacy.rights.plugin"
    assert declared["privacy.requests"] == "kith.privacy.requests.plugin"
    assert declared["webhooks"] == "kith.plugins.webhooks"

    manager = load_plugin_manager({})
    infos = {info.name: info for info in manager.plugins()}
    for name, module in declared.items():
        assert infos[name].source == "built-in"
        assert infos[name].version == __version__
        assert infos[name].module == module
        # The very module the entry point names is what is registered: no side door.
        assert manager.get_plugin(name) is importlib.import_module(module)
    assert not [entry for entry in manager.skipped() if entry.source == "built-in"]


def test_a_third_party_distribution_is_found_and_recorded(site: Site):
    site.install("kith-fake", "1.2.3", {"fake": GOOD})
    manager = load_plugin_manager({})

    info = {info.name: info for info in manager.plugins()}["fake"]
    assert (info.version, info.source, info.hooks) == (
        "1.2.3",
        "kith-fake",
        ("kith_register_event_types",),
    )
    assert "fake.happened" in event_names(manager)
    # Built-in plugins come first, whatever the order of sys.path.
    assert loaded(manager).index("fake") > loaded(manager).index("webhooks")


PRIVACY = ("privacy.encryption", "privacy.requests", "privacy.rights")


def _installed_elsewhere() -> set[str]:
    """Plugins installed in this environment besides the built-ins and this test's fakes (the
    example plugin the suite installs, say): the lists must treat them like any other."""
    names = {entry.name for entry in importlib.metadata.entry_points(group="kith")}
    return names - {*PRIVACY, "webhooks", "fake", "other"}


def test_the_allow_list_loads_only_the_plugins_it_names(site: Site):
    site.install("kith-fake", "1.2.3", {"fake": GOOD, "other": OTHER})
    manager = load_plugin_manager({"KITH_PLUGINS": "fake, webhooks"})

    assert loaded(manager) == ["webhooks", "fake"]
    assert skipped(manager) == {
        **{name: ("disabled", "not in KITH_PLUGINS") for name in PRIVACY},
        "other": ("disabled", "not in KITH_PLUGINS"),
        **{name: ("disabled", "not in KITH_PLUGINS") for name in _installed_elsewhere()},
    }
    assert "other.happened" not in event_names(manager)


def test_the_deny_list_leaves_out_the_plugins_it_names(site: Site):
    site.install("kith-fake", "1.2.3", {"fake": GOOD, "other": OTHER})
    manager = load_plugin_manager({"KITH_DISABLE_PLUGINS": "other,webhooks"})

    elsewhere = _installed_elsewhere()
    assert [name for name in loaded(manager) if name not in elsewhere] == [*PRIVACY, "fake"]
    assert elsewhere <= set(loaded(manager))
    assert skipped(manager) == {
        "webhooks": ("disabled", "disabled by KITH_DISABLE_PLUGINS"),
        "other": ("disabled", "disabled by KITH_DISABLE_PLUGINS"),
    }


def test_a_name_the_selection_leaves_out_is_blocked(site: Site):
    site.install("kith-fake", "1.2.3", {"fake": GOOD})
    manager = load_plugin_manager({"KITH_DISABLE_PLUGINS": "fake"})
    assert manager.is_blocked("fake")
    # Code cannot register a plugin under that name either.
    stand_in = plugin(
        kith_register_event_types=lambda register: register(EventType("fake.other", "x"))
    )
    assert manager.register(stand_in, "fake") is None
    assert "fake" not in loaded(manager)
    assert not {"fake.happened", "fake.other"} & event_names(manager)


def test_a_name_two_distributions_declare_loads_neither(site: Site, logs: list[dict[str, Any]]):
    site.install("kith-fake", "1.2.3", {"fake": GOOD})
    site.install("kith-fork", "2.0", {"fake": OTHER})
    manager = load_plugin_manager({})

    assert "fake" not in loaded(manager)
    assert skipped(manager)["fake"] == (
        "failed",
        "the name 'fake' is declared by several distributions (kith-fake, kith-fork); "
        "none is loaded",
    )
    assert not {"fake.happened", "other.happened"} & event_names(manager)
    assert [entry["log_level"] for entry in logs if entry.get("plugin") == "fake"] == ["error"]


def test_a_name_selects_the_plugins_of_its_family(site: Site):
    site.install("kith-fake", "1.2.3", {"fake": GOOD})
    # "privacy" stands for the three privacy plugins, on either list.
    assert loaded(load_plugin_manager({"KITH_PLUGINS": "privacy"})) == list(PRIVACY)
    denied = load_plugin_manager({"KITH_DISABLE_PLUGINS": "privacy"})
    assert not set(PRIVACY) & set(loaded(denied)) and "fake" in loaded(denied)
    # A family is a prefix up to a dot, not any prefix.
    assert loaded(load_plugin_manager({"KITH_PLUGINS": "priv"})) == []


def test_a_plugin_that_needs_one_not_loaded_is_left_out(site: Site):
    needs_other = GOOD + '    KITH_REQUIRES = ("other",)\n'
    site.install("kith-fake", "1.2.3", {"fake": needs_other, "other": OTHER})
    assert {"fake", "other"} <= set(loaded(load_plugin_manager({})))
    manager = load_plugin_manager({"KITH_DISABLE_PLUGINS": "other"})
    assert skipped(manager)["fake"] == (
        "failed",
        "needs plugin 'other', which is not loaded (enable it, or disable 'fake' too)",
    )
    assert "fake.happened" not in event_names(manager)
    # The privacy plugins build on each other: without encryption, none of them runs.
    without_keys = load_plugin_manager({"KITH_DISABLE_PLUGINS": "privacy.encryption"})
    assert not set(PRIVACY) & set(loaded(without_keys))
    with pytest.raises(PluginError, match=r"needs plugin 'privacy\.encryption'"):
        load_plugin_manager(
            {"KITH_DISABLE_PLUGINS": "privacy.encryption", "KITH_STRICT_PLUGINS": "1"}
        )


def test_an_allow_list_naming_a_missing_plugin_is_reported():
    manager = load_plugin_manager({"KITH_PLUGINS": "privacy,telephonee"})
    assert loaded(manager) == list(PRIVACY)
    assert skipped(manager)["telephonee"] == (
        "failed",
        "listed in KITH_PLUGINS but not installed",
    )
    with pytest.raises(PluginError, match="'telephonee': listed in KITH_PLUGINS"):
        load_plugin_manager({"KITH_PLUGINS": "privacy,telephonee", "KITH_STRICT_PLUGINS": "1"})


def test_a_bad_switch_value_is_a_settings_error():
    with pytest.raises(SettingsError, match="KITH_STRICT_PLUGINS: expected 1 or 0"):
        load_plugin_manager({"KITH_STRICT_PLUGINS": "maybe"})


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (BROKEN_IMPORT, "import failed: ImportError: the fake SDK is not installed"),
        (
            BROKEN_REGISTER,
            "kith_register_subscribers raised RuntimeError: no credentials configured",
        ),
        (MISSPELT, "implements 'kith_register_route', which no hookspec declares"),
    ],
    ids=["import-raises", "register-hook-raises", "misspelt-hook"],
)
def test_a_broken_plugin_is_skipped_and_reported(
    site: Site, logs: list[dict[str, Any]], source: str, reason: str
):
    site.install("kith-broken", "0.1", {"broken": source})
    site.install("kith-fake", "1.2.3", {"fake": GOOD})
    manager = load_plugin_manager({})

    assert "broken" not in loaded(manager)
    assert manager.get_plugin("broken") is None
    assert "fake" in loaded(manager), "one broken plugin must not take others down"
    status, why = skipped(manager)["broken"]
    assert status == "failed"
    assert why.startswith(reason)
    # Nothing it registered before failing is kept.
    assert "broken.partial" not in event_names(manager)
    [logged] = [entry for entry in logs if entry.get("plugin") == "broken"]
    assert logged["log_level"] == "error"
    assert logged["source"] == "kith-broken"
    assert logged["error"].startswith(reason)


@pytest.mark.parametrize(
    "source", [BROKEN_IMPORT, BROKEN_REGISTER, MISSPELT], ids=["import", "register", "misspelt"]
)
def test_strict_mode_turns_a_broken_plugin_into_an_error_naming_it(site: Site, source: str):
    site.install("kith-broken", "0.1", {"broken": source})
    with pytest.raises(PluginError, match=r"KITH_STRICT_PLUGINS is on") as raised:
        load_plugin_manager({"KITH_STRICT_PLUGINS": "1"})
    assert raised.value.plugin == "broken"
    assert raised.value.detail.startswith("plugin 'broken': ")


def test_strict_mode_stops_kith_from_starting(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    site.install("kith-broken", "0.1", {"broken": BROKEN_IMPORT})
    # Start-up as a fresh process sees it: the switches in the environment.
    monkeypatch.setenv("KITH_STRICT_PLUGINS", "1")
    monkeypatch.setenv("KITH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KITH_LOG_FORMAT", "json")

    with pytest.raises(PluginError, match="plugin 'broken': import failed"):
        open_kith(settings_for(tmp_path / "home"))

    result = CliRunner().invoke(main, ["plugins", "list"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "kith: plugin 'broken': import failed: ImportError: the fake SDK is not installed "
        "(KITH_STRICT_PLUGINS is on)"
    )


def test_plugins_adding_hookspecs_load_before_those_implementing_them(site: Site):
    # "aaa" sorts first, yet it implements a hook that "zzz" declares.
    site.install("kith-telephony", "2.0", {"aaa_listener": LISTENER, "zzz_specs": SPECS})
    manager = load_plugin_manager({"KITH_STRICT_PLUGINS": "1"})

    assert {"aaa_listener", "zzz_specs"} <= set(loaded(manager))
    assert manager.hook.kith_fake_call_matched(number_kind="mobile") == ["listener saw mobile"]


def test_whoever_opens_kith_owns_its_plugin_manager(tmp_path: Path):
    settings = settings_for(tmp_path / "home")
    # No process-wide manager: each Kith opened without one loads its own.
    first, second = open_kith(settings), open_kith(settings)
    assert first.plugins is not None and second.plugins is not None
    assert first.plugins is not second.plugins
    assert loaded(first.plugins) == loaded(second.plugins)
    mine = load_plugin_manager({})
    assert open_kith(settings, plugin_manager=mine).plugins is mine


MANAGER_COMMAND = """
    import click
    from kith.console import cli_plugin_manager
    from kith.hookspecs import hookimpl

    @click.command("kithtest-manager")
    def manager_command():
        click.echo(id(cli_plugin_manager()))

    @hookimpl
    def kith_register_commands(register):
        register(manager_command)
"""


def test_one_kith_command_loads_the_plugins_once(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    site.install("kith-fake", "1.2.3", {"fake": MANAGER_COMMAND})
    monkeypatch.setenv("KITH_HOME", str(tmp_path))
    monkeypatch.setenv("KITH_LOG_FORMAT", "json")
    managers: list[KithPluginManager] = []

    def counting_load() -> KithPluginManager:
        managers.append(load_plugin_manager())
        return managers[-1]

    monkeypatch.setattr("kith.console.load_plugin_manager", counting_load)
    # Finding the plugin's command and running it share the invocation's manager.
    result = CliRunner().invoke(main, ["kithtest-manager"])
    assert result.exit_code == 0, result.output
    [manager] = managers
    assert result.stdout == f"{id(manager)}\n"
    assert "fake" in loaded(manager)

    listed = CliRunner().invoke(main, ["--help"])
    assert listed.exit_code == 0, listed.output
    assert "kithtest-manager" in listed.stdout
    assert len(managers) == 2, "each invocation loads its own, once"

    # A caller running the command in-process may hand it a manager of its own.
    mine = KithPluginManager()
    handed = CliRunner().invoke(main, ["kithtest-manager"], obj={"plugin_manager": mine})
    assert handed.exit_code != 0, "the command belongs to a plugin this manager lacks"
    assert len(managers) == 2


# -- tracing -------------------------------------------------------------------------------------


class ProtectorPlugin:
    @hookimpl
    def kith_field_protector(self, kith: Kith) -> PlaintextProtector:
        return PlaintextProtector()


def test_tracing_logs_every_hook_call_and_its_result(logs: list[dict[str, Any]]):
    manager = load_plugin_manager({"KITH_TRACE_PLUGINS": "1", "KITH_PLUGINS": "webhooks"})
    manager.register(ProtectorPlugin(), "protector")
    manager.field_protector(kith=None)  # type: ignore[arg-type]

    calls = [entry for entry in logs if entry["event"] == "plugin hook call"]
    results = [entry for entry in logs if entry["event"] == "plugin hook result"]
    assert {"hook": "kith_register_apps", "plugins": ["webhooks"]}.items() <= calls[0].items()
    protector_call = next(c for c in calls if c["hook"] == "kith_field_protector")
    assert protector_call["plugins"] == ["protector"]
    assert protector_call["arguments"] == ["kith"]
    protector_result = next(r for r in results if r["hook"] == "kith_field_protector")
    # The shape of the result, never its content: results can hold personal data.
    assert protector_result["result"] == "PlaintextProtector"
    assert protector_result["duration_ms"] >= 0
    assert len(calls) == len(results)


async def test_tracing_times_the_awaited_work_of_async_implementations(
    logs: list[dict[str, Any]],
):
    async def startup(kith: Kith) -> None:
        return None

    manager = KithPluginManager(PluginSelection(trace=True))
    manager.register(plugin(kith_startup=startup), "starter")
    await manager.startup(kith=None)  # type: ignore[arg-type]
    [awaited] = [entry for entry in logs if entry["event"] == "plugin hook awaited"]
    assert {"hook": "kith_startup", "plugin": "starter", "result": "NoneType"}.items() <= (
        awaited.items()
    )


def test_no_tracing_without_the_switch(logs: list[dict[str, Any]]):
    manager = load_plugin_manager({"KITH_PLUGINS": "webhooks"})
    manager.register(ProtectorPlugin(), "protector")
    manager.field_protector(kith=None)  # type: ignore[arg-type]
    assert not [entry for entry in logs if entry["event"].startswith("plugin hook")]


# -- validation of what plugins register ---------------------------------------------------------


def plugin(**hooks: Any) -> Any:
    """A plugin object whose hooks are the given functions."""
    methods = {name: staticmethod(hookimpl(function)) for name, function in hooks.items()}
    return type("TestPlugin", (), methods)()


class NoteSettings(msgspec.Struct, kw_only=True):
    greeting: str = "hello"
    limit: int = 10


class WebhookTarget(msgspec.Struct, kw_only=True):
    url: str
    timeout: float = 5.0


def _subscriber(name: str, events: tuple[str, ...] = ("contact.created",)) -> Subscriber:
    return Subscriber(name=name, events=events, handler=lambda kith, event: None)


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        (
            {"kith_register_routes": lambda register: register("/api/not-a-handler")},
            "kith_register_routes: expected a litestar route handler",
        ),
        (
            {"kith_register_commands": lambda register: register(print)},
            "kith_register_commands: expected a click command or group, got "
            "builtin_function_or_method",
        ),
        (
            {"kith_register_apps": lambda register: register("notes")},
            "kith_register_apps: expected a piccolo AppConfig, got str",
        ),
        (
            {"kith_register_event_types": lambda register: register(EventType("Fake Thing", "x"))},
            "event type 'Fake Thing' must be a dotted lower-case name",
        ),
        (
            {"kith_register_event_types": lambda register: register("fake.happened")},
            "expected kith.EventType, got str",
        ),
        (
            {
                "kith_register_event_types": lambda register: register(
                    EventType("contact.created", "Mine now.")
                )
            },
            "event type 'contact.created' is registered by Kith core",
        ),
        (
            {
                "kith_register_personal_fields": lambda register: register(
                    PersonalField(
                        table="kith_contact",
                        column="display_name",
                        category="identity",
                        purposes=("customer_relationship",),
                    )
                )
            },
            "personal field 'kith_contact.display_name' is registered by Kith core",
        ),
        (
            {
                "kith_register_apps": lambda register: register(
                    AppConfig(app_name="kith", migrations_folder_path=".", table_classes=[])
                )
            },
            "piccolo app 'kith' is registered by Kith core",
        ),
        (
            {"kith_register_subscribers": lambda register: register(_subscriber("x", ()))},
            "subscriber 'x' subscribes to no events",
        ),
        (
            {
                "kith_register_subscribers": lambda register: [
                    register(_subscriber("twice")),
                    register(_subscriber("twice")),
                ]
            },
            "subscriber 'twice' is registered twice by this plugin",
        ),
        (
            {"kith_register_settings": lambda register: register("Notes", NoteSettings)},
            "settings section name 'Notes' must be lower-case",
        ),
        (
            {"kith_register_settings": lambda register: register("notes", dict)},
            "settings section 'notes': expected a msgspec.Struct class",
        ),
        (
            {"kith_register_settings": lambda register: register(NoteSettings)},
            "kith_register_settings: register() takes 2 argument(s), got 1",
        ),
        (
            {"kith_register_purposes": lambda register: register({"name": "newsletter"})},
            "expected kith.subjects.Purpose, got dict",
        ),
        (
            {"kith_register_recipients": lambda register: register("Twilio")},
            "expected kith.subjects.Recipient, got str",
        ),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_what_a_plugin_registers_is_validated_naming_the_plugin(
    hooks: dict[str, Any], message: str
):
    manager = KithPluginManager()
    with pytest.raises(PluginError, match=re.escape(message)) as raised:
        manager.register(plugin(**hooks), "sloppy")
    assert raised.value.plugin == "sloppy"
    assert str(raised.value).startswith("plugin 'sloppy': ")
    # A refused plugin is not half there.
    assert manager.get_plugin("sloppy") is None
    assert not manager.subscribers()


def test_two_plugins_cannot_register_the_same_name():
    manager = KithPluginManager()
    manager.register(
        plugin(kith_register_subscribers=lambda register: register(_subscriber("sync"))), "a"
    )
    with pytest.raises(PluginError, match="subscriber 'sync' is registered by plugin 'a'"):
        manager.register(
            plugin(kith_register_subscribers=lambda register: register(_subscriber("sync"))), "b"
        )
    manager.unregister(name="a")
    manager.register(
        plugin(kith_register_subscribers=lambda register: register(_subscriber("sync"))), "b"
    )
    assert [s.name for s in manager.subscribers()] == ["sync"]


def test_a_name_or_an_object_registers_once():
    manager = KithPluginManager()
    first = ProtectorPlugin()
    manager.register(first, "protector")
    with pytest.raises(PluginError, match="'protector': a plugin of this name is already"):
        manager.register(ProtectorPlugin(), "protector")
    with pytest.raises(PluginError, match="'again': already registered as 'protector'"):
        manager.register(first, "again")
    assert loaded(manager) == ["protector"]


def test_a_plugin_whose_hookspecs_fail_is_not_left_half_registered():
    def add_hookspecs(plugin_manager: KithPluginManager) -> None:
        raise RuntimeError("spec module missing")

    manager = KithPluginManager()
    with pytest.raises(PluginError, match="registering failed: RuntimeError: spec module missing"):
        manager.register(
            plugin(kith_add_hookspecs=add_hookspecs, kith_field_protector=lambda kith: 1), "half"
        )
    assert manager.get_plugin("half") is None
    assert manager.field_protector(kith=None) is None  # type: ignore[arg-type]


def test_a_shared_purpose_may_be_declared_twice_identically_but_not_differently():
    newsletter = Purpose(name="newsletter", description="News by email.", lawful_basis="consent")
    twilio = Recipient(name="Twilio", description="Telephony provider.", country="US")
    manager = KithPluginManager()
    manager.register(
        plugin(
            kith_register_purposes=lambda register: register(newsletter),
            kith_register_recipients=lambda register: register(twilio),
        ),
        "forms",
    )
    manager.register(plugin(kith_register_purposes=lambda register: register(newsletter)), "mail")
    assert manager.purposes() == [
        *CORE_PURPOSES,  # core's own (customer_relationship), then the plugins'
        msgspec.structs.replace(newsletter, owner="forms"),
    ]
    # A plugin that leaves ``owner`` at its default is recorded as the owner.
    assert manager.recipients()[0].owner == "forms"
    different = msgspec.structs.replace(newsletter, lawful_basis="legitimate_interests")
    with pytest.raises(PluginError, match="purpose 'newsletter' is registered by plugin"):
        manager.register(plugin(kith_register_purposes=lambda register: register(different)), "x")
    with pytest.raises(PluginError, match="recipient 'Twilio' is registered by plugin"):
        manager.register(plugin(kith_register_recipients=lambda register: register(twilio)), "y")


# -- sync, async and firstresult -----------------------------------------------------------------


class AsyncProtector:
    @hookimpl
    async def kith_field_protector(self, kith: Kith) -> PlaintextProtector:
        return PlaintextProtector()


class AsyncRoutes:
    @hookimpl
    async def kith_register_routes(self, register: Any) -> None:
        register(ping)


def test_an_async_firstresult_implementation_is_refused():
    manager = KithPluginManager()
    with pytest.raises(PluginError, match="firstresult hook, so it cannot be async") as raised:
        manager.register(AsyncProtector(), "slow-protector")
    assert raised.value.plugin == "slow-protector"
    assert "AsyncProtector.kith_field_protector is an async def" in str(raised.value)
    assert manager.field_protector(kith=None) is None  # type: ignore[arg-type]


def test_a_firstresult_answer_that_is_awaitable_is_refused():
    async def later() -> PlaintextProtector:
        return PlaintextProtector()

    manager = KithPluginManager()
    manager.register(plugin(kith_field_protector=lambda kith: later()), "sneaky")
    with pytest.raises(PluginError, match="'sneaky': kith_field_protector returned an awaitable"):
        manager.field_protector(kith=None)  # type: ignore[arg-type]


def test_an_async_implementation_of_a_sync_hook_is_refused():
    manager = KithPluginManager()
    with pytest.raises(PluginError, match="kith_register_routes is called synchronously"):
        manager.register(AsyncRoutes(), "async-routes")


def test_a_firstresult_hookspec_cannot_be_async():
    class Specs:
        @hookspec(firstresult=True)
        @may_be_async
        def kith_fake_pick(self) -> str | None:
            """Pick one. First result wins. May be async."""

    with pytest.raises(ValueError, match="firstresult and may_be_async"):
        KithPluginManager().add_hookspecs(Specs)


def test_firstresult_takes_the_first_answer_that_is_not_none():
    manager = KithPluginManager()
    manager.register(ProtectorPlugin(), "protector")
    manager.register(plugin(kith_field_protector=lambda kith: None), "abstains")
    result = manager.call_first("kith_field_protector", kith=None)
    assert result is not None
    assert result.plugin == "protector"
    assert isinstance(result.value, PlaintextProtector)


async def test_a_may_be_async_hook_is_awaited_and_each_answer_names_its_plugin():
    subject = uuid.uuid4()

    class Sync:
        @hookimpl
        def kith_check_processing(self, kith: Kith, contact_id: uuid.UUID, activity: str) -> str:
            return f"sync refuses {activity} for {contact_id}"

    class Async:
        @hookimpl
        async def kith_check_processing(
            self, kith: Kith, contact_id: uuid.UUID, activity: str
        ) -> str:
            return f"async refuses {activity} for {contact_id}"

    class Nothing:
        @hookimpl
        async def kith_check_processing(
            self, kith: Kith, contact_id: uuid.UUID, activity: str
        ) -> None:
            return None

    class Failing:
        @hookimpl
        async def kith_check_processing(
            self, kith: Kith, contact_id: uuid.UUID, activity: str
        ) -> None:
            raise LookupError("the provider is down")

    manager = KithPluginManager()
    for name, obj in [("sync", Sync()), ("async", Async()), ("nothing", Nothing())]:
        manager.register(obj, name)
    results = await manager.call_async(
        "kith_check_processing", kith=None, contact_id=subject, activity="x"
    )
    assert {(r.plugin, r.value) for r in results} == {
        ("sync", f"sync refuses x for {subject}"),
        ("async", f"async refuses x for {subject}"),
    }

    manager.register(Failing(), "failing")
    with pytest.raises(LookupError) as raised:
        await manager.call_async(
            "kith_check_processing", kith=None, contact_id=subject, activity="x"
        )
    assert "in kith_check_processing of plugin 'failing'" in raised.value.__notes__
    collected = await manager.call_async(
        "kith_check_processing", collect_errors=True, kith=None, contact_id=subject, activity="x"
    )
    [failure] = [result for result in collected if result.error is not None]
    assert failure == HookResult("failing", None, failure.error)
    assert isinstance(failure.error, LookupError)
    assert len(collected) == 3, "one failing plugin does not stop the others"

    # Who implements a hook is remembered between calls, and forgotten when a plugin leaves.
    manager.unregister(name="failing")
    after = await manager.call_async(
        "kith_check_processing", kith=None, contact_id=subject, activity="x"
    )
    assert {result.plugin for result in after} == {"sync", "async"}
    for name in ("sync", "async", "nothing"):
        manager.unregister(name=name)
    assert not manager.implements("kith_check_processing")
    assert (
        await manager.call_async(
            "kith_check_processing", kith=None, contact_id=subject, activity="x"
        )
        == []
    )
    # Core answers for its own data through the subject hooks, last, and is no plugin.
    assert manager.implementers("kith_subject_erase") == ["kith.mail", "kith"]
    assert "kith" not in loaded(manager)


# -- kith_add_hookspecs ----------------------------------------------------------------------------


class TelephonySpecs:
    @hookspec
    def kith_fake_call_ended(self, seconds: int) -> str | None:
        """A call ended. Collecting. Sync only."""


class TelephonyPlugin:
    @hookimpl
    def kith_add_hookspecs(self, plugin_manager: KithPluginManager) -> None:
        plugin_manager.add_hookspecs(TelephonySpecs)


class CallLogger:
    @hookimpl
    def kith_fake_call_ended(self, seconds: int) -> str:
        return f"logged {seconds}s"


class AsyncCallLogger:
    @hookimpl
    async def kith_fake_call_ended(self, seconds: int) -> str:
        return "never awaited"


def test_a_plugin_defines_a_hook_another_implements_even_when_that_one_registers_first():
    manager = KithPluginManager()
    manager.register(CallLogger(), "call-logger")
    # Until the declaring plugin is there, the hook is unknown: opening Kith would say so.
    with pytest.raises(PluginError, match="'call-logger': implements 'kith_fake_call_ended'"):
        manager.check_hooks()

    manager.register(TelephonyPlugin(), "telephony")
    manager.check_hooks()
    assert manager.hook.kith_fake_call_ended(seconds=42) == ["logged 42s"]
    # A plugin registered after the declaring one is checked at once.
    manager.register(plugin(kith_fake_call_ended=lambda seconds: "late"), "late")
    assert manager.hook.kith_fake_call_ended(seconds=1) == ["late", "logged 1s"]
    assert "kith_fake_call_ended" in {info.name: info for info in manager.plugins()}["late"].hooks


def test_an_implementation_registered_before_its_hookspec_is_checked_when_it_arrives():
    manager = KithPluginManager()
    manager.register(AsyncCallLogger(), "async-logger")
    with pytest.raises(PluginError, match="kith_fake_call_ended is called synchronously") as raised:
        manager.register(TelephonyPlugin(), "telephony")
    assert raised.value.plugin == "async-logger"


# -- a plugin registered for one test: database, HTTP, CLI, settings, personal fields -----------


class Note(Table, tablename="kithtest_note"):
    id = UUID(primary_key=True)
    body = Varchar(length=200, default="")


NOTES_MIGRATION = """
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import UUID, Varchar

ID = "2026-11-22T22:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "notes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kithtest_notes", description=DESCRIPTION)
    manager.add_table(class_name="Note", tablename="kithtest_note", schema=None, columns=None)
    manager.add_column(
        table_class_name="Note",
        tablename="kithtest_note",
        column_name="id",
        db_column_name="id",
        column_class_name="UUID",
        column_class=UUID,
        params={"primary_key": True, "null": False},
        schema=None,
    )
    manager.add_column(
        table_class_name="Note",
        tablename="kithtest_note",
        column_name="body",
        db_column_name="body",
        column_class_name="Varchar",
        column_class=Varchar,
        params={"length": 200, "default": ""},
        schema=None,
    )
    return manager
"""


@pytest.fixture(scope="session")
def notes_migrations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("notes-migrations")
    # piccolo imports migration files as top-level modules, so the name must be unique.
    (folder / f"kithtest_notes_{uuid.uuid4().hex[:8]}.py").write_text(NOTES_MIGRATION)
    return folder


@get("/api/kithtest/notes", opt=roles(Role.AGENT))
async def count_notes(state: State) -> dict[str, Any]:
    return {
        "count": await Note.count(),
        "greeting": state.kith.settings.parsed("kithtest_notes", NoteSettings).greeting,
    }


@get("/api/kithtest/ping", opt=public())
async def ping() -> dict[str, str]:
    return {"pong": "from a plugin"}


@click.command("kithtest-notes")
@click.argument("body", required=False)
def notes_command(body: str | None) -> None:
    """Add a note (when BODY is given) and say how many there are."""

    async def work(kith: Kith) -> int:
        if body:
            await Note.insert(Note(body=body))
        return int(await Note.count())

    click.echo(f"{run_with_kith(work)} note(s)")


class NotesPlugin:
    """Everything a plugin can add, in one object."""

    def __init__(self, migrations: Path) -> None:
        self.app = AppConfig(
            app_name="kithtest_notes", migrations_folder_path=migrations, table_classes=[Note]
        )
        self.notes_at_startup: list[int] = []
        self.received: list[Event] = []

    @hookimpl
    def kith_register_apps(self, register: Any) -> None:
        register(self.app)

    @hookimpl
    def kith_register_routes(self, register: Any) -> None:
        register(count_notes)

    @hookimpl
    def kith_register_commands(self, register: Any) -> None:
        register(notes_command)

    @hookimpl
    def kith_register_settings(self, register: Any) -> None:
        register("kithtest_notes", NoteSettings)

    @hookimpl
    def kith_register_personal_fields(self, register: Any) -> None:
        register(
            PersonalField(
                table="kithtest_note",
                column="body",
                category="communications",
                purposes=("customer_relationship",),
                description="What the note says",
            )
        )

    @hookimpl
    def kith_register_event_types(self, register: Any) -> None:
        register(EventType("note.added", "A note was added.", ("note_id",)))

    @hookimpl
    def kith_register_subscribers(self, register: Any) -> None:
        register(Subscriber(name="notes", events=("contact.*",), handler=self.receive))

    def receive(self, kith: Kith, event: Event) -> None:
        self.received.append(event)

    @hookimpl
    async def kith_startup(self, kith: Kith) -> None:
        # A query on the plugin's own table: it exists before any startup hook runs.
        self.notes_at_startup.append(int(await Note.count()))


@pytest.fixture
def notes_plugin(notes_migrations: Path) -> NotesPlugin:
    return NotesPlugin(notes_migrations)


class TestAPluginRegisteredForOneTest:
    @pytest.fixture
    def kith_plugins(self, notes_plugin: NotesPlugin) -> list[Any]:
        return [("notes", notes_plugin)]

    async def test_its_route_answers_over_http(self, kith_client: Any, kith_auth: Any, kith: Kith):
        await Note.insert(Note(body="first"))
        response = await kith_client.get("/api/kithtest/notes", headers=await kith_auth(Role.AGENT))
        assert response.status_code == 200, response.text
        assert response.json() == {"count": 1, "greeting": "hello"}
        # Kith's guard covers plugin routes like its own.
        assert (await kith_client.get("/api/kithtest/notes")).status_code == 401

    async def test_its_app_is_migrated_before_its_startup_hook_runs(
        self, kith: Kith, notes_plugin: NotesPlugin
    ):
        states = {state.app_name: state for state in await kith.database.migration_states()}
        assert states["kithtest_notes"].applied == ["2026-11-22T22:40:00:000000"]
        assert not states["kithtest_notes"].pending
        assert notes_plugin.notes_at_startup == [0]

    async def test_what_it_declares_reaches_kith(self, kith: Kith, notes_plugin: NotesPlugin):
        assert kith.plugins is not None
        assert "notes" in loaded(kith.plugins)
        body = next(f for f in kith.personal_fields if f.key == "kithtest_note.body")
        assert body.owner == "notes"
        assert {"kith_contact.display_name", "kithtest_note.body"} <= {
            f.key for f in kith.personal_fields
        }
        assert kith.event_types["note.added"].payload_keys == ("note_id",)
        assert "contact.created" in kith.event_types
        assert [s.name for s in kith.subscribers if s.name == "notes"] == ["notes"]
        assert kith.settings.parsed("kithtest_notes", NoteSettings) == NoteSettings()

    def test_its_command_runs_after_kith_migrate_creates_its_table(
        self, kith_settings: Settings, kith_cli: Any
    ):
        env = {
            "KITH_HOME": str(kith_settings.home),
            "KITH_DATABASE_URL": kith_settings.database_url,
            "KITH_LOG_FORMAT": "json",
        }
        assert "kithtest-notes" in kith_cli("--help", env=env).stdout

        refused = kith_cli("kithtest-notes", env=env)
        assert refused.exit_code == 1
        assert "kithtest_notes (1)" in refused.stderr
        assert "kith migrate" in refused.stderr

        migrated = kith_cli("migrate", env=env)
        assert migrated.exit_code == 0, migrated.output
        assert "kithtest_notes" in migrated.stdout

        added = kith_cli("kithtest-notes", "call back on Monday", env=env)
        assert added.exit_code == 0, added.output
        assert added.stdout == "1 note(s)\n"


@pytest.mark.kith_plugins(plugin(kith_register_routes=lambda register: register(ping)))
async def test_the_marker_registers_a_plugin_for_one_test(kith_client: Any, kith: Kith):
    response = await kith_client.get("/api/kithtest/ping")
    assert response.status_code == 200
    assert response.json() == {"pong": "from a plugin"}


async def test_without_the_marker_the_plugin_is_gone(kith_client: Any):
    assert (await kith_client.get("/api/kithtest/ping")).status_code == 404


@pytest.mark.kith_plugins(("protector", ProtectorPlugin()))
async def test_a_plugins_field_protector_becomes_kiths(kith: Kith):
    assert kith.plugins is not None
    assert kith.plugins.call_first("kith_field_protector", kith=kith) is not None
    assert isinstance(kith.protector, PlaintextProtector)


def test_register_plugin_reaches_the_kith_command(
    register_plugin: Any, kith_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    @click.command("kithtest-hello")
    def hello() -> None:
        click.echo("hello from a plugin")

    register_plugin(plugin(kith_register_commands=lambda register: register(hello)), "hello")
    monkeypatch.setenv("KITH_HOME", str(tmp_path))
    result = kith_cli("kithtest-hello")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello from a plugin\n"


async def test_register_plugin_after_kith_opened_is_refused(kith: Kith, register_plugin: Any):
    with pytest.raises(RuntimeError, match="use the kith_plugins fixture or marker"):
        register_plugin(ProtectorPlugin(), "too-late")


def test_a_plugin_command_cannot_take_a_builtin_name(
    register_plugin: Any, kith_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    @click.command("migrate")
    def fake_migrate() -> None:
        """Not the real migrate."""

    register_plugin(plugin(kith_register_commands=lambda register: register(fake_migrate)), "x")
    monkeypatch.setenv("KITH_HOME", str(tmp_path))
    monkeypatch.setenv("KITH_LOG_FORMAT", "json")
    result = kith_cli("--help")
    assert result.exit_code == 0
    assert "Not the real migrate" not in result.stdout
    [warning] = [json.loads(line) for line in result.stderr.splitlines() if "built-in" in line]
    assert {"plugin": "x", "command": "migrate", "level": "warning"}.items() <= warning.items()


# -- settings sections -----------------------------------------------------------------------------


def _settings(tmp_path: Path, toml: str) -> Settings:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "kith.toml").write_text(textwrap.dedent(toml), encoding="utf-8")
    return settings_for(home)


def _manager_with_sections() -> KithPluginManager:
    manager = KithPluginManager()
    manager.register(
        plugin(
            kith_register_settings=lambda register: [
                register("kithtest_notes", NoteSettings),
                register("kithtest_hook", WebhookTarget),
            ]
        ),
        "sections",
    )
    return manager


def test_a_settings_section_is_validated_into_its_struct(tmp_path: Path):
    settings = _settings(
        tmp_path,
        """
        [kithtest_notes]
        limit = 3

        [kithtest_hook]
        url = "https://example.test/hook"
        """,
    )
    manager = _manager_with_sections()
    manager.check_settings(settings)
    kith = open_kith(settings, plugin_manager=manager)
    assert kith.settings.parsed("kithtest_notes", NoteSettings) == NoteSettings(limit=3)
    hook = kith.settings.parsed("kithtest_hook", WebhookTarget)
    assert hook == WebhookTarget(url="https://example.test/hook")


def test_plugins_of_a_family_share_a_section_each_with_its_keys(tmp_path: Path):
    class Limits(msgspec.Struct, kw_only=True):
        limit: int = 10

    class Greetings(msgspec.Struct, kw_only=True):
        greeting: str = "hello"

    manager = KithPluginManager()
    for name, schema in (("shared.limits", Limits), ("shared.greetings", Greetings)):
        manager.register(
            plugin(kith_register_settings=lambda register, s=schema: register("kithtest", s)),
            name,
        )
    settings = _settings(tmp_path, "[kithtest]\nlimit = 3\ngreeting = 'hi'\n")
    manager.check_settings(settings)
    assert settings.parsed("kithtest", Limits) == Limits(limit=3)
    assert settings.parsed("kithtest", Greetings) == Greetings(greeting="hi")
    # A key neither declares is refused; a variable overrides one key.
    with pytest.raises(SettingsError, match=r"^\[kithtest\] limt: unknown setting"):
        manager.check_settings(_settings(tmp_path, "[kithtest]\nlimt = 3\n"))
    overridden = dataclasses.replace(settings, environment={"KITH_KITHTEST_LIMIT": "7"})
    assert overridden.parsed("kithtest", Limits) == Limits(limit=7)
    # Two plugins may not both declare one key, and only a family shares a section.
    with pytest.raises(PluginError, match=r"both declare \[kithtest\] limit"):
        manager.register(
            plugin(kith_register_settings=lambda register: register("kithtest", Limits)),
            "shared.third",
        )

    class Colours(msgspec.Struct, kw_only=True):
        colour: str = "blue"

    with pytest.raises(PluginError, match="section 'kithtest' is registered by plugin 'shared"):
        manager.register(
            plugin(kith_register_settings=lambda register: register("kithtest", Colours)),
            "outsider",
        )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[kithtest_notes]\nlimit = "many"\n[kithtest_hook]\nurl = "u"\n',
            "[kithtest_notes] limit: Expected `int`, got `str`",
        ),
        (
            "[kithtest_notes]\nlimt = 3\n[kithtest_hook]\nurl = 'u'\n",
            "[kithtest_notes] limt: unknown setting (known: greeting, limit)",
        ),
        ("[kithtest_hook]\ntimeout = 2.5\n", "[kithtest_hook] url: required setting is missing"),
        ("kithtest_notes = 5\n", "[kithtest_notes] in kith.toml must be a table, got int"),
    ],
    ids=["wrong-type", "unknown-key", "missing", "not-a-table"],
)
def test_a_bad_settings_value_is_one_readable_error(tmp_path: Path, toml: str, message: str):
    settings = _settings(tmp_path, toml)
    with pytest.raises(SettingsError) as raised:
        open_kith(settings, plugin_manager=_manager_with_sections())
    assert str(raised.value) == message


def test_a_section_nobody_declares_is_reported(tmp_path: Path, logs: list[dict[str, Any]]):
    settings = _settings(tmp_path, "[kithtest_hook]\nurl = 'u'\n[kithtest_nots]\nlimit = 1\n")
    _manager_with_sections().check_settings(settings)
    assert [entry["section"] for entry in logs if entry["log_level"] == "warning"] == [
        "kithtest_nots"
    ]


# -- kith plugins list -----------------------------------------------------------------------------


def _rows(output: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()]


def test_kith_plugins_list_shows_loaded_disabled_and_failed_plugins(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    site.install("kith-fake", "1.2.3", {"fake": GOOD})
    site.install("kith-broken", "0.1", {"broken": BROKEN_IMPORT})
    monkeypatch.setenv("KITH_HOME", str(tmp_path))
    monkeypatch.setenv("KITH_LOG_FORMAT", "json")
    monkeypatch.setenv("KITH_DISABLE_PLUGINS", "webhooks")
    runner = CliRunner()
    listed = runner.invoke(main, ["plugins", "list"])
    with_hooks = runner.invoke(main, ["plugins", "list", "--hooks"])
    as_json = runner.invoke(main, ["plugins", "list", "--hooks", "--json"])

    assert listed.exit_code == 0, listed.output
    rows = _rows(listed.stdout)
    assert rows[0] == ["NAME", "VERSION", "SOURCE", "STATUS"]
    for name in PRIVACY:
        assert [name, __version__, "built-in", "loaded"] in rows
    assert ["fake", "1.2.3", "kith-fake", "loaded"] in rows
    assert [
        "webhooks",
        __version__,
        "built-in",
        "disabled: disabled by KITH_DISABLE_PLUGINS",
    ] in rows
    assert [
        "broken",
        "0.1",
        "kith-broken",
        "failed: import failed: ImportError: the fake SDK is not installed",
    ] in rows

    hook_rows = _rows(with_hooks.stdout)
    assert hook_rows[0] == ["NAME", "VERSION", "SOURCE", "STATUS", "HOOKS"]
    assert ["fake", "1.2.3", "kith-fake", "loaded", "kith_register_event_types"] in hook_rows

    entries = {entry["name"]: entry for entry in json.loads(as_json.stdout)}
    assert entries["fake"] == {
        "name": "fake",
        "version": "1.2.3",
        "source": "kith-fake",
        "status": "loaded",
        "reason": None,
        "hooks": ["kith_register_event_types"],
    }
    assert entries["broken"]["status"] == "failed"
