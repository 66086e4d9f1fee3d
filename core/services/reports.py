"""The KPIs a small firm steers by, each one SQL aggregate on both engines: no contact row is
loaded into Python, and no personal value is read (counts, sources, tiers and times only)."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

import msgspec
from kith.errors import NotFound
from kith.loop_settings import ReportSettings
from kith.loop_sql import Dialect, missed
from kith.runtime import Kith
from kith.services.tiers import TierService
from piccolo.querystring import QueryString


class Report(msgspec.Struct, kw_only=True):
    """One KPI report: a table of ``columns`` and ``rows``."""

    name: str
    description: str
    generated_at: dt.datetime
    columns: list[str]
    rows: list[list[Any]]


COLUMNS: dict[str, list[str]] = {
    "new-contacts": ["week", "source", "contacts", "leads"],
    "conversion": ["source", "contacts", "customers", "conversion_pct"],
    "callback-time": ["missed_calls", "called_back", "median_s", "p90_s"],
    "tasks-on-time": ["on_time", "late", "open_overdue", "on_time_pct"],
    "calls-answered": ["inbound", "answered", "answered_pct"],
    "revenue-by-tier": ["tier", "currency", "orders", "revenue"],
    "stale-data": ["contacts", "stale", "stale_pct"],
}


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal | float):
        # Both engines alike: 50.0 and Decimal('50.000') are 50; rates to two places.
        rounded = round(float(value), 2)
        return int(rounded) if rounded.is_integer() else rounded
    return value


def _share(part: str, whole: str) -> str:
    return f"CASE WHEN {whole} = 0 THEN NULL ELSE 100.0 * {part} / {whole} END"


class ReportService:
    """KPI reports by name (``REPORTS``)."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith
        self.sql = Dialect(kith.database)
        self.settings = ReportSettings.from_settings(kith.settings)
        self.reports: dict[str, tuple[str, Callable[[dt.datetime], tuple[str, list[Any]]]]] = {
            "new-contacts": (
                "New contacts and leads by source per week (UTC, from Monday)",
                self._new_contacts,
            ),
            "conversion": (
                "Lead to customer: contacts by source and how many have ordered",
                self._conversion,
            ),
            "callback-time": (
                "Missed inbound calls and the time to the first call back "
                "(nearest-rank median and 90th percentile, seconds)",
                self._callback,
            ),
            "tasks-on-time": (
                "Tasks with a due time: done on time, done late, open and overdue",
                self._tasks,
            ),
            "calls-answered": ("Inbound calls answered (with talk time)", self._calls),
            "revenue-by-tier": ("Orders and revenue by value tier and currency", self._revenue),
            "stale-data": (
                "Contacts untouched (no change, no interaction) for the stale period",
                self._stale,
            ),
        }

    def names(self) -> list[tuple[str, str]]:
        return [(name, description) for name, (description, _) in self.reports.items()]

    async def run(self, name: str, now: dt.datetime | None = None) -> Report:
        if name not in self.reports:
            known = ", ".join(self.reports)
            raise NotFound(f"there is no report {name!r}; the reports are {known}")
        now = now or self.kith.bus.dispatcher.now()
        description, build = self.reports[name]
        query, args = build(now)
        rows: Any = await self.kith.database.engine.run_querystring(QueryString(query, *args))
        columns = COLUMNS[name]
        return Report(
            name=name,
            description=description,
            generated_at=now,
            columns=columns,
            rows=[[_plain(row[c]) for c in columns] for row in rows],
        )

    def _new_contacts(self, now: dt.datetime) -> tuple[str, list[Any]]:
        lead = self.sql.has_tag("c.tags", self.sql.text_slot())
        return (
            f"SELECT {self.sql.week('c.created_at')} AS week, c.source AS source,"
            f" COUNT(*) AS contacts, SUM(CASE WHEN {lead} THEN 1 ELSE 0 END) AS leads"
            " FROM kith_contact c GROUP BY week, source ORDER BY week, source",
            [self.settings.lead_tag],
        )

    def _conversion(self, now: dt.datetime) -> tuple[str, list[Any]]:
        ordered = (
            "EXISTS (SELECT 1 FROM kith_interaction i WHERE i.contact = c.id AND i.kind = 'order')"
        )
        return (
            "SELECT x.source, x.contacts, x.customers,"
            f" {_share('x.customers', 'x.contacts')} AS conversion_pct FROM"
            " (SELECT c.source AS source, COUNT(*) AS contacts,"
            f" SUM(CASE WHEN {ordered} THEN 1 ELSE 0 END) AS customers"
            " FROM kith_contact c GROUP BY c.source) x ORDER BY x.source",
            [],
        )

    def _callback(self, now: dt.datetime) -> tuple[str, list[Any]]:
        back = (
            "SELECT MIN(r.occurred_at) FROM kith_interaction r WHERE r.contact = m.contact"
            " AND r.kind = 'call' AND r.direction = 'outbound' AND r.occurred_at > m.occurred_at"
        )
        return (
            f"WITH missed AS (SELECT m.occurred_at AS at, ({back}) AS back FROM kith_interaction m"
            f" WHERE {missed('m')} AND m.direction = 'inbound'),"
            f" delays AS (SELECT {self.sql.seconds_between('at', 'back')} AS s FROM missed"
            " WHERE back IS NOT NULL),"
            " ranked AS (SELECT s, ROW_NUMBER() OVER (ORDER BY s) AS rn,"
            " COUNT(*) OVER () AS n FROM delays)"
            " SELECT (SELECT COUNT(*) FROM missed) AS missed_calls,"
            " (SELECT COUNT(*) FROM delays) AS called_back,"
            " (SELECT MIN(s) FROM ranked WHERE rn >= 0.5 * n) AS median_s,"
            " (SELECT MIN(s) FROM ranked WHERE rn >= 0.9 * n) AS p90_s",
            [],
        )

    def _tasks(self, now: dt.datetime) -> tuple[str, list[Any]]:
        return (
            "SELECT x.on_time, x.late, x.open_overdue,"
            f" {_share('x.on_time', '(x.on_time + x.late + x.open_overdue)')} AS on_time_pct"
            " FROM (SELECT"
            " COALESCE(SUM(CASE WHEN done_at IS NOT NULL AND done_at <= due_at THEN 1 ELSE 0"
            " END), 0) AS on_time,"
            " COALESCE(SUM(CASE WHEN done_at IS NOT NULL AND done_at > due_at THEN 1 ELSE 0"
            " END), 0) AS late,"
            " COALESCE(SUM(CASE WHEN done_at IS NULL AND due_at < {} THEN 1 ELSE 0 END), 0)"
            " AS open_overdue FROM kith_interaction WHERE kind = 'task' AND due_at IS NOT NULL) x",
            [now],
        )

    def _calls(self, now: dt.datetime) -> tuple[str, list[Any]]:
        return (
            "SELECT x.inbound, x.answered, "
            f"{_share('x.answered', 'x.inbound')} AS answered_pct FROM (SELECT COUNT(*) AS inbound,"
            " COALESCE(SUM(CASE WHEN duration_s > 0 THEN 1 ELSE 0 END), 0) AS answered"
            " FROM kith_interaction WHERE kind = 'call' AND direction = 'inbound') x",
            [],
        )

    def _revenue(self, now: dt.datetime) -> tuple[str, list[Any]]:
        currency = TierService(self.kith)._currency()
        return (
            "SELECT COALESCE(t.tier, '-') AS tier, "
            f"{currency} AS currency, COUNT(*) AS orders, SUM(i.amount) AS revenue"
            " FROM kith_interaction i LEFT JOIN kith_contact_tier t ON t.contact = i.contact"
            " WHERE i.kind = 'order' GROUP BY tier, currency ORDER BY tier, currency",
            [],
        )

    def _stale(self, now: dt.datetime) -> tuple[str, list[Any]]:
        cutoff = now - dt.timedelta(days=round(self.settings.stale_months * 30.44))
        return (
            f"SELECT x.contacts, x.stale, {_share('x.stale', 'x.contacts')} AS stale_pct FROM"
            " (SELECT COUNT(*) AS contacts, COALESCE(SUM(CASE WHEN c.updated_at < {} AND NOT"
            " EXISTS (SELECT 1 FROM kith_interaction i WHERE i.contact = c.id"
            " AND i.occurred_at >= {}) THEN 1 ELSE 0 END), 0) AS stale"
            " FROM kith_contact c WHERE c.archived = FALSE) x",
            [cutoff, cutoff],
        )
