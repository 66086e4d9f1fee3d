"""Kith's plugin manager: discovery, selection, validation, and what the plugins register.

Every plugin, Kith's own included, is found through the ``kith`` entry-point group, so a
built-in plugin gets no privilege a third-party one lacks. Environment variables choose:

* ``KITH_PLUGINS`` — comma-separated allow-list of entry-point names (unset: all of them);
* ``KITH_DISABLE_PLUGINS`` — comma-separated deny-list;
* ``KITH_STRICT_PLUGINS=1`` — a plugin that fails to load stops start-up instead of being
  logged and skipped (for development and CI);
* ``KITH_TRACE_PLUGINS=1`` — log every hook call and the shape of its result.

Register-style hooks are called once per plugin when it registers, so every thing a plugin adds
is validated then, and an error names the plugin that caused it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import inspect
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import click
import msgspec
import pluggy
from kith import hookspecs
from kith.errors import KithError
from kith.events import CORE_EVENT_TYPES, EventType
from kith.logs import get_logger
from kith.personal import CORE_PERSONAL_FIELDS, CORE_PURPOSES, PersonalField
from kith.settings import Settings, SettingsError, check_sections
from kith.subjects import Purpose, Recipient, Subscriber
from piccolo.conf.apps import AppConfig

if TYPE_CHECKING:
    from kith.protection import FieldProtector
    from kith.runtime import Kith

ENTRY_POINT_GROUP = "kith"
BUILTIN_DISTRIBUTION = "kith"
BUILTIN = "built-in"
RUNTIME = "runtime"
CORE = "kith"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_SECTION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def _log() -> Any:
    return get_logger("kith.plugins")


class PluginError(KithError):
    """A plugin cannot be used; the message starts with its name."""

    title = "Plugin error"

    def __init__(self, plugin: str, detail: str) -> None:
        super().__init__(f"plugin {plugin!r}: {detail}", plugin=plugin)
        self.plugin = plugin


@dataclass(frozen=True)
class PluginSelection:
    """Which plugins to load and how, usually read from the environment."""

    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    strict: bool = False
    trace: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PluginSelection:
        env = os.environ if env is None else env
        allow = _names(env.get("KITH_PLUGINS", ""))
        return cls(
            # An empty KITH_PLUGINS means "not set", not "no plugins": an exported but empty
            # variable must not silently switch the privacy plugin off.
            allow=frozenset(allow) if allow else None,
            deny=frozenset(_names(env.get("KITH_DISABLE_PLUGINS", ""))),
            strict=_flag(env, "KITH_STRICT_PLUGINS"),
            trace=_flag(env, "KITH_TRACE_PLUGINS"),
        )

    def why_not(self, name: str) -> str | None:
        """Why the plugin ``name`` is not to be loaded, or None when it is. A name also
        stands for its family: ``privacy`` selects ``privacy.encryption``, ``privacy.rights``..."""
        if _listed(name, self.deny):
            return "disabled by KITH_DISABLE_PLUGINS"
        if self.allow is not None and not _listed(name, self.allow):
            return "not in KITH_PLUGINS"
        return None


def _listed(name: str, names: frozenset[str]) -> bool:
    return name in names or any(name.startswith(f"{listed}.") for listed in names)


def _listed_family(name: str, found: Iterable[str]) -> bool:
    return any(member.startswith(f"{name}.") for member in found)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}: expected 1 or 0 (true or false), got {env[name]!r}")


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin as ``kith plugins list`` shows it."""

    name: str
    version: str | None
    source: str
    hooks: tuple[str, ...]
    module: str | None = None


@dataclass(frozen=True)
class SkippedPlugin:
    """An installed plugin that is not loaded: it failed, or the selection left it out."""

    name: str
    version: str | None
    source: str
    status: Literal["failed", "disabled"]
    reason: str


@dataclass(frozen=True)
class HookResult:
    """What one plugin's implementation answered (``error`` when it raised and errors were
    collected instead of raised)."""

    plugin: str
    value: Any
    error: BaseException | None = None


# -- what register-style hooks collect -------------------------------------------------------


def _type_name(value: Any) -> str:
    return value.__name__ if isinstance(value, type) else type(value).__name__


def _expect(kind: type | tuple[type, ...], what: str) -> Callable[[Any], str | None]:
    def check(item: Any) -> str | None:
        return None if isinstance(item, kind) else f"expected {what}, got {_type_name(item)}"

    return check


