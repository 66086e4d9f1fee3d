"""What ``kith onec status`` shows: the last steps of exchanges and syncs, and the totals."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from kith import Kith
from kith.plugins.onec.settings import onec_settings
from kith.plugins.onec.tables import (
    OnecConflict,
    OnecExchange,
    OnecLink,
    OnecNotice,
    json_value,
)


class Step(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    channel: str
    action: str
    filename: str
    state: str
    counts: dict[str, Any]
    error: str
    started_at: dt.datetime
    finished_at: dt.datetime | None


class OnecStatus(msgspec.Struct, kw_only=True):
    exchange_user: str
    odata_url: str
    counterparties: int
    documents: int
    notices_pending: int
    conflicts: int
    recent: list[Step]


async def status_of(kith: Kith, limit: int = 10) -> OnecStatus:
    settings = onec_settings(kith)
    rows = (
        await OnecExchange.select()
        .order_by(OnecExchange.started_at, ascending=False)
        .order_by(OnecExchange.id, ascending=False)
        .limit(max(1, min(limit, 1000)))
    )
    return OnecStatus(
        exchange_user=settings.exchange_user,
        odata_url=settings.odata_url,
        counterparties=int(
            await OnecLink.count().where(
                (OnecLink.kind == "counterparty") & (OnecLink.state == "active")
            )
        ),
        documents=int(
            await OnecLink.count().where(
                (OnecLink.kind == "document") & (OnecLink.state == "active")
            )
        ),
        notices_pending=int(
            await OnecNotice.count().where(OnecNotice.state.is_in(["pending", "offered", "failed"]))
        ),
        conflicts=int(await OnecConflict.count()),
        recent=[
            Step(
                id=row["id"],
                channel=row["channel"],
                action=row["action"],
                filename=row["filename"],
                state=row["state"],
                counts=json_value(row["counts"]),
                error=row["error"],
                started_at=row["started_at"],
                finished_at=row["finished_at"],
            )
            for row in rows
        ],
    )
