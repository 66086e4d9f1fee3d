"""The name search index: keyed hashes of the prefixes of every word of a contact's name, and
the record of which keys it was completely built with. ``kith migrate`` builds it for the
contacts already there (``kith_after_migrate``)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import (
    UUID,
    BigInt,
    BigSerial,
    ForeignKey,
    OnDelete,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.engine import engine_finder
from piccolo.table import Table

ID = "2026-12-07T09:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "name search index"


# Frozen copies of the tables as this migration makes them.
class Contact(Table, tablename="kith_contact"):
    id = UUID(primary_key=True)


class NameToken(Table, tablename="kith_name_token"):
    id = BigSerial(primary_key=True)
    token = BigInt()
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False)
    source = BigInt()


class NameIndexState(Table, tablename="kith_name_index"):
    id = Serial(primary_key=True)
    fingerprint = Varchar(length=64)
    built_at = Timestamptz()


INDEXES = (
    # A search reads one token's contacts in contact order, from a cursor on.
    "CREATE INDEX kith_name_token_search ON kith_name_token (token, contact)",
    # A changed or erased contact's tokens are found without reading anyone else's.
    "CREATE INDEX kith_name_token_contact ON kith_name_token (contact, source)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="kith", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for table in (Contact, NameToken, NameIndexState):
            # The SQL of this engine (the frozen copies are not bound to one).
            table._meta.db = engine
        for table in (NameToken, NameIndexState):
            for statement in table.create_table().ddl:
                await engine.run_ddl(statement)
        for statement in INDEXES:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