def _check_route(item: Any) -> str | None:
    # litestar is imported only when a plugin registers routes: the CLI does not need it.
    from litestar import Controller, Router
    from litestar.handlers import BaseRouteHandler

    if isinstance(item, BaseRouteHandler | Router):
        return None
    if isinstance(item, type) and issubclass(item, Controller):
        return None
    return (
        "expected a litestar route handler (@get, @post...), a Controller class or a Router, "
        f"got {_type_name(item)}"
    )


def _check_command(item: Any) -> str | None:
    if not isinstance(item, click.Command):
        return f"expected a click command or group, got {_type_name(item)}"
    if not item.name:
        return "a click command needs a name"
    return None


def _check_event_type(item: Any) -> str | None:
    if not isinstance(item, EventType):
        return f"expected kith.EventType, got {_type_name(item)}"
    if not _EVENT_NAME.match(item.name):
        return f"event type {item.name!r} must be a dotted lower-case name like 'call.missed'"
    return None


def _check_subscriber(item: Any) -> str | None:
    if not isinstance(item, Subscriber):
        return f"expected kith.subjects.Subscriber, got {_type_name(item)}"
    if not item.name:
        return "a subscriber needs a name"
    if not item.events:
        return f"subscriber {item.name!r} subscribes to no events"
    if not callable(item.handler):
        return f"subscriber {item.name!r}: its handler is not callable"
    if item.max_attempts < 1:
        return f"subscriber {item.name!r}: max_attempts must be at least 1"
    return None


def _disjoint_sections(existing: Any, new: Any) -> str | None:
    from kith.settings import section_keys

    shared = sorted(section_keys(existing[1]) & section_keys(new[1]))
    if shared:
        return f"both declare [{new[0]}] {shared[0]}"
    return None


def _mergeable_groups(existing: Any, new: Any) -> str | None:
    if not (isinstance(existing, click.Group) and isinstance(new, click.Group)):
        return "only command groups of the same name are joined"
    shared = sorted(set(existing.commands) & set(new.commands))
    if shared:
        return f"both have a command {new.name} {shared[0]}"
    return None


def _check_settings(item: Any) -> str | None:
    name, schema = item
    if not isinstance(name, str) or not _SECTION_NAME.match(name):
        return f"settings section name {name!r} must be lower-case letters, digits and _"
    if not (isinstance(schema, type) and issubclass(schema, msgspec.Struct)):
        return f"settings section {name!r}: expected a msgspec.Struct class, got {schema!r}"
    return None


@dataclass(frozen=True)
class _Kind:
    """One register-style hook: what it accepts and how duplicates are recognised."""

    key: str
    hook: str
    label: str
    check: Callable[[Any], str | None]
    name: Callable[[Any], str] | None = None
    core: Callable[[], Iterable[Any]] = lambda: ()
    arity: int = 1
    # Plugins that leave ``owner`` at its default are recorded as its owner.
    adopt_owner: bool = False
    # Several plugins may declare the same thing identically (a shared purpose, say).
    identical_ok: bool = False
    # Plugins of one family may share one (a settings section, a command group): when two
    # share a name, ``merge(existing, new)`` says why they cannot be joined, or None.
    merge: Callable[[Any, Any], str | None] | None = None


def _core_apps() -> list[AppConfig]:
    from kith.piccolo_app import APP_CONFIG

    return [APP_CONFIG]


KINDS: tuple[_Kind, ...] = (
    _Kind(
        "apps",
        "kith_register_apps",
        "piccolo app",
        _expect(AppConfig, "a piccolo AppConfig"),
        name=lambda app: str(app.app_name),
        core=_core_apps,
    ),
    _Kind("routes", "kith_register_routes", "route", _check_route),
    _Kind(
        "commands",
        "kith_register_commands",
        "command",
        _check_command,
        name=lambda command: str(command.name),
        merge=_mergeable_groups,
    ),
    _Kind(
        "event_types",
        "kith_register_event_types",
        "event type",
        _check_event_type,
        name=lambda event_type: str(event_type.name),
        core=lambda: CORE_EVENT_TYPES,
    ),
    _Kind(
        "subscribers",
        "kith_register_subscribers",
        "subscriber",
        _check_subscriber,
        name=lambda subscriber: str(subscriber.name),
    ),
    _Kind(
        "settings",
        "kith_register_settings",
        "settings section",
        _check_settings,
        name=lambda item: str(item[0]),
        arity=2,
        merge=_disjoint_sections,
    ),
    _Kind(
        "personal_fields",
        "kith_register_personal_fields",
        "personal field",
        _expect(PersonalField, "kith.personal.PersonalField"),
        name=lambda personal: str(personal.key),
        core=lambda: CORE_PERSONAL_FIELDS,
        adopt_owner=True,
    ),
    _Kind(
        "purposes",
        "kith_register_purposes",
        "purpose",
        _expect(Purpose, "kith.subjects.Purpose"),
        name=lambda purpose: str(purpose.name),
        core=lambda: CORE_PURPOSES,
        adopt_owner=True,
        identical_ok=True,
    ),
    _Kind(
        "recipients",
        "kith_register_recipients",
        "recipient",
        _expect(Recipient, "kith.subjects.Recipient"),
        name=lambda recipient: str(recipient.name),
        adopt_owner=True,
    ),
)
_KINDS_BY_KEY = {kind.key: kind for kind in KINDS}


