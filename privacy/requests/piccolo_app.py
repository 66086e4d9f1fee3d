"""The requests plugin's piccolo app: data subject requests, their history and certificates.

Its app name, ``kith_privacy_workflow``, is the one installations made before the privacy
module became three plugins recorded their migrations under; it is kept so they carry on.
"""

from __future__ import annotations

from pathlib import Path

from kith.privacy.requests.tables import REQUEST_TABLES
from piccolo.conf.apps import AppConfig

APP_NAME = "kith_privacy_workflow"

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=list(REQUEST_TABLES),
    # The consent ledger's tables, which the rights app creates, came first in earlier versions.
    migration_dependencies=["kith.piccolo_app", "kith.privacy.rights.piccolo_app"],
)
