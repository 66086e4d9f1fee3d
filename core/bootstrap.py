"""Open a Kith installation from its settings: the one way HTTP, CLI, worker and tests start."""

from __future__ import annotations

from kith.mail import MAIL_SUBSCRIBER
from kith.plugin_manager import KithPluginManager, load_plugin_manager
from kith.runtime import Kith
from kith.settings import Settings, load_settings
from kith.storage import Database


def open_kith(
    settings: Settings | None = None, plugin_manager: KithPluginManager | None = None
) -> Kith:
    """Kith with the plugins of ``plugin_manager`` (default: a fresh one with the plugins the
    environment selects): their piccolo apps, event types, subscribers, personal fields and
    field protector, their settings sections validated."""
    settings = settings or load_settings()
    plugins = plugin_manager if plugin_manager is not None else load_plugin_manager()
    plugins.check_hooks()
    plugins.check_settings(settings)
    kith = Kith(settings, Database(settings, plugins.apps()))
    kith.plugins = plugins
    kith.personal_fields = plugins.personal_fields()
    kith.event_types = {event_type.name: event_type for event_type in plugins.event_types()}
    # Core's own subscriber sends queued email (kith.mail), after the plugins'.
    kith.subscribers = [*plugins.subscribers(), MAIL_SUBSCRIBER]
    protector = plugins.field_protector(kith)
    if protector is not None:
        kith.protector = protector
    return kith
