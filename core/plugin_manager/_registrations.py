"""The register-style hooks: what each accepts, and the names no two plugins may share.

Each is called once per plugin, when that plugin registers, so every thing a plugin adds is
validated then and an error names the plugin that caused it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import msgspec
import pluggy
from kith.events import CORE_EVENT_TYPES, EventType
from kith.navigation import NavLink
from kith.personal import CORE_PERSONAL_FIELDS, CORE_PURPOSES, PersonalField
from kith.plugin_manager._records import PluginError
from kith.schemas import FieldCreate
from kith.settings import section_keys
from kith.subjects import Purpose, Recipient, Subscriber
from piccolo.conf.apps import AppConfig

# The owner a declaration has until a plugin claims it.
CORE = "kith"

_SECTION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

# Plugin name -> kind key -> what that plugin registered.
Contributions = Mapping[str, Mapping[str, Sequence[Any]]]


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


def _check_template_folder(item: Any) -> str | None:
    if not isinstance(item, Path):
        return f"expected a pathlib.Path of a folder of templates, got {_type_name(item)}"
    if not item.is_dir():
        return f"template folder {item} is not a folder"
    return None


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
    shared = sorted(section_keys(existing[1]) & section_keys(new[1]))
    return f"both declare [{new[0]}] {shared[0]}" if shared else None


def _joinable_groups(existing: Any, new: Any) -> str | None:
    if not (isinstance(existing, click.Group) and isinstance(new, click.Group)):
        return "only command groups of one name are joined"
    shared = sorted(set(existing.commands) & set(new.commands))
    return f"both have a command {new.name} {shared[0]}" if shared else None


def _check_settings(item: Any) -> str | None:
    name, schema = item
    if not isinstance(name, str) or not _SECTION_NAME.match(name):
        return f"settings section name {name!r} must be lower-case letters, digits and _"
    if not (isinstance(schema, type) and issubclass(schema, msgspec.Struct)):
        return f"settings section {name!r}: expected a msgspec.Struct class, got {schema!r}"
    return None


@dataclass(frozen=True)
class Kind:
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
    # share a name, ``join(existing, new)`` says why they cannot be joined, or None.
    join: Callable[[Any, Any], str | None] | None = None


def _core_sections() -> list[tuple[str, type[msgspec.Struct]]]:
    from kith import duplicate_settings, loop_settings, mail
    from kith.dispatcher import SECTION, EventsConfig
    from kith.services import quality

    return [
        (SECTION, EventsConfig),
        (duplicate_settings.SECTION, duplicate_settings.DuplicateSettings),
        (quality.SECTION, quality.QualitySettings),
        *loop_settings.SECTIONS,
        (mail.SECTION, mail.MailSettings),
    ]


def _core_apps() -> list[AppConfig]:
    from kith.piccolo_app import APP_CONFIG

    return [APP_CONFIG]


KINDS: tuple[Kind, ...] = (
    Kind(
        "apps",
        "kith_register_apps",
        "piccolo app",
        _expect(AppConfig, "a piccolo AppConfig"),
        name=lambda app: str(app.app_name),
        core=_core_apps,
    ),
    Kind("routes", "kith_register_routes", "route", _check_route),
    Kind("pages", "kith_register_pages", "page", _check_route),
    Kind(
        "templates",
        "kith_register_templates",
        "template folder",
        _check_template_folder,
        name=str,
    ),
    Kind(
        "navigation",
        "kith_register_navigation",
        "navigation link",
        _expect(NavLink, "kith.NavLink"),
        name=lambda link: str(link.path),
    ),
    Kind(
        "commands",
        "kith_register_commands",
        "command",
        _check_command,
        name=lambda command: str(command.name),
        join=_joinable_groups,
    ),
    Kind(
        "event_types",
        "kith_register_event_types",
        "event type",
        _check_event_type,
        name=lambda event_type: str(event_type.name),
        core=lambda: CORE_EVENT_TYPES,
    ),
    Kind(
        "subscribers",
        "kith_register_subscribers",
        "subscriber",
        _check_subscriber,
        name=lambda subscriber: str(subscriber.name),
    ),
    Kind(
        "settings",
        "kith_register_settings",
        "settings section",
        _check_settings,
        name=lambda item: str(item[0]),
        core=_core_sections,
        arity=2,
        join=_disjoint_sections,
    ),
    Kind(
        "personal_fields",
        "kith_register_personal_fields",
        "personal field",
        _expect(PersonalField, "kith.personal.PersonalField"),
        name=lambda personal: str(personal.key),
        core=lambda: CORE_PERSONAL_FIELDS,
        adopt_owner=True,
    ),
    Kind(
        "purposes",
        "kith_register_purposes",
        "purpose",
        _expect(Purpose, "kith.subjects.Purpose"),
        name=lambda purpose: str(purpose.name),
        core=lambda: CORE_PURPOSES,
        adopt_owner=True,
        identical_ok=True,
    ),
    Kind(
        "custom_fields",
        "kith_register_custom_fields",
        "custom field",
        _expect(FieldCreate, "kith.FieldCreate"),
        name=lambda declared: str(declared.name),
    ),
    Kind(
        "recipients",
        "kith_register_recipients",
        "recipient",
        _expect(Recipient, "kith.subjects.Recipient"),
        name=lambda recipient: str(recipient.name),
        adopt_owner=True,
    ),
)
KINDS_BY_KEY = {kind.key: kind for kind in KINDS}


def collect(
    plugin: str,
    caller_for: Callable[[str], pluggy.HookCaller | None],
    registered: Contributions,
) -> dict[str, list[Any]]:
    """Call one plugin's register-style hooks (``caller_for`` gives a caller reaching that
    plugin alone, or None when it does not implement the hook) and validate what they add
    against each other and against what core and the ``registered`` plugins hold."""
    collected: dict[str, list[Any]] = {}
    for kind in KINDS:
        caller = caller_for(kind.hook)
        if caller is None:
            continue
        bucket = collected.setdefault(kind.key, [])
        try:
            caller(register=_register_callback(kind, plugin, bucket))
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(plugin, f"{kind.hook} raised {type(exc).__name__}: {exc}") from exc
    _drop_shared_and_refuse_duplicates(plugin, collected, registered)
    return collected


def configured_routes(plugin: str, caller: pluggy.HookCaller, settings: Any) -> list[Any]:
    """What one plugin's ``kith_register_configured_routes`` adds for these settings, each
    checked like a route of ``kith_register_routes``."""
    kind = KINDS_BY_KEY["routes"]
    hook = "kith_register_configured_routes"
    bucket: list[Any] = []

    def register(item: Any) -> None:
        problem = kind.check(item)
        if problem:
            raise PluginError(plugin, f"{hook}: {problem}")
        bucket.append(item)

    try:
        caller(settings=settings, register=register)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(plugin, f"{hook} raised {type(exc).__name__}: {exc}") from exc
    return bucket


def _register_callback(kind: Kind, plugin: str, bucket: list[Any]) -> Callable[..., None]:
    def register(*args: Any) -> None:
        if len(args) != kind.arity:
            raise PluginError(
                plugin,
                f"{kind.hook}: register() takes {kind.arity} argument(s), got {len(args)}",
            )
        item: Any = args[0] if kind.arity == 1 else args
        problem = kind.check(item)
        if problem:
            raise PluginError(plugin, f"{kind.hook}: {problem}")
        if kind.adopt_owner and getattr(item, "owner", None) == CORE:
            item = msgspec.structs.replace(item, owner=plugin)
        bucket.append(item)

    return register


def _without_owner(item: Any) -> Any:
    return msgspec.structs.replace(item, owner="") if isinstance(item, msgspec.Struct) else item


def _drop_shared_and_refuse_duplicates(
    plugin: str, collected: dict[str, list[Any]], registered: Contributions
) -> None:
    """Raise :class:`PluginError` for a name core or another plugin already has; drop what
    may be shared and was declared identically before; let plugins of one family share what
    its kind lets them join."""
    for kind in KINDS:
        name_of = kind.name
        if name_of is None or not collected.get(kind.key):
            continue
        # Name -> (who has it: a plugin's name, or None for core; what it registered).
        owners: dict[str, tuple[str | None, Any]] = {
            name_of(item): (None, item) for item in kind.core()
        }
        for other, contributions in registered.items():
            for item in contributions.get(kind.key, []):
                owners.setdefault(name_of(item), (other, item))
        unique: list[Any] = []
        for item in collected[kind.key]:
            key = name_of(item)
            if key in owners:
                owner, existing = owners[key]
                if kind.identical_ok and _without_owner(existing) == _without_owner(item):
                    continue
                if owner == plugin:
                    where = "twice by this plugin"
                else:
                    where = "by Kith core" if owner is None else f"by plugin {owner!r}"
                if kind.join is None or owner is None or not same_family(owner, plugin):
                    raise PluginError(plugin, f"{kind.label} {key!r} is registered {where}")
                conflict = kind.join(existing, item)
                if conflict is not None:
                    raise PluginError(
                        plugin, f"{kind.label} {key!r} is registered {where}: {conflict}"
                    )
            owners[key] = (plugin, item)
            unique.append(item)
        collected[kind.key] = unique


def same_family(one: str, other: str) -> bool:
    """Whether two plugins are of one family (``privacy.rights`` and ``privacy.requests``):
    different plugins whose names share the part before the first dot."""
    return one != other and "." in one and one.split(".", 1)[0] == other.split(".", 1)[0]
