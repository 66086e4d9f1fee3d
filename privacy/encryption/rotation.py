"""Key-encryption key rotation without downtime: a new KEK, then every data key re-wrapped.

``rotate`` asks the provider for a new KEK (it becomes current at once, so every process wraps
new data keys under it from then on) and re-wraps the existing data keys in batches. Each batch
commits together with the job's cursor, so a crash loses at most one batch and running the
command again continues where it stopped, with the same target KEK. Servers keep serving all
along: a data key row is always consistent (its ``kek_id`` names the KEK it is wrapped under)
and the provider still holds the old KEKs, so readers unwrap under either.

Data keys are not re-generated, so no field has to be re-encrypted: rotating the KEK protects
against a KEK that leaked or is old, not against a leaked data key (shred and re-create for
that). The root keys of the keyed hashes (blind indexes, suppression list) are re-wrapped too, so
no hash depends on an old KEK. Old KEKs stay in the provider until ``prune`` finds nothing using
them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kith.events import utcnow
from kith.privacy.encryption import jobs, root_keys
from kith.privacy.encryption.errors import PrivacyError
from kith.privacy.encryption.keys import decode_wrapped, encode_wrapped, wrap_context
from kith.privacy.encryption.protector import protector_of
from kith.privacy.encryption.tables import DataKey
from kith.runtime import Kith
from piccolo.query.functions.aggregate import Count

JOB = "rotate-kek"
DEFAULT_BATCH = 500
# Sweeps after the first: a process may have wrapped a new key under the old KEK just before it
# noticed the new one; it is picked up on the next sweep.
MAX_SWEEPS = 5

Progress = Callable[[int, int], None]


@dataclass
class RotationReport:
    target: str
    rewrapped: int
    resumed: bool


@dataclass
class KeyStatus:
    current: str
    provider_keks: list[str]
    data_keys: dict[str, int]
    root_keys: dict[str, int]
    jobs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def in_use(self) -> list[str]:
        used = {self.current, *self.data_keys, *self.root_keys}
        for job in self.jobs:
            if job["state"] == jobs.RUNNING and job["details"].get("target"):
                used.add(str(job["details"]["target"]))
        return sorted(used)

    @property
    def unused(self) -> list[str]:
        return sorted(set(self.provider_keks) - set(self.in_use))


async def _count_not_under(target: str) -> int:
    row = await DataKey.select(Count()).where(DataKey.kek_id != target).first()
    return int(row["count"]) if row else 0


async def rotate(
    kith: Kith,
    batch_size: int = DEFAULT_BATCH,
    pause: float = 0.0,
    progress: Progress | None = None,
) -> RotationReport:
    """Create a new KEK (or resume the unfinished rotation) and re-wrap every data key."""
    if batch_size < 1:
        raise PrivacyError("the batch size must be at least 1")
    provider = protector_of(kith).context["provider"]
    job = await jobs.get_job(JOB)
    resumed = job is not None and job["state"] == jobs.RUNNING
    if job is not None and resumed:
        target = str(job["details"]["target"])
        if target not in await provider.kek_ids():
            raise PrivacyError(
                f"the unfinished rotation re-wraps under {target}, which the key provider does "
                "not have; restore the key file that holds it"
            )
        cursor, done = str(job["cursor"]), int(job["done"])
    else:
        target = await provider.create_kek()
        job = await jobs.begin_job(JOB, {"target": target}, await _count_not_under(target))
        cursor, done = "", 0
    total = max(int(job["total"]), done)

    engine = DataKey._meta.db
    for _sweep in range(MAX_SWEEPS + 1):
        while True:
            async with engine.transaction():
                query = DataKey.select().where(DataKey.kek_id != target)
                if cursor:
                    query = query.where(DataKey.id > uuid.UUID(cursor))
                rows = await query.order_by(DataKey.id).limit(batch_size).run()
                if not rows:
                    break
                for row in rows:
                    context = wrap_context(row["subject"], row["id"])
                    raw = await provider.unwrap(
                        row["kek_id"], decode_wrapped(row["wrapped"]), context
                    )
                    wrapped = await provider.wrap(target, raw, context)
                    await (
                        DataKey.update(
                            {
                                DataKey.kek_id: target,
                                DataKey.wrapped: encode_wrapped(wrapped),
                                DataKey.rewrapped_at: utcnow(),
                            }
                        )
                        # Unchanged since read: a shred in between wins.
                        .where((DataKey.id == row["id"]) & (DataKey.kek_id == row["kek_id"]))
                        .run()
                    )
                cursor = str(rows[-1]["id"])
                done += len(rows)
                total = max(total, done)
                await jobs.save_progress(JOB, cursor, done, total=total)
            if progress is not None:
                progress(done, total)
            if pause:
                await asyncio.sleep(pause)
        remaining = await _count_not_under(target)
        if remaining == 0:
            break
        cursor = ""
        total = done + remaining
    else:
        raise PrivacyError(
            f"{await _count_not_under(target)} data keys are still wrapped under older KEKs "
            f"after {MAX_SWEEPS} sweeps: a process is still creating keys under an old KEK; "
            "restart it and run the rotation again"
        )
    # The root keys of the keyed hashes: a few rows, so in one go.
    await root_keys.rewrap_all(provider, target)
    await jobs.finish_job(JOB)
    return RotationReport(target=target, rewrapped=done, resumed=resumed)


async def status(kith: Kith) -> KeyStatus:
    """Which KEKs exist, which are in use and by how many data keys, and the jobs' progress."""
    provider = protector_of(kith).context["provider"]
    counts = await DataKey.select(DataKey.kek_id, Count()).group_by(DataKey.kek_id).run()
    found = []
    for name in (JOB, "reindex", "encrypt-plaintext"):
        job = await jobs.get_job(name)
        if job is not None:
            found.append(job)
    return KeyStatus(
        current=await provider.current_kek_id(),
        provider_keks=await provider.kek_ids(),
        data_keys={row["kek_id"]: int(row["count"]) for row in counts},
        root_keys=await root_keys.count_by_kek(),
        jobs=found,
    )


async def prune(kith: Kith) -> list[str]:
    """Retire the KEKs nothing uses any more; returns their ids."""
    provider = protector_of(kith).context["provider"]
    current = await status(kith)
    for kek_id in current.unused:
        await provider.retire_kek(kek_id)
    return current.unused
