"""Which installed plugins to load and how: ``KITH_PLUGINS``, ``KITH_DISABLE_PLUGINS``,
``KITH_STRICT_PLUGINS`` and ``KITH_TRACE_PLUGINS``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from kith.settings import SettingsError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


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
        """Why the plugin ``name`` is not to be loaded, or None when it is. A listed name also
        stands for its family: ``privacy`` selects ``privacy.encryption``, ``privacy.rights``..."""
        if _listed(name, self.deny):
            return "disabled by KITH_DISABLE_PLUGINS"
        if self.allow is not None and not _listed(name, self.allow):
            return "not in KITH_PLUGINS"
        return None

    def missing(self, installed: set[str]) -> list[str]:
        """The names ``KITH_PLUGINS`` lists that are not installed (nor a family of installed
        plugins), sorted."""
        return sorted(
            name
            for name in (self.allow or frozenset())
            if not any(_listed(plugin, frozenset({name})) for plugin in installed)
        )


def _listed(name: str, names: frozenset[str]) -> bool:
    return name in names or any(name.startswith(f"{listed}.") for listed in names)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}: expected 1 or 0 (true or false), got {env[name]!r}")
