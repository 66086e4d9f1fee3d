"""An erasure job's last error is a personal field now, sealed under the person's key.

A migration holds no keys, so it does not seal the errors already stored: it asks the privacy
plugin to, by marking the database as holding plaintext again; ``kith migrate`` then encrypts
every personal value that is not yet an envelope (these errors) once the schema is migrated,
and rewrites the storage the old text lived in. The error of a person whose key is already
destroyed cannot be sealed for them any more, and is dropped, as erasing them promised.
"""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-07T10:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "erasure job errors sealed"

# The envelope prefix and the plaintext state of the privacy.encryption plugin, whose tables
# this app's erasures already depend on.
ENVELOPE_PREFIX = "$k1$"
STATE_PLAINTEXT = "plaintext_encrypted"


async def reseal() -> None:
    """Drop the errors of erased people; have the rest sealed by ``kith migrate``."""
    engine = engine_finder()
    assert engine is not None

    async def readable() -> int:
        rows = await engine.run_querystring(
            QueryString(
                "SELECT COUNT(*) AS n FROM kith_privacy_erasure_job "
                "WHERE last_error IS NOT NULL AND last_error NOT LIKE {}",
                ENVELOPE_PREFIX + "%",
            )
        )
        return int(rows[0]["n"]) if rows else 0

    # A new installation has none (and the privacy tables may not be made yet).
    if not await readable():
        return
    await engine.run_querystring(
        QueryString(
            "UPDATE kith_privacy_erasure_job SET last_error = NULL "
            "WHERE last_error IS NOT NULL AND contact_id IN "
            "(SELECT subject FROM kith_privacy_tombstone)"
        )
    )
    if await readable():
        await engine.run_querystring(
            QueryString(
                "UPDATE kith_privacy_state SET value = {} WHERE name = {}",
                "pending",
                STATE_PLAINTEXT,
            )
        )


async def forwards() -> MigrationManager:
    manager = MigrationManager(
        migration_id=ID, app_name="kith_privacy_subjects", description=DESCRIPTION
    )
    manager.alter_column(
        table_class_name="ErasureJob",
        tablename="kith_privacy_erasure_job",
        column_name="last_error",
        db_column_name="last_error",
        params={"secret": True},
        old_params={"secret": False},
        column_class=Text,
        old_column_class=Text,
        schema=None,
    )
    manager.add_raw(reseal)
    return manager
