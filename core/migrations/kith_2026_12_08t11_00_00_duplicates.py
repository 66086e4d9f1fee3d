"""Duplicate detection: the pairs of contacts a scan found, the record of scans, and the keys a
running full scan compares through."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import (
    JSON,
    UUID,
    BigInt,
    BigSerial,
    ForeignKey,
    Integer,
    OnDelete,
    Timestamptz,
    Varchar,
)
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


class DuplicateBlock(Table, tablename="kith_duplicate_block"):
    id = BigSerial(primary_key=True)
    scan = ForeignKey(references=DuplicateScan, on_delete=OnDelete.cascade, null=False)
    token = BigInt(null=True, default=None)
    lookup = Varchar(length=128, null=True, default=None)


INDEXES = (
    # One row per pair; a contact's pairs are found from either side (and deleted with it).
    "CREATE UNIQUE INDEX kith_duplicate_pair_pair ON kith_duplicate_pair (contact_a, contact_b)",
    "CREATE INDEX kith_duplicate_pair_contact_b ON kith_duplicate_pair (contact_b)",
    # The list: pending pairs, best score first.
    "CREATE INDEX kith_duplicate_pair_list ON kith_duplicate_pair (status, score, id)",
    "CREATE INDEX kith_duplicate_scan_started ON kith_duplicate_scan (started_at)",
    # A running scan probes its keys.
    "CREATE INDEX kith_duplicate_block_token ON kith_duplicate_block (scan, token)",
    "CREATE INDEX kith_duplicate_block_lookup ON kith_duplicate_block (scan, lookup)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for table in (Contact, DuplicatePair, DuplicateScan, DuplicateBlock):
            # The SQL of this engine (the frozen copies are not bound to one).
            table._meta.db = engine
        for table in (DuplicatePair, DuplicateScan, DuplicateBlock):
            for statement in table.create_table().ddl:
                await engine.run_ddl(statement)
        for statement in INDEXES:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
