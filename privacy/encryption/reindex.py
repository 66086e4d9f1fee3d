"""Blind-index key rotation: recompute every blind index under keys from the current KEK.

Blind indexes stay on the KEK they were first derived from when KEKs rotate (re-wrapping data
keys does not touch them). Moving them to the current KEK needs every searchable value in
plaintext, so this decrypts each one and recomputes its lookup, in resumable batches; then the
name search index, keyed from the same root, is built again. Run it
after ``kith privacy keys rotate`` when the old KEK should be retired or may have leaked.

While it runs, exact lookups find only the rows already recomputed (or, in processes started
before, only the rest), so run it with the servers stopped; it is quick (a decrypt and an HMAC
per row). Processes started afterwards use the new keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kith import name_index
from kith.privacy.encryption import jobs
from kith.privacy.encryption.blind_index import BlindIndex, derive_root
from kith.privacy.encryption.errors import PrivacyError
from kith.privacy.encryption.field_registry import PersonalTable
from kith.privacy.encryption.lifecycle import STATE_INDEX_KEK
from kith.privacy.encryption.protector import ERASED_MARKER, protector_of
from kith.privacy.encryption.shredding import ERASED_LOOKUP_PREFIX
from kith.privacy.encryption.table_walk import Progress, column, walk
from kith.runtime import Kith
from piccolo.columns import Column

JOB = "reindex"


@dataclass
class ReindexReport:
    from_kek: str
    to_kek: str
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
) -> ReindexReport | None:
    """Recompute the blind indexes under the current KEK; None when they already use it."""
    protector = protector_of(kith)
    provider = protector.context["provider"]
    job = await jobs.get_job(JOB)
    old = protector.index.kek_id
    if job is not None and job["state"] == jobs.RUNNING:
        target = str(job["details"]["target"])
        old = str(job["details"]["from"])
    else:
        target = await provider.current_kek_id()
        if target == old:
            return None
    if target not in await provider.kek_ids():
        raise PrivacyError(f"the re-index target {target} is not in the key provider")
    new_index = BlindIndex(await derive_root(provider, target), target)
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
            if str(row["lookup"]).startswith(ERASED_LOOKUP_PREFIX) or row[searchable] is None:
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
    await jobs.set_state(STATE_INDEX_KEK, target)
    protector.attach(protector.keys, new_index)
    # The name search index is keyed by the same root: built again under the new keys.
    names = await name_index.rebuild(kith, batch_size=batch_size)
    return ReindexReport(
        from_kek=old, to_kek=target, rows_seen=seen, rows_changed=changed, names_indexed=names
    )
