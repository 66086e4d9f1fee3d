"""Where plugins come from: the ``kith`` entry points, in a fixed order, and their origin."""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

ENTRY_POINT_GROUP = "kith"
BUILTIN_DISTRIBUTION = "kith"
BUILTIN = "built-in"
# The source of a plugin registered by code (tests, scripts) rather than by an entry point.
RUNTIME = "runtime"


def declared() -> dict[str, list[importlib.metadata.EntryPoint]]:
    """The group's entry points by name: built-in plugins first, then the others by name, so
    the order never depends on the order of sys.path. A name several distributions declare
    has several entry points (built-in first)."""

    def key(entry_point: importlib.metadata.EntryPoint) -> tuple[bool, str, str]:
        source = origin(entry_point.dist)[1]
        return (source != BUILTIN, entry_point.name, source)

    found: dict[str, list[importlib.metadata.EntryPoint]] = {}
    for entry_point in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=key):
        found.setdefault(entry_point.name, []).append(entry_point)
    return found


def origin(distribution: Any | None) -> tuple[str | None, str]:
    """The version and source (``built-in`` or the distribution's name) of a distribution,
    an :class:`importlib.metadata.Distribution` or pluggy's facade of one."""
    if distribution is None:
        return None, "unknown"
    name = distribution.metadata["Name"] or distribution.name
    canonical = re.sub(r"[-_.]+", "-", name).lower()
    return distribution.version, BUILTIN if canonical == BUILTIN_DISTRIBUTION else name


def entry_point_value(distribution: Any, name: str) -> str | None:
    """What the distribution's ``kith`` entry point ``name`` points at (``module[:attr]``)."""
    for entry_point in distribution.entry_points:
        if entry_point.group == ENTRY_POINT_GROUP and entry_point.name == name:
            return str(entry_point.value)
    return None
