"""The field-encryption piccolo app: data keys, tombstones, state and job progress."""

from __future__ import annotations

from pathlib import Path

from kith.privacy.encryption.tables import PRIVACY_TABLES
from piccolo.conf.apps import AppConfig

APP_NAME = "kith_privacy"

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=list(PRIVACY_TABLES),
    migration_dependencies=["kith.piccolo_app"],
)
