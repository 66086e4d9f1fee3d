"""Encrypt personal data stored before field encryption existed, then prove none is left.

``kith migrate`` runs it (through ``kith_after_migrate``) while a database still holds
plaintext: every registered personal column of every table is walked in resumable batches, each
plaintext value is encrypted under its subject's key, and the blind index of a searchable value
is recomputed from it. A final scan counts values that are still not envelopes; only when it
finds none is the database marked encrypted. Then the storage that still holds the old
plaintext is rewritten: SQLite is vacuumed and its write-ahead log truncated, PostgreSQL tables
get ``VACUUM FULL``. (Backups taken before remain plaintext: see ``docs/privacy-keys.md``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kith.logs import get_logger
from kith.privacy.encryption import jobs
from kith.privacy.encryption.envelope import PREFIX, is_envelope
from kith.privacy.encryption.errors import PrivacyError
from kith.privacy.encryption.field_registry import PersonalTable
from kith.privacy.encryption.lifecycle import STATE_PLAINTEXT
from kith.privacy.encryption.protector import PrivacyProtector, protector_of
from kith.privacy.encryption.shredding import ERASED_LOOKUP_PREFIX
from kith.privacy.encryption.table_walk import Progress, column, walk
from kith.runtime import Kith
from piccolo.columns import Column
from piccolo.engine.postgres import PostgresEngine

JOB = "encrypt-plaintext"
_log = get_logger("kith.privacy")


@dataclass
class PlaintextReport:
    rows_seen: int
    rows_encrypted: int
    leftover: dict[str, int]


def _lookup_columns(personal: PersonalTable) -> tuple[Column | None, Column | None]:
    """The blind-index column and the kind column of a table with a searchable field."""
    if not any(f.searchable for f in personal.fields):
        return None, None
    return column(personal, "lookup"), column(personal, "kind")


async def _usable(tables: dict[str, PersonalTable]) -> list[PersonalTable]:
    """The tables to walk. One whose rows cannot be tied to a subject (no single foreign key to
    the contact table) can only have been written through the protector; it is checked, not
    walked."""
    usable = []
    for name, personal in sorted(tables.items()):
        if personal.subject_column is not None:
            usable.append(personal)
            continue
        left = await _plaintext_counts(personal)
        if left:
            raise PrivacyError(
                f"{name} holds plaintext personal data ({', '.join(left)}) but its rows cannot "
                "be tied to a contact (no single foreign key to the contact table), so it "
                "cannot be encrypted automatically"
            )
    return usable


async def _plaintext_counts(personal: PersonalTable) -> dict[str, int]:
    found: dict[str, int] = {}
    table = personal.table
    for personal_field in personal.fields:
        col = column(personal, personal_field.column)
        assert col is not None
        count = await table.count().where(col.is_not_null() & col.not_like(f"{PREFIX}%"))
        if count:
            found[personal_field.key] = count
    lookup, _kind = _lookup_columns(personal)
    if lookup is not None:
        # A blind index is 64 hex characters; anything else (but an erased marker) is the
        # plaintext protector's "kind:value".
        name = lookup._meta.db_column_name
        rows = await table.raw(
            f"SELECT COUNT(*) AS n FROM {personal.name} WHERE {name} NOT LIKE {{}} AND "
            f"(LENGTH({name}) <> 64 OR {name} LIKE {{}} OR {name} LIKE {{}})",
            f"{ERASED_LOOKUP_PREFIX}%",
            "%:%",
            "%@%",
        ).run()
        count = int(rows[0]["n"]) if rows else 0
        if count:
            found[f"{personal.name}.lookup"] = count
    return found


async def leftover(protector: PrivacyProtector) -> dict[str, int]:
    """``table.column`` → how many values are not encrypted (plaintext blind indexes too)."""
    found: dict[str, int] = {}
    for _, personal in sorted(protector.context["registry"].tables.items()):
        found.update(await _plaintext_counts(personal))
    return found


async def encrypt_existing(
    kith: Kith, batch_size: int = 500, progress: Progress | None = None
) -> PlaintextReport:
    """Encrypt every plaintext personal value (resumable), verify, and scrub old storage."""
    protector = protector_of(kith)
    tables = await _usable(protector.context["registry"].tables)

    def columns(personal: PersonalTable) -> list[Column]:
        wanted = [column(personal, personal.subject_column or "id")]
        wanted += [column(personal, f.column) for f in personal.fields]
        wanted += [c for c in _lookup_columns(personal) if c is not None]
        unique: dict[str, Column] = {}
        for col in wanted:
            if col is not None:
                unique[col._meta.name] = col
        return list(unique.values())

    async def handle(personal: PersonalTable, rows: list[dict[str, Any]]) -> int:
        table = personal.table
        pk = table._meta.primary_key
        lookup, kind = _lookup_columns(personal)
        changed = 0
        for row in rows:
            plain = {
                f.column: row[f.column]
                for f in personal.fields
                if row[f.column] is not None and not is_envelope(row[f.column])
            }
            if not plain:
                continue
            row_id = row[pk._meta.name]
            stored = await protector.protect(
                row[personal.subject_column or "id"], personal.name, row_id, plain
            )
            values: dict[Column, Any] = {column(personal, name): v for name, v in stored.items()}
            # A row without a kind has no blind index (a custom field not declared searchable).
            if lookup is not None and kind is not None and row["kind"] is not None:
                searchable = [
                    f.column for f in personal.fields if f.searchable and f.column in plain
                ]
                if searchable:
                    values[lookup] = protector.lookup_key(row["kind"], plain[searchable[0]])
            await table.update(values).where(pk == row_id).run()
            changed += 1
        return changed

    seen, changed = await walk(
        JOB, tables, columns, handle, batch_size=batch_size, progress=progress
    )
    left = await leftover(protector)
    if left:
        raise PrivacyError(
            "personal data is still stored in plaintext after encrypting: "
            + ", ".join(f"{key} ({count})" for key, count in left.items())
        )
    await jobs.set_state(STATE_PLAINTEXT, jobs.DONE)
    protector.allow_plaintext = False
    if changed:
        await scrub(kith, tables)
    return PlaintextReport(rows_seen=seen, rows_encrypted=changed, leftover=left)


async def scrub(kith: Kith, tables: list[PersonalTable]) -> None:
    """Rewrite storage so that the replaced plaintext is not left in free pages or the log."""
    engine = kith.database.engine
    if isinstance(engine, PostgresEngine):
        for personal in tables:
            # Plain VACUUM only marks dead rows reusable; FULL rewrites the table's files.
            await engine.run_ddl(f'VACUUM FULL "{personal.name}"')
        return
    await engine.run_ddl("PRAGMA wal_checkpoint(TRUNCATE)")
    await engine.run_ddl("VACUUM")
    await engine.run_ddl("PRAGMA wal_checkpoint(TRUNCATE)")
    _log.info("privacy plaintext scrubbed", tables=[p.name for p in tables])
