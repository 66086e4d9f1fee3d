"""The web forms plugin's piccolo app: its tables and migrations."""

from __future__ import annotations

from pathlib import Path

from kith.plugins.webforms.tables import WEBFORM_TABLES
from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="webforms",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=list(WEBFORM_TABLES),
)
