"""The plugin manager: pluggy's, with Kith's hookspecs, checks and selection of entry points."""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec
import pluggy
from kith import hookspecs
from kith.events import EventType
from kith.navigation import NavLink
from kith.personal import PersonalField
from kith.plugin_manager import _entry_points
from kith.plugin_manager._entry_points import ENTRY_POINT_GROUP, RUNTIME, entry_point_value, origin
from kith.plugin_manager._records import HookResult, PluginError, PluginInfo, SkippedPlugin, log
from kith.plugin_manager._registrations import KINDS_BY_KEY, collect, configured_routes
from kith.plugin_manager._selection import PluginSelection
from kith.plugin_manager._tracing import Tracer, traced_await
from kith.schemas import FieldCreate
from kith.settings import FIELDS_KEY, Settings, check_sections
from kith.subjects import Purpose, Recipient, Subscriber
from piccolo.conf.apps import AppConfig

if TYPE_CHECKING:
    from kith.protection import FieldProtector
    from kith.runtime import Kith


# A plugin module's tuple of the plugins it cannot work without (by entry-point name).
REQUIRES = "KITH_REQUIRES"


class KithPluginManager(pluggy.PluginManager):
    """pluggy's manager with Kith's hookspecs, discovery and validation.

    :func:`load_plugin_manager` builds one with the plugins the environment selects. There is
    no process-wide manager: whoever opens Kith owns one and hands it on.
    """

    def __init__(self, selection: PluginSelection | None = None) -> None:
        super().__init__(hookspecs.PROJECT)
        # Hook name -> who implements it and how to call each alone (see _calls).
        self._plans: dict[str, list[tuple[str, pluggy.HookCaller]]] = {}
        self.selection = selection or PluginSelection()
        # Registered plugin name -> kind key -> what it registered, in registration order.
        self._contributions: dict[str, dict[str, list[Any]]] = {}
        self._skipped: dict[str, SkippedPlugin] = {}
        self.add_hookspecs(hookspecs)
        # Core answers for its own data through the same hooks as the plugins, but is not one:
        # registered with pluggy alone, it is not listed, selected or blocked like a plugin.
        from kith import import_jobs, mail_subjects, name_index, subject_data

        pluggy.PluginManager.register(self, subject_data, subject_data.PLUGIN_NAME)
        pluggy.PluginManager.register(self, name_index, name_index.PLUGIN_NAME)
        pluggy.PluginManager.register(self, import_jobs, import_jobs.PLUGIN_NAME)
        pluggy.PluginManager.register(self, mail_subjects, mail_subjects.PLUGIN_NAME)
        # Called once, before any plugin registers: being historic, it reaches each plugin the
        # moment that plugin registers, so a plugin's own hookspecs exist before the plugins
        # registered after it are checked against them.
        self.hook.kith_add_hookspecs.call_historic(kwargs={"plugin_manager": self})
        if self.selection.trace:
            tracer = Tracer()
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
                problem = _async_problem(caller, impl)
                if problem:
                    raise pluggy.PluginValidationError(impl.plugin, problem)

    def get_canonical_name(self, plugin: Any) -> str:
        """A module's name, or the class name of a plugin object (pluggy uses its id)."""
        name = getattr(plugin, "__name__", None)
        return str(name) if name else type(plugin).__name__

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """Register a plugin object (a module, class or instance with ``@hookimpl`` methods)
        and collect what its register-style hooks add. Raises :class:`PluginError` naming it
        when it cannot be used; then it is not registered at all. Returns None, registering
        nothing, for a blocked name."""
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
            return None
        try:
            for caller in self.get_hookcallers(plugin) or []:
                for impl in caller.get_hookimpls():
                    problem = _async_problem(caller, impl) if impl.plugin is plugin else None
                    if problem:
                        raise PluginError(name, problem)
            self._warn_unmarked(plugin, name)
            contributions = collect(
                name, lambda hook_name: self._caller_for(plugin, hook_name), self._contributions
            )
        except BaseException:
            self._discard(plugin, name)
            raise
        self._contributions[name] = contributions
        return name

    def unregister(self, plugin: Any | None = None, name: str | None = None) -> Any | None:
        """Unregister a plugin and forget what it registered."""
        if name is None and plugin is not None:
            name = self.get_name(plugin)
        removed = super().unregister(plugin=plugin, name=name)
        self._plans.clear()
        if name is not None:
            self._contributions.pop(name, None)
        return removed

    def _discard(self, plugin: Any, name: str) -> None:
        """Undo a registration that failed half-way."""
        # pluggy validates before it changes anything, so a plugin is either registered under
        # its name (perhaps with only some of its hooks) or not at all.
        if plugin is not None and self.get_plugin(name) is plugin:
            self.unregister(plugin=plugin, name=name)
        self._contributions.pop(name, None)

    def _warn_unmarked(self, plugin: Any, name: str) -> None:
        for attr in dir(plugin):
            if not attr.startswith("kith_") or self.parse_hookimpl_opts(plugin, attr) is not None:
                continue
            value = inspect.getattr_static(plugin, attr, None)
            if inspect.isfunction(value) and hasattr(self.hook, attr):
                log().warning(
                    "plugin function is not marked @hookimpl and is ignored",
                    plugin=name,
                    function=attr,
                )

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
        """Load the plugins of the ``kith`` entry-point group that the selection allows; the
        names it leaves out are blocked.

        A plugin that fails to import, register or validate is logged and skipped, or raised as
        :class:`PluginError` under ``KITH_STRICT_PLUGINS``.
        """
        declared = _entry_points.declared()
        chosen: dict[str, importlib.metadata.EntryPoint] = {}
        for name, candidates in declared.items():
            version, source = origin(candidates[0].dist)
            reason = self.selection.why_not(name)
            if self.has_plugin(name):
                self._fail(
                    name,
                    version,
                    source,
                    f"the name {name!r} is already used by a registered plugin",
                )
            elif reason is not None or self.is_blocked(name):
                self.set_blocked(name)
                reason = reason or "blocked"
                self._skipped[name] = SkippedPlugin(name, version, source, "disabled", reason)
                log().debug("plugin disabled", plugin=name, reason=reason)
            elif len(candidates) > 1:
                # pluggy loads whichever comes first on sys.path: refusing them all keeps one
                # distribution from silently standing in for another.
                sources = ", ".join(origin(candidate.dist)[1] for candidate in candidates)
                self._fail(
                    name,
                    version,
                    source,
                    f"the name {name!r} is declared by several distributions ({sources}); "
                    "none is loaded",
                )
            else:
                chosen[name] = candidates[0]
        for name in self.selection.missing(set(declared)):
            if not self.has_plugin(name):
                self._fail(name, None, "-", "listed in KITH_PLUGINS but not installed")

        # Plugins that add hookspecs go first, so the hooks they declare exist before plugins
        # implementing them register and are checked (and their errors blamed on them); that
        # takes importing them all before pluggy registers any.
        first: list[str] = []
        then: list[str] = []
        for name, entry_point in chosen.items():
            try:
                plugin = entry_point.load()
            except Exception as exc:
                version, source = origin(entry_point.dist)
                self._fail(name, version, source, f"import failed: {_error(exc)}", exc)
                continue
            declares = self.parse_hookimpl_opts(plugin, "kith_add_hookspecs") is not None
            (first if declares else then).append(name)
        for name in [*first, *then]:
            self._load(name, *origin(chosen[name].dist))

        for plugin_name, hook_name in self.unknown_hooks():
            plugin = self.get_plugin(plugin_name)
            if plugin is None:
                continue  # already dropped for another unknown hook
            version, source = self._origin_of(plugin)
            self._discard(plugin, plugin_name)
            self._fail(plugin_name, version, source, _unknown_hook_message(hook_name))
        self._drop_unmet_requirements()

    def _drop_unmet_requirements(self) -> None:
        """Drop plugins that need another that is not loaded (``KITH_REQUIRES``, a tuple of
        plugin names on the plugin module), until every one left has what it needs."""
        dropped = True
        while dropped:
            dropped = False
            for name, plugin in list(self.list_name_plugin()):
                if plugin is None or name not in self._contributions:
                    continue
                missing = [
                    needed
                    for needed in getattr(plugin, REQUIRES, ())
                    if self.get_plugin(needed) is None
                ]
                if missing:
                    version, source = self._origin_of(plugin)
                    self._discard(plugin, name)
                    self._fail(
                        name,
                        version,
                        source,
                        f"needs plugin {missing[0]!r}, which is not loaded (enable it, or "
                        f"disable {name!r} too)",
                    )
                    dropped = True

    def _load(self, name: str, version: str | None, source: str) -> None:
        """Register one entry point through pluggy, or record (or raise) why it cannot be."""
        try:
            self.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        except PluginError as exc:
            culprit = self.get_plugin(exc.plugin) if exc.plugin != name else None
            if culprit is None:
                self._fail(name, version, source, exc.reason, exc)
                return
            # Registering this plugin exposed an error in one registered earlier (an
            # implementation checked against a hookspec this plugin added): both go.
            culprit_version, culprit_source = self._origin_of(culprit)
            self._discard(culprit, exc.plugin)
            self._fail(exc.plugin, culprit_version, culprit_source, exc.reason, exc)
            self._fail(name, version, source, f"its hookspecs do not fit plugin {exc.plugin!r}")
        except Exception as exc:
            self._fail(name, version, source, f"loading failed: {_error(exc)}", exc)

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
        log().error(
            "plugin failed to load and is skipped",
            plugin=name,
            source=source,
            error=reason,
            **details,
        )
        if self.selection.strict:
            raise PluginError(name, f"{reason} (KITH_STRICT_PLUGINS is on)") from exc

    def _distribution(self, plugin: Any) -> Any | None:
        """The distribution pluggy loaded ``plugin`` from, or None for one registered by code."""
        return next((dist for known, dist in self.list_plugin_distinfo() if known is plugin), None)

    def _origin_of(self, plugin: Any) -> tuple[str | None, str]:
        distribution = self._distribution(plugin)
        return origin(distribution) if distribution is not None else (None, RUNTIME)

    # -- what is loaded ----------------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """The loaded plugins, in registration order, with the hooks each implements."""
        infos = []
        for name, plugin in self.list_name_plugin():
            if plugin is None or name not in self._contributions:
                continue  # blocked, or still registering
            distribution = self._distribution(plugin)
            version, source = self._origin_of(plugin)
            hooks = sorted(caller.name for caller in self.get_hookcallers(plugin) or [])
            module = entry_point_value(distribution, name) if distribution is not None else None
            infos.append(PluginInfo(name, version, source, tuple(hooks), module))
        return infos

    def skipped(self) -> list[SkippedPlugin]:
        """Installed plugins that are not loaded (failed or disabled), with the reason."""
        return list(self._skipped.values())

    def collected(self, key: str) -> list[Any]:
        """Core's items of one kind (``apps``, ``event_types``...) and then every plugin's."""
        items = list(KINDS_BY_KEY[key].core())
        for contributions in self._contributions.values():
            items.extend(contributions.get(key, []))
        return items

    def contributions(self, plugin: str) -> dict[str, list[Any]]:
        """What one loaded plugin registered, by kind."""
        return {key: list(items) for key, items in self._contributions[plugin].items()}

    def apps(self) -> list[AppConfig]:
        """The core piccolo app and every plugin's."""
        return self.collected("apps")

    def routes(self, settings: Settings | None = None) -> list[Any]:
        """The plugins' route handlers, controllers and routers (core's are the app's); with
        ``settings``, also those built from them (``kith_register_configured_routes``)."""
        routes = self.collected("routes")
        if settings is not None:
            for name, caller in self._calls("kith_register_configured_routes"):
                routes.extend(configured_routes(name, caller, settings))
        return routes

    def pages(self) -> list[Any]:
        """The plugins' web UI route handlers (core's are the web UI's own)."""
        return self.collected("pages")

    def templates(self) -> list[Path]:
        """The plugins' folders of web UI templates, searched after core's."""
        return self.collected("templates")

    def navigation(self) -> list[NavLink]:
        """The plugins' links in the web UI's navigation."""
        return self.collected("navigation")

    def commands(self) -> list[click.Command]:
        """The plugins' click commands (core's are the CLI's); command groups of one name
        from plugins of one family are joined into one."""
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

    def custom_fields(self) -> list[tuple[str, FieldCreate]]:
        """(plugin name, declaration) of the custom fields plugins need."""
        return [
            (name, declared)
            for name, contributions in self._contributions.items()
            for declared in contributions.get("custom_fields", [])
        ]

    def recipients(self) -> list[Recipient]:
        """The recipients plugins declared."""
        return self.collected("recipients")

    def settings_schemas(self) -> list[tuple[str, type[msgspec.Struct]]]:
        """(section name, the Struct its ``kith.toml`` table is validated into); plugins of
        one family may share a section, each declaring its keys."""
        return list(self.collected("settings"))

    def check_settings(self, settings: Settings) -> None:
        """Validate every declared section of ``kith.toml`` now; raises
        :class:`SettingsError` naming ``[section] key`` for the first bad value or for a key
        nobody declares. A table nobody declares is only warned about."""
        schemas = self.settings_schemas()
        declared = {name for name, _ in schemas}
        for name, value in settings.extra.items():
            # [[fields]] is core's own (custom fields), read by kith migrate.
            if isinstance(value, dict) and name not in declared and name != FIELDS_KEY:
                log().warning(
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
                    answer = value
                    if inspect.isawaitable(value):
                        if self.selection.trace:
                            answer = await traced_await(value, hook_name, name)
                        else:
                            answer = await value
                    if answer is not None:
                        results.append(HookResult(name, answer))
            except Exception as exc:
                if not collect_errors:
                    exc.add_note(f"in {hook_name} of plugin {name!r}")
                    raise
                results.append(HookResult(name, None, exc))
        return results

    def implementers(self, hook_name: str) -> list[str]:
        """Who implements a hook (plugins, and ``kith`` for core), in call order."""
        return [name for name, _ in self._calls(hook_name)]

    async def call_one(self, plugin: str, hook_name: str, /, **kwargs: Any) -> Any:
        """One implementer's answer to a hook, awaited when async; None when it has none."""
        for name, caller in self._calls(hook_name):
            if name == plugin:
                for value in caller(**kwargs):
                    return await value if inspect.isawaitable(value) else value
        return None

    def implements(self, hook_name: str) -> bool:
        """Whether any plugin implements the hook (callers skip building its arguments)."""
        return bool(self._calls(hook_name))

    def field_protector(self, kith: Kith) -> FieldProtector | None:
        """The protector a plugin provides through ``kith_field_protector``, if any."""
        result = self.call_first("kith_field_protector", kith=kith)
        return None if result is None else result.value

    async def startup(self, kith: Kith) -> None:
        """Run every plugin's ``kith_startup``, awaiting the async ones."""
        await self.call_async("kith_startup", kith=kith)

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


def load_plugin_manager(
    env: Mapping[str, str] | None = None, *, selection: PluginSelection | None = None
) -> KithPluginManager:
    """A new manager with the entry-point plugins that ``selection`` (default: the one of
    ``env``, or of the process environment) selects."""
    manager = KithPluginManager(selection or PluginSelection.from_env(env))
    manager.load_entry_points()
    return manager


def _is_async(function: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _async_problem(caller: pluggy.HookCaller, impl: pluggy.HookImpl) -> str | None:
    """Why an implementation cannot be called the way its hook is, or None when it can."""
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


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _unknown_hook_message(hook_name: str) -> str:
    return (
        f"implements {hook_name!r}, which no hookspec declares (misspelt, or the plugin "
        "declaring it is not loaded; use @hookimpl(optionalhook=True) if that is expected)"
    )
