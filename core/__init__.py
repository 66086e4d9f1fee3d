"""Kith: a self-hostable, plugin-based CRM with privacy engineering built in."""

from __future__ import annotations

__version__ = "0.1.0"

from kith.actor import SYSTEM, Actor, Role
from kith.errors import Conflict, InvalidInput, KithError, NotFound, PermissionDenied
from kith.events import Event, EventType
from kith.hookspecs import hookimpl
from kith.personal import PersonalField
from kith.runtime import Kith
from kith.settings import Settings, SettingsError, load_settings
from kith.subjects import ErasureOutcome, ExportSection, Subscriber

__all__ = [
    "SYSTEM",
    "Actor",
    "Conflict",
    "ErasureOutcome",
    "Event",
    "EventType",
    "ExportSection",
    "InvalidInput",
    "Kith",
    "KithError",
    "NotFound",
    "PermissionDenied",
    "PersonalField",
    "Role",
    "Settings",
    "SettingsError",
    "Subscriber",
    "__version__",
    "hookimpl",
    "load_settings",
]
