"""The plugin's piccolo app: ``kith migrate`` applies the migrations in ``migrations/``."""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppConfig

from kith_example.tables import Welcome

APP_CONFIG = AppConfig(
    app_name="kith_example",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=[Welcome],
)
