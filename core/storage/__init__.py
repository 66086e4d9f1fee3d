"""Storage: the database engine for the configured URL, piccolo apps and their migrations."""

from kith.storage.database import Database, MigrationState, NotMigratedError

__all__ = ["Database", "MigrationState", "NotMigratedError"]
