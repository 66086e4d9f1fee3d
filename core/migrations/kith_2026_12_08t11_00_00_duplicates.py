"""Duplicate detection: the pairs of contacts a scan found, and the record of scans."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import JSON, UUID, ForeignKey, Integer, OnDelete, Timestamptz, Varchar
from piccolo.engine import engine_finder
from piccolo.table import Table

ID = "2026-12-08T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "duplicate pairs and scans"


# Frozen copies of the tables as this migration makes them.
class Contact(Table, tablename="kith_contact"):
    id = UUID(primary_key=True)


class DuplicatePair(Table, tablename="kith_duplicate_pair"):
    id = UUID(primary_key=True)
    contact_a = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False)
    contact_b = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False)
    score = Integer()
    reasons = JSON(default=[])
    status = Varchar(length=10, default="pending")
    found_at = Timestamptz()
    checked_at = Timestamptz()
    decided_by = Varchar(length=200, null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)


class DuplicateScan(Table, tablename="kith_duplicate_scan"):
    id = UUID(primary_key=True)
    mode = Varchar(length=20)
    started_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)
    contacts = Integer(default=0)
    compared = Integer(default=0)
    found = Integer(default=0)
    skipped_keys = Integer(default=0)


INDEXES = (
    # One row per pair; a contact's pairs are found from either side (and deleted with it).
    "CREATE UNIQUE INDEX kith_duplicate_pair_pair ON kith_duplicate_pair (contact_a, contact_b)",
    "CREATE INDEX kith_duplicate_pair_contact_b ON kith_duplicate_pair (contact_b)",
    # The list: pending pairs, best score first.
    "CREATE INDEX kith_duplicate_pair_list ON kith_duplicate_pair (status, score, id)",
    "CREATE INDEX kith_duplicate_scan_started ON kith_duplicate_scan (started_at)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for table in (Contact, DuplicatePair, DuplicateScan):
            # The SQL of this engine (the frozen copies are not bound to one).
            table._meta.db = engine
        for table in (DuplicatePair, DuplicateScan):
            for statement in table.create_table().ddl:
                await engine.run_ddl(statement)
        for statement in INDEXES:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
