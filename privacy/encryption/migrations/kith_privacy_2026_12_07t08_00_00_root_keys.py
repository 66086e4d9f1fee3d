"""Root keys of the keyed hashes (blind indexes, suppression list, subject requests), wrapped
under a key-encryption key so that they outlive it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import Column
from piccolo.columns.column_types import UUID, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.defaults.uuid import UUID4
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T08:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "root keys"


def _params(**changes: object) -> dict[str, object]:
    params: dict[str, object] = {
        "null": False,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": False,
    }
    params.update(changes)
    return params


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith_privacy", description=DESCRIPTION)
    manager.add_table(class_name="RootKey", tablename="kith_privacy_root_key", schema=None)
    columns: list[tuple[str, type[Column], dict[str, object]]] = [
        ("id", UUID, _params(default=UUID4(), primary_key=True)),
        ("purpose", Varchar, _params(length=40, default="", index=True)),
        ("kek_id", Varchar, _params(length=64, default="", index=True)),
        ("wrapped", Text, _params(default="")),
        ("created_at", Timestamptz, _params(default=TimestamptzNow())),
        ("rewrapped_at", Timestamptz, _params(default=None, null=True)),
    ]
    for name, column_class, params in columns:
        manager.add_column(
            table_class_name="RootKey",
            tablename="kith_privacy_root_key",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
