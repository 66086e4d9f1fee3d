"""The webhooks plugin's piccolo app: its tables and migrations."""

from __future__ import annotations

from pathlib import Path

from kith.plugins.webhooks.tables import WEBHOOK_TABLES
from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="webhooks",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=list(WEBHOOK_TABLES),
)
