"""The core piccolo app: its tables and migrations."""

from __future__ import annotations

from pathlib import Path

from kith.loop_tables import LOOP_TABLES
from kith.tables import CORE_TABLES
from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="kith",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=[*CORE_TABLES, *LOOP_TABLES],
)
