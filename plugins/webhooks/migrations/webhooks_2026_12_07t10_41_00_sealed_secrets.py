"""Subscription secrets sealed, and the previous secret kept for a rotation's grace period.

A migration holds no keys: it only adds the columns. ``kith migrate`` then seals every secret
still stored readable (the plugin's ``kith_after_migrate``) and empties the old column.
"""

from __future__ import annotations

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text, Timestamptz
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T10:41:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sealed secrets"

_PARAMS: dict[str, Any] = {
    "default": None,
    "null": True,
    "primary_key": False,
    "unique": False,
    "index": False,
    "index_method": IndexMethod.btree,
    "choices": None,
    "db_column_name": None,
    "secret": False,
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="webhooks", description=DESCRIPTION)
    for name, column_class in (
        ("sealed_secret", Text),
        ("previous_secret", Text),
        ("previous_secret_until", Timestamptz),
    ):
        manager.add_column(
            table_class_name="WebhookSubscription",
            tablename="webhooks_subscription",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=dict(_PARAMS),
            schema=None,
        )
    return manager
