"""The privacy workflow's piccolo app: consent ledger, notices, subject requests, certificates.

A second app beside the encryption tables' app, so each half migrates on its own.
"""

from __future__ import annotations

from pathlib import Path

from kith.privacy.workflow_tables import WORKFLOW_TABLES
from piccolo.conf.apps import AppConfig

APP_NAME = "kith_privacy_workflow"

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=Path(__file__).parent / "workflow_migrations",
    table_classes=list(WORKFLOW_TABLES),
    migration_dependencies=["kith.piccolo_app"],
)
