"""Blind-index key rotation: recompute every blind index under a new random root key.

The blind-index root key is re-wrapped by KEK rotation like every root key, so retiring a KEK
never needs this. Replacing the root itself (when it, or a KEK it was ever wrapped under, may
have leaked) needs every searchable value in plaintext, so this decrypts each one and recomputes
its lookup, in resumable batches; then the name search index, keyed from the same root, is built
again, and the old root key is deleted.

While it runs, exact lookups find only the rows already recomputed (or, in processes started
before, only the rest), so run it with the servers stopped; it is quick (a decrypt and an HMAC
per row). Processes started afterwards use the new keys.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from kith import name_index
from kith.privacy.encryption import jobs, root_keys
from kith.privacy.encryption.blind_index import BlindIndex
from kith.privacy.encryption.errors import PrivacyError
from kith.privacy.encryption.field_registry import PersonalTable
from kith.privacy.encryption.lifecycle import STATE_INDEX_ROOT
from kith.privacy.encryption.protector import ERASED_MARKER, protector_of
from kith.privacy.encryption.shredding import ERASED_LOOKUP_PREFIX
from kith.privacy.encryption.table_walk import Progress, column, walk
from kith.runtime import Kith
from piccolo.columns import Column

JOB = "reindex"


@dataclass
class ReindexReport:
    from_root: str
    to_root: str
    rows_seen: int
    rows_changed: int
    names_indexed: int = 0


def _indexed(tables: dict[str, PersonalTable]) -> list[PersonalTable]:
    return [
        personal
        for _, personal in sorted(tables.items())
        if any(f.searchable for f in personal.fields)
        and column(personal, "lookup") is not None
        and column(personal, "kind") is not None
    ]


async def reindex(
    kith: Kith, batch_size: int = 500, progress: Progress | None = None
) -> ReindexReport:
    """Recompute the blind indexes under a new root key (or finish the unfinished re-index)."""
    protector = protector_of(kith)
    provider = protector.context["provider"]
    job = await jobs.get_job(JOB)
    if job is not None and job["state"] == jobs.RUNNING:
        target = str(job["details"]["target"])
        old = str(job["details"]["from"])
    else:
        old = protector.index.root_id
        target = str(await root_keys.create(provider, root_keys.BLIND_INDEX))
    root = await root_keys.load(provider, _uuid(target))
    if root is None:
        raise PrivacyError(
            f"the root key {target} of the unfinished re-index is not in kith_privacy_root_key"
        )
    new_index = BlindIndex(root, target)
    tables = _indexed(protector.context["registry"].tables)

    def columns(personal: PersonalTable) -> list[Column]:
        searchable = [f.column for f in personal.fields if f.searchable]
        names = [personal.subject_column or "id", "kind", "lookup", *searchable]
        return [c for c in (column(personal, name) for name in dict.fromkeys(names)) if c]

    async def handle(personal: PersonalTable, rows: list[dict[str, Any]]) -> int:
        table = personal.table
        pk = table._meta.primary_key
        lookup = column(personal, "lookup")
        assert lookup is not None
        searchable = next(f.column for f in personal.fields if f.searchable)
        changed = 0
        for row in rows:
            # A row without a blind index (a value of a field not declared searchable) keeps
            # having none.
            if (
                row["lookup"] is None
                or str(row["lookup"]).startswith(ERASED_LOOKUP_PREFIX)
                or row[searchable] is None
            ):
                continue
            row_id = row[pk._meta.name]
            value = (
                await protector.reveal(
                    row[personal.subject_column or "id"],
                    personal.name,
                    row_id,
                    {searchable: row[searchable]},
                )
            )[searchable]
            if value is None or value == ERASED_MARKER:
                continue
            await (
                table.update({lookup: new_index.lookup(row["kind"], value)})
                .where(pk == row_id)
                .run()
            )
            changed += 1
        return changed

    seen, changed = await walk(
        JOB,
        tables,
        columns,
        handle,
        batch_size=batch_size,
        details={"from": old, "target": target},
        progress=progress,
    )
    await jobs.set_state(STATE_INDEX_ROOT, target)
    protector.attach(protector.keys, new_index)
    # The name search index is keyed by the same root: built again under the new keys.
    names = await name_index.rebuild(kith, batch_size=batch_size)
    if old and old != target:
        # Nothing is indexed under it any more; kept, it could only confirm guesses.
        await root_keys.delete(_uuid(old))
    return ReindexReport(
        from_root=old, to_root=target, rows_seen=seen, rows_changed=changed, names_indexed=names
    )


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError as error:
        raise PrivacyError(f"{text!r} is not the id of a root key") from error
