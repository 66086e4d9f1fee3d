"""Kith's plugin manager: discovery, selection, validation, and what the plugins register.

Every plugin, Kith's own included, is found through the ``kith`` entry-point group, so a
built-in plugin gets no privilege a third-party one lacks. Environment variables choose:

* ``KITH_PLUGINS`` — comma-separated allow-list of entry-point names (unset: all of them);
* ``KITH_DISABLE_PLUGINS`` — comma-separated deny-list;
* ``KITH_STRICT_PLUGINS=1`` — a plugin that fails to load stops start-up instead of being
  logged and skipped (for development and CI);
* ``KITH_TRACE_PLUGINS=1`` — log every hook call and the shape of its result.

There is no process-wide manager: :func:`load_plugin_manager` builds one, and whoever opens
Kith (``kith.bootstrap.open_kith``, the ``kith`` command, the test fixtures) owns it.
"""

from __future__ import annotations

from kith.plugin_manager._entry_points import BUILTIN, ENTRY_POINT_GROUP, RUNTIME
from kith.plugin_manager._manager import KithPluginManager, load_plugin_manager
from kith.plugin_manager._records import HookResult, PluginError, PluginInfo, SkippedPlugin
from kith.plugin_manager._selection import PluginSelection

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
    "load_plugin_manager",
]
