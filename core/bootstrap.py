"""Open a Kith installation from its settings: the one way HTTP, CLI, worker and tests start."""

from __future__ import annotations

from kith.piccolo_app import APP_CONFIG
from kith.runtime import Kith
from kith.settings import Settings, load_settings
from kith.storage import Database


def open_kith(settings: Settings | None = None) -> Kith:
    settings = settings or load_settings()
    return Kith(settings, Database(settings, [APP_CONFIG]))
