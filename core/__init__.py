"""Kith: a self-hostable, plugin-based CRM with privacy engineering built in."""

from __future__ import annotations

__version__ = "0.1.0"

from kith.actor import SYSTEM, Actor, Role
from kith.errors import Conflict, InvalidInput, KithError, NotFound, PermissionDenied
from kith.events import Event, EventType
from kith.runtime import Kith
from kith.settings import Settings, SettingsError, load_settings

__all__ = [
    "SYSTEM",
    "Actor",
    "Conflict",
    "Event",
    "EventType",
    "InvalidInput",
    "Kith",
    "KithError",
    "NotFound",
    "PermissionDenied",
    "Role",
    "Settings",
    "SettingsError",
    "__version__",
    "load_settings",
]
