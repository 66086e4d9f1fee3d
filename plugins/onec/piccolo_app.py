"""The 1C plugin's piccolo app: its tables and migrations."""

from __future__ import annotations

from pathlib import Path

from kith.plugins.onec.tables import ONEC_TABLES
from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="onec",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=list(ONEC_TABLES),
)
