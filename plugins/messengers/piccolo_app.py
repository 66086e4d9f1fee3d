"""The messengers plugin's piccolo app: its tables and migrations."""

from __future__ import annotations

from pathlib import Path

from kith.plugins.messengers.tables import MESSENGER_TABLES
from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="messengers",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=list(MESSENGER_TABLES),
)
