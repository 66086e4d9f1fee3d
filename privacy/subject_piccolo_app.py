"""The piccolo app of the data-subject-rights tables: audit log, suppression list,
restrictions, legal holds, erasure jobs, rectifications, recipient notices, export packages.

A third app beside the encryption and workflow apps, so each part migrates on its own.
"""

from __future__ import annotations

from pathlib import Path

from kith.privacy.subject_tables import SUBJECT_TABLES
from piccolo.conf.apps import AppConfig

APP_NAME = "kith_privacy_subjects"

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=Path(__file__).parent / "subject_migrations",
    table_classes=list(SUBJECT_TABLES),
    migration_dependencies=["kith.piccolo_app", "kith.privacy.workflow_piccolo_app"],
)
