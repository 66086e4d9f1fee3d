"""The telephony plugin's piccolo app: its tables and migrations."""

from __future__ import annotations

from pathlib import Path

from kith.plugins.telephony.tables import TELEPHONY_TABLES
from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="telephony",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=list(TELEPHONY_TABLES),
)
