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
import threading
from collections.abc import Iterator

from kith.plugin_manager._entry_points import BUILTIN, ENTRY_POINT_GROUP, RUNTIME
from kith.plugin_manager._manager import KithPluginManager, load_plugin_manager
from kith.plugin_manager._records import HookResult, PluginError, PluginInfo, SkippedPlugin
from kith.plugin_manager._selection import PluginSelection

_default: KithPluginManager | None = None
_default_lock = threading.RLock()
_loading = False


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
