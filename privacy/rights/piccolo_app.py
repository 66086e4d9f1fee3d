"""The rights plugin's piccolo app: consent ledger, audit log, suppression list, restrictions,
legal holds, erasure jobs, rectifications, recipient notices and export packages.

Its app name, ``kith_privacy_subjects``, is the one installations made before the privacy
module became three plugins recorded their migrations under; it is kept so they carry on.
"""

from __future__ import annotations

from pathlib import Path

from kith.privacy.rights.tables import RIGHTS_TABLES
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import AppConfig

APP_NAME = "kith_privacy_subjects"


async def ran_before(app_name: str, migration_id: str) -> bool:
    """Whether this database ran a migration of the layout before the three plugins (its
    tables exist already, so the migration that moved them here must not create them)."""
    return bool(
        await Migration.exists().where(
            (Migration.app_name == app_name) & (Migration.name == migration_id)
        )
    )


APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=list(RIGHTS_TABLES),
    migration_dependencies=["kith.piccolo_app"],
)
