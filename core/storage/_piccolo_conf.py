"""The module piccolo reads its engine and apps from (``PICCOLO_CONF``).

Kith sets ``DB`` and ``APP_REGISTRY`` at run time from its settings and plugins, so piccolo's
migration machinery and ``engine_finder()`` see the same engine as the rest of Kith.
"""

from __future__ import annotations

from piccolo.conf.apps import AppRegistry
from piccolo.engine.base import Engine

DB: Engine | None = None
APP_REGISTRY = AppRegistry(apps=[])