def _without_owner(item: Any) -> Any:
    return msgspec.structs.replace(item, owner="") if isinstance(item, msgspec.Struct) else item


@dataclass
class _Loaded:
    plugin: Any
    version: str | None
    source: str
    module: str | None
    contributions: dict[str, list[Any]] = field(default_factory=dict)


# -- tracing -----------------------------------------------------------------------------------


def _shape(value: Any) -> str:
    """A value's type and size, never its content: hook arguments and results can carry
    personal data, and logs must not."""
    if isinstance(value, list | tuple | set | frozenset | dict):
        if not value:
            return f"empty {type(value).__name__}"
        kinds = sorted({type(item).__name__ for item in value})
        return f"{type(value).__name__} of {len(value)} ({', '.join(kinds)})"
    return type(value).__name__


class _Tracer:
    """Logs every hook call with the plugins it reaches, the result's shape and the time."""

    def __init__(self) -> None:
        # Calls nest (a hook may call another), and sync handlers may run in worker threads.
        self._local = threading.local()

    @property
    def _started(self) -> list[float]:
        if not hasattr(self._local, "started"):
            self._local.started = []
        started: list[float] = self._local.started
        return started

    def before(
        self, hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        self._started.append(time.perf_counter())
        _log().info(
            "plugin hook call",
            hook=hook_name,
            plugins=[impl.plugin_name for impl in reversed(impls)],
            arguments=sorted(kwargs),
        )

    def after(
        self,
        outcome: pluggy.Result[Any],
        hook_name: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        elapsed_ms = round((time.perf_counter() - self._started.pop()) * 1000, 3)
        if outcome.exception is not None:
            _log().info(
                "plugin hook failed",
                hook=hook_name,
                error=f"{type(outcome.exception).__name__}: {outcome.exception}",
                duration_ms=elapsed_ms,
            )
            return
        _log().info(
            "plugin hook result",
            hook=hook_name,
            result=_shape(outcome.get_result()),
            duration_ms=elapsed_ms,
        )


# -- the manager -------------------------------------------------------------------------------


def _is_async(function: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _canonical_distribution(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class KithPluginManager(pluggy.PluginManager):
    """pluggy's manager with Kith's hookspecs, discovery and validation.

    Build one with :func:`load_plugin_manager` (entry points plus the environment's selection)
    or get the process-wide one with :func:`get_plugin_manager`.
    """

    def __init__(self, selection: PluginSelection | None = None) -> None:
        super().__init__(hookspecs.PROJECT)
        # Hook name -> who implements it and how to call each alone (see _calls).
        self._plans: dict[str, list[tuple[str, pluggy.HookCaller]]] = {}
        self.selection = selection or PluginSelection()
        self._loaded: dict[str, _Loaded] = {}
        self._skipped: dict[str, SkippedPlugin] = {}
        self.add_hookspecs(hookspecs)
        # Core answers for its own data through the same hooks as the plugins, but is not one:
        # registered with pluggy alone, it is not listed, selected or blocked like a plugin.
        from kith import subject_data

        pluggy.PluginManager.register(self, subject_data, subject_data.PLUGIN_NAME)
        # Called once, before any plugin registers: being historic, it reaches each plugin the
        # moment that plugin registers, so a plugin's own hookspecs exist before the plugins
        # registered after it are checked against them.
        self.hook.kith_add_hookspecs.call_historic(kwargs={"plugin_manager": self})
        if self.selection.trace:
            tracer = _Tracer()
            self.add_hookcall_monitoring(tracer.before, tracer.after)

    # -- hookspecs and registration ------------------------------------------------------------

    def add_hookspecs(self, module_or_class: Any) -> None:
        """Add hookspecs, refusing an async ``firstresult`` one; implementations registered
        before their spec existed are checked now."""
        names = [
            name
            for name in dir(module_or_class)
            if self.parse_hookspec_opts(module_or_class, name) is not None
        ]
        for name in names:
            opts = self.parse_hookspec_opts(module_or_class, name)
            if (
                opts is not None
                and opts.get("firstresult")
                and hookspecs.is_async_hook(getattr(module_or_class, name))
            ):
                raise ValueError(
                    f"hookspec {name!r} is firstresult and may_be_async; a firstresult hook "
                    "must be sync (the first coroutine returned would win, unawaited)"
                )
        self._plans.clear()
        super().add_hookspecs(module_or_class)
        for name in names:
            caller: pluggy.HookCaller = getattr(self.hook, name)
            for impl in caller.get_hookimpls():
                problem = self._async_problem(caller, impl)
                if problem:
                    raise pluggy.PluginValidationError(impl.plugin, problem)

    def get_canonical_name(self, plugin: Any) -> str:
        """A module's name, or the class name of a plugin object (pluggy uses its id)."""
        name = getattr(plugin, "__name__", None)
        return str(name) if name else type(plugin).__name__

    def register(
        self,
        plugin: Any,
        name: str | None = None,
        *,
        source: str = RUNTIME,
        version: str | None = None,
        module: str | None = None,
    ) -> str | None:
        """Register a plugin object (a module, class or instance with ``@hookimpl`` methods)
        and collect what its register-style hooks add. Raises :class:`PluginError` naming it
        when it cannot be used; then it is not registered at all."""
        name = name or self.get_canonical_name(plugin)
        if self.get_plugin(name) is not None:
            raise PluginError(name, "a plugin of this name is already registered")
        self._plans.clear()
        if self.is_registered(plugin):
            raise PluginError(name, f"already registered as {self.get_name(plugin)!r}")
        try:
            registered = super().register(plugin, name)
        except pluggy.PluginValidationError as exc:
            self._discard(plugin, name)
            culprit = self.get_name(exc.plugin) or name
            raise PluginError(culprit, str(exc).replace("\n", "; ")) from exc
        except Exception as exc:
            # The historic kith_add_hookspecs call runs plugin code inside pluggy's register.
            self._discard(plugin, name)
            raise PluginError(name, f"registering failed: {type(exc).__name__}: {exc}") from exc
        if registered is None:
            return None  # blocked by name
        loaded = _Loaded(plugin, version, source, module)
        try:
            for caller in self.get_hookcallers(plugin) or []:
                for impl in caller.get_hookimpls():
                    problem = self._async_problem(caller, impl) if impl.plugin is plugin else None
                    if problem:
                        raise PluginError(name, problem)
            self._warn_unmarked(plugin, name)
            loaded.contributions = self._collect(plugin, name)
        except BaseException:
            self._discard(plugin, name)
            raise
        self._loaded[name] = loaded
        return name

    def unregister(self, plugin: Any | None = None, name: str | None = None) -> Any | None:
        """Unregister a plugin and forget what it registered."""
        if name is None and plugin is not None:
            name = self.get_name(plugin)
        removed = super().unregister(plugin=plugin, name=name)
        self._plans.clear()
        if name is not None:
            self._loaded.pop(name, None)
        return removed

    def _discard(self, plugin: Any, name: str) -> None:
        """Undo a registration that failed half-way."""
        # pluggy validates before it changes anything, so a plugin is either registered under
        # its name (perhaps with only some of its hooks) or not at all.
        if plugin is not None and self.get_plugin(name) is plugin:
            self.unregister(plugin=plugin, name=name)
        self._loaded.pop(name, None)

    def _async_problem(self, caller: pluggy.HookCaller, impl: pluggy.HookImpl) -> str | None:
        if caller.spec is None or not _is_async(impl.function):
            return None
        if caller.spec.opts.get("firstresult"):
            return (
                f"{caller.name} is a firstresult hook, so it cannot be async "
                f"({impl.function.__qualname__} is an async def): the first coroutine would "
                "win without ever being awaited; make it a plain def"
            )
        if not hookspecs.is_async_hook(caller.spec.function):
            return (
                f"{caller.name} is called synchronously, so {impl.function.__qualname__} must "
                "be a plain def, not an async def (it would never be awaited)"
            )
        return None

    def _warn_unmarked(self, plugin: Any, name: str) -> None:
        for attr in dir(plugin):
            if not attr.startswith("kith_") or self.parse_hookimpl_opts(plugin, attr) is not None:
                continue
            value = inspect.getattr_static(plugin, attr, None)
            if inspect.isfunction(value) and hasattr(self.hook, attr):
                _log().warning(
                    "plugin function is not marked @hookimpl and is ignored",
                    plugin=name,
                    function=attr,
                )

    def _collect(self, plugin: Any, name: str) -> dict[str, list[Any]]:
        """Call the plugin's register-style hooks and validate what they add."""
        collected: dict[str, list[Any]] = {}
        for kind in KINDS:
            caller = self._caller_for(plugin, kind.hook)
            if caller is None:
                continue
            bucket = collected.setdefault(kind.key, [])
            register = self._register_callback(kind, name, bucket)
            try:
                caller(register=register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(name, f"{kind.hook} raised {type(exc).__name__}: {exc}") from exc
        self._check_duplicates(name, collected)
        return collected

    def _register_callback(self, kind: _Kind, name: str, bucket: list[Any]) -> Callable[..., None]:
        def register(*args: Any) -> None:
            if len(args) != kind.arity:
                raise PluginError(
                    name,
                    f"{kind.hook}: register() takes {kind.arity} argument(s), got {len(args)}",
                )
            item: Any = args[0] if kind.arity == 1 else args
            problem = kind.check(item)
            if problem:
                raise PluginError(name, f"{kind.hook}: {problem}")
            if kind.adopt_owner and getattr(item, "owner", None) == CORE:
                item = msgspec.structs.replace(item, owner=name)
            bucket.append(item)

        return register

    def _check_duplicates(self, name: str, collected: dict[str, list[Any]]) -> None:
        for kind in KINDS:
            if kind.name is None or not collected.get(kind.key):
                continue
            owners: dict[str, tuple[str, Any]] = {
                kind.name(item): ("Kith core", item) for item in kind.core()
            }
            for other, loaded in self._loaded.items():
                for item in loaded.contributions.get(kind.key, []):
                    owners.setdefault(kind.name(item), (f"plugin {other!r}", item))
            unique: list[Any] = []
            for item in collected[kind.key]:
                key = kind.name(item)
                if key in owners:
                    owner, existing = owners[key]
                    if kind.identical_ok and _without_owner(existing) == _without_owner(item):
                        continue
                    where = "twice by this plugin" if owner == f"plugin {name!r}" else f"by {owner}"
                    if kind.merge is None or owner == f"plugin {name!r}":
                        raise PluginError(name, f"{kind.label} {key!r} is registered {where}")
                    conflict = kind.merge(existing, item)
                    if conflict is not None:
                        raise PluginError(
                            name, f"{kind.label} {key!r} is registered {where}: {conflict}"
                        )
                owners[key] = (f"plugin {name!r}", item)
                unique.append(item)
            collected[kind.key] = unique

    def _caller_for(self, plugin: Any, hook_name: str) -> pluggy.HookCaller | None:
        """A hook caller reaching only ``plugin`` (through pluggy, so tracing sees it)."""
        caller: pluggy.HookCaller | None = getattr(self.hook, hook_name, None)
        if caller is None or not any(impl.plugin is plugin for impl in caller.get_hookimpls()):
            return None
        others = [other for other in self.get_plugins() if other is not plugin]
        return self.subset_hook_caller(hook_name, remove_plugins=others)

    def _calls(self, hook_name: str) -> list[tuple[str, pluggy.HookCaller]]:
        """(plugin name, a caller reaching only that plugin) for each implementation of a hook,
        in call order. Kept until a plugin registers or leaves: several hooks are called on
        every API request, and working this out costs more than calling them."""
        plan = self._plans.get(hook_name)
        if plan is None:
            plan = []
            for name, plugin in self._call_order(hook_name):
                caller = self._caller_for(plugin, hook_name)
                assert caller is not None
                plan.append((name, caller))
            self._plans[hook_name] = plan
        return plan

    def implementers(self, hook_name: str) -> list[str]:
        """The plugins (and ``kith``, core) implementing a hook, in call order."""
        return [name for name, _ in self._calls(hook_name)]

    async def call_one(self, plugin: str, hook_name: str, /, **kwargs: Any) -> Any:
        """One plugin's answer to a hook (awaited when it is async); None when it has none."""
        for name, caller in self._calls(hook_name):
            if name == plugin:
                for value in caller(**kwargs):
                    return await value if inspect.isawaitable(value) else value
        return None

    def implements(self, hook_name: str) -> bool:
        """Whether any plugin implements the hook (callers skip building its arguments)."""
        return bool(self._calls(hook_name))

    def _call_order(self, hook_name: str) -> list[tuple[str, Any]]:
        """The plugins implementing a hook, in the order pluggy calls them."""
        caller: pluggy.HookCaller | None = getattr(self.hook, hook_name, None)
        order: list[tuple[str, Any]] = []
        for impl in reversed(caller.get_hookimpls() if caller else []):
            if impl.wrapper or impl.hookwrapper:
                continue
            if all(impl.plugin is not plugin for _, plugin in order):
                order.append((impl.plugin_name, impl.plugin))
        return order

    def check_hooks(self) -> None:
        """Raise :class:`PluginError` for an implementation of a hook nobody declares."""
        unknown = self.unknown_hooks()
        if unknown:
            plugin, hook_name = unknown[0]
            raise PluginError(plugin, _unknown_hook_message(hook_name))

    def unknown_hooks(self) -> list[tuple[str, str]]:
        """(plugin, hook) for implementations of hooks that have no hookspec."""
        found = []
        for hook_name, caller in vars(self.hook).items():
            if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    found.append((impl.plugin_name, hook_name))
        return found

    # -- discovery ---------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Load the plugins of the ``kith`` entry-point group that the selection allows.

        A plugin that fails to import, register or validate is logged and skipped, or raised as
        :class:`PluginError` under ``KITH_STRICT_PLUGINS``.
        """
        found: dict[str, importlib.metadata.EntryPoint] = {}
        for entry_point in _sorted_entry_points():
            name = entry_point.name
            version, source = _origin(entry_point)
            if name in found or name in self._loaded:
                other = found.get(name)
                self._fail(
                    name,
                    version,
                    source,
                    f"the name {name!r} is already used by "
                    f"{_origin(other)[1] if other else 'a registered plugin'}",
                )
                continue
            reason = self.selection.why_not(name)
            if reason is not None:
                self._skipped[name] = SkippedPlugin(name, version, source, "disabled", reason)
                _log().debug("plugin disabled", plugin=name, reason=reason)
                continue
            found[name] = entry_point
        for name in sorted((self.selection.allow or frozenset()) - set(found)):
            if _listed_family(name, found) or name in self._skipped or name in self._loaded:
                continue
            self._fail(name, None, "-", "listed in KITH_PLUGINS but not installed")

        imported: list[tuple[importlib.metadata.EntryPoint, Any]] = []
        for name, entry_point in found.items():
            version, source = _origin(entry_point)
            try:
                imported.append((entry_point, entry_point.load()))
            except Exception as exc:
                self._fail(name, version, source, f"import failed: {_error(exc)}", exc)
        # Plugins that add hookspecs go first, so the hooks they declare exist before plugins
        # implementing them register and are checked (and their errors blamed on them).
        imported.sort(
            key=lambda pair: self.parse_hookimpl_opts(pair[1], "kith_add_hookspecs") is None
        )
        for entry_point, plugin in imported:
            version, source = _origin(entry_point)
            try:
                self.register(
                    plugin,
                    entry_point.name,
                    source=source,
                    version=version,
                    module=entry_point.value,
                )
            except PluginError as exc:
                culprit = self._loaded.get(exc.plugin)
                if culprit is not None:
                    # Registering this plugin exposed an error in one registered earlier (an
                    # implementation checked against a hookspec this plugin added): both go.
                    self._discard(culprit.plugin, exc.plugin)
                    self._fail(
                        exc.plugin, culprit.version, culprit.source, _plugin_reason(exc), exc
                    )
                    self._fail(
                        entry_point.name,
                        version,
                        source,
                        f"its hookspecs do not fit plugin {exc.plugin!r}",
                    )
                else:
                    self._fail(entry_point.name, version, source, _plugin_reason(exc), exc)
        for plugin_name, hook_name in self.unknown_hooks():
            loaded = self._loaded.get(plugin_name)
            if loaded is None:
                continue  # already dropped for another unknown hook
            self._discard(loaded.plugin, plugin_name)
            self._fail(
                plugin_name,
                loaded.version if loaded else None,
                loaded.source if loaded else "-",
                _unknown_hook_message(hook_name),
            )

    def _fail(
        self,
        name: str,
        version: str | None,
        source: str,
        reason: str,
        exc: BaseException | None = None,
    ) -> None:
        self._skipped[name] = SkippedPlugin(name, version, source, "failed", reason)
        # The traceback of the plugin's own error helps its author; a PluginError is Kith's
        # wording of that error, so the traceback shown is of its cause.
        cause = exc.__cause__ if isinstance(exc, PluginError) else exc
        details = {"exc_info": cause} if cause is not None else {}
        _log().error(
            "plugin failed to load and is skipped",
            plugin=name,
            source=source,
            error=reason,
            **details,
        )
        if self.selection.strict:
            raise PluginError(name, f"{reason} (KITH_STRICT_PLUGINS is on)") from exc

    # -- what is loaded ----------------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """The loaded plugins, in registration order, with the hooks each implements."""
        infos = []
        for name, loaded in self._loaded.items():
            hooks = sorted(caller.name for caller in self.get_hookcallers(loaded.plugin) or [])
            infos.append(
                PluginInfo(name, loaded.version, loaded.source, tuple(hooks), loaded.module)
            )
        return infos

    def skipped(self) -> list[SkippedPlugin]:
        """Installed plugins that are not loaded (failed or disabled), with the reason."""
        return list(self._skipped.values())

    def collected(self, key: str) -> list[Any]:
        """Core's items of one kind (``apps``, ``event_types``...) and then every plugin's."""
        kind = _KINDS_BY_KEY[key]
        items = list(kind.core())
        for loaded in self._loaded.values():
            items.extend(loaded.contributions.get(key, []))
        return items

    def contributions(self, plugin: str) -> dict[str, list[Any]]:
        """What one loaded plugin registered, by kind."""
        return {key: list(items) for key, items in self._loaded[plugin].contributions.items()}

    def apps(self) -> list[AppConfig]:
        """The core piccolo app and every plugin's."""
        return self.collected("apps")

    def routes(self) -> list[Any]:
        """The plugins' route handlers, controllers and routers (core's are the app's)."""
        return self.collected("routes")

    def commands(self) -> list[click.Command]:
        """The plugins' click commands (core's are the CLI's); command groups of the same
        name from plugins of one family are joined into one."""
        joined: dict[str, click.Command] = {}
        for command in self.collected("commands"):
            name = str(command.name)
            existing = joined.get(name)
            if isinstance(existing, click.Group) and isinstance(command, click.Group):
                group = click.Group(name, help=existing.help, commands=dict(existing.commands))
                for sub in command.commands.values():
                    group.add_command(sub)
                command = group
            joined[name] = command
        return list(joined.values())

    def event_types(self) -> list[EventType]:
        """Core's event types and every plugin's."""
        return self.collected("event_types")

    def subscribers(self) -> list[Subscriber]:
        """The plugins' subscribers, in registration order."""
        return self.collected("subscribers")

    def personal_fields(self) -> list[PersonalField]:
        """Core's personal fields and every plugin's."""
        return self.collected("personal_fields")

    def purposes(self) -> list[Purpose]:
        """The purposes plugins declared."""
        return self.collected("purposes")

    def recipients(self) -> list[Recipient]:
        """The recipients plugins declared."""
        return self.collected("recipients")

    def settings_schemas(self) -> list[tuple[str, type[msgspec.Struct]]]:
        """(section name, the Struct its ``kith.toml`` table is validated into), several per
        name where plugins of one family share a section."""
        return list(self.collected("settings"))

    def check_settings(self, settings: Settings) -> None:
        """Validate every declared section of ``kith.toml``; raises :class:`SettingsError`
        naming ``[section] key`` for the first bad value or a key nobody declares."""
        schemas = self.settings_schemas()
        declared = {name for name, _ in schemas}
        for name, value in settings.extra.items():
            if isinstance(value, dict) and name not in declared:
                _log().warning(
                    "kith.toml has a section no loaded plugin declares; it is ignored",
                    section=name,
                )
        check_sections(settings, schemas)

    # -- calling hooks -----------------------------------------------------------------------

    def call_first(self, hook_name: str, /, **kwargs: Any) -> HookResult | None:
        """Call a ``firstresult`` hook: the first plugin answering something other than None
        wins. An awaitable answer is refused, naming the plugin."""
        for name, caller in self._calls(hook_name):
            value = caller(**kwargs)
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()  # never awaited on purpose; silence the warning
                raise PluginError(
                    name,
                    f"{hook_name} returned an awaitable; a firstresult hook must answer "
                    "synchronously",
                )
            if value is not None:
                return HookResult(name, value)
        return None

    async def call_async(
        self, hook_name: str, /, *, collect_errors: bool = False, **kwargs: Any
    ) -> list[HookResult]:
        """Call a collecting hook whose implementations may be async, one plugin after the
        other, awaiting each; returns each non-None answer with the plugin that gave it.

        An exception propagates with a note naming the plugin, unless ``collect_errors``:
        then it is returned as that plugin's result and the other plugins are still called.
        """
        results: list[HookResult] = []
        for name, caller in self._calls(hook_name):
            try:
                for value in caller(**kwargs):
                    if inspect.isawaitable(value):
                        trace = self.selection.trace
                        started = time.perf_counter() if trace else 0.0
                        answer = await value
                        if trace:
                            # The traced call above only created the coroutine; this is its work.
                            _log().info(
                                "plugin hook awaited",
                                hook=hook_name,
                                plugin=name,
                                result=_shape(answer),
                                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                            )
                    else:
                        answer = value
                    if answer is not None:
                        results.append(HookResult(name, answer))
            except Exception as exc:
                if not collect_errors:
                    exc.add_note(f"in {hook_name} of plugin {name!r}")
                    raise
                results.append(HookResult(name, None, exc))
        return results

    def field_protector(self, kith: Kith) -> FieldProtector | None:
        """The protector a plugin provides through ``kith_field_protector``, if any."""
        result = self.call_first("kith_field_protector", kith=kith)
        return None if result is None else result.value

    async def startup(self, kith: Kith) -> None:
        """Run every plugin's ``kith_startup``, awaiting the async ones."""
        await self.call_async("kith_startup", kith=kith)


# -- helpers -----------------------------------------------------------------------------------


def _sorted_entry_points() -> list[importlib.metadata.EntryPoint]:
    """Built-in plugins first, then the others by name, so the order never depends on the
    order of sys.path."""

    def key(entry_point: importlib.metadata.EntryPoint) -> tuple[bool, str]:
        return (_origin(entry_point)[1] != BUILTIN, entry_point.name)

    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=key)


def _origin(entry_point: importlib.metadata.EntryPoint) -> tuple[str | None, str]:
    """The version and source (``built-in`` or the distribution's name) of an entry point."""
    dist = entry_point.dist
    if dist is None:
        return None, "unknown"
    name = dist.metadata["Name"] or dist.name
    source = BUILTIN if _canonical_distribution(name) == BUILTIN_DISTRIBUTION else name
    return dist.version, source


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _plugin_reason(exc: PluginError) -> str:
    prefix = f"plugin {exc.plugin!r}: "
    return exc.detail[len(prefix) :] if exc.detail.startswith(prefix) else exc.detail


def _unknown_hook_message(hook_name: str) -> str:
    return (
        f"implements {hook_name!r}, which no hookspec declares (misspelt, or the plugin "
        "declaring it is not loaded; use @hookimpl(optionalhook=True) if that is expected)"
    )


# -- the process-wide manager --------------------------------------------------------------------

_default: KithPluginManager | None = None
_default_lock = threading.RLock()
_loading = False


def load_plugin_manager(
    env: Mapping[str, str] | None = None, *, selection: PluginSelection | None = None
) -> KithPluginManager:
    """A new manager with the entry-point plugins the environment selects (tests use this for
    a fresh one; everything else shares :func:`get_plugin_manager`)."""
    manager = KithPluginManager(selection or PluginSelection.from_env(env))
    manager.load_entry_points()
    return manager


def get_plugin_manager() -> KithPluginManager:
    """The process-wide manager, loaded on first use and only once."""
    global _default, _loading
    with _default_lock:
        if _default is None:
            if _loading:
                # A plugin asked for the manager while being imported: that would load the
                # plugins again, and again.
                raise RuntimeError(
                    "the plugin manager was asked for while plugins were loading; a plugin "
                    "gets it through kith_add_hookspecs or kith.plugins in kith_startup"
                )
            _loading = True
            try:
                _default = load_plugin_manager()
            finally:
                _loading = False
        return _default


@contextlib.contextmanager
def use_plugin_manager(manager: KithPluginManager) -> Iterator[KithPluginManager]:
    """Make ``manager`` the process-wide one for a while (the test fixtures do)."""
    global _default
    with _default_lock:
        previous, _default = _default, manager
    try:
        yield manager
    finally:
        with _default_lock:
            _default = previous


__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "RUNTIME",
    "HookResult",
    "KithPluginManager",
    "PluginError",
    "PluginInfo",
    "PluginSelection",
    "SkippedPlugin",
    "get_plugin_manager",
    "load_plugin_manager",
    "use_plugin_manager",
]
