"""The few SQL expressions SQLite and PostgreSQL spell differently, for the loop's queries
(cadences, tiers, triggers, reports), so that they aggregate in the database on both."""

from __future__ import annotations

from kith.storage import Database

# Interactions that count as being in touch: an answered call (it has talk time), an email, a
# meeting, an order. Notes, tasks, form submissions and missed calls do not.
REAL_INTERACTION = (
    "({i}.kind IN ('email', 'meeting', 'order') OR ({i}.kind = 'call' AND {i}.duration_s > 0))"
)
# A call nobody answered: no talk time.
MISSED_CALL = "({i}.kind = 'call' AND COALESCE({i}.duration_s, 0) = 0)"


def real(alias: str) -> str:
    return REAL_INTERACTION.format(i=alias)


def missed(alias: str) -> str:
    return MISSED_CALL.format(i=alias)


class Dialect:
    """SQL fragments for one database."""

    def __init__(self, database: Database) -> None:
        self.postgres = database.kind == "postgresql"

    def epoch(self, expr: str) -> str:
        """Seconds since 1970 of a timestamp expression, as a float."""
        if self.postgres:
            return f"EXTRACT(EPOCH FROM {expr})"
        return f"((julianday({expr}) - 2440587.5) * 86400.0)"

    def seconds_between(self, start: str, end: str) -> str:
        return f"({self.epoch(end)} - {self.epoch(start)})"

    def days_between(self, start: str, end: str) -> str:
        return f"({self.seconds_between(start, end)} / 86400.0)"

    def has_tag(self, tags: str, tag: str) -> str:
        """Whether the JSON list of tags ``tags`` holds ``tag`` (both SQL expressions)."""
        if self.postgres:
            return f"jsonb_exists(({tags})::jsonb, {tag})"
        return f"EXISTS (SELECT 1 FROM json_each({tags}) WHERE json_each.value = {tag})"

    def uuid_text(self, expr: str) -> str:
        return f"CAST({expr} AS TEXT)"

    def week(self, expr: str) -> str:
        """The Monday (UTC) of a timestamp's week, as text YYYY-MM-DD."""
        if self.postgres:
            return f"to_char(date_trunc('week', ({expr}) AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
        return f"date({expr}, 'weekday 0', '-6 days')"

    def time_slot(self) -> str:
        """The placeholder of a time parameter used in arithmetic (PostgreSQL must be told
        its type there)."""
        return "CAST({} AS TIMESTAMPTZ)" if self.postgres else "{}"

    def text_slot(self) -> str:
        return "CAST({} AS TEXT)" if self.postgres else "{}"
