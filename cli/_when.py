"""Dates and times typed on the command line (``--due``, ``--at``)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import click
from kith.console import get_settings

FORMATS = "YYYY-MM-DD, 'YYYY-MM-DD HH:MM' (an offset such as +01:00 may follow), today or tomorrow"


class When(click.ParamType):
    """A date or a time. A time without an offset is in the installation's time zone (the
    service reads it so); a date alone means the end of that day (``--due``) or its start."""

    name = "when"

    def __init__(self, *, date_means_end_of_day: bool) -> None:
        self.date_means_end_of_day = date_means_end_of_day

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.datetime):
            return value
        text = str(value).strip()
        day = self._day(text.lower())
        if day is None:
            try:
                day = dt.date.fromisoformat(text)
            except ValueError:
                day = None
        if day is not None:
            if self.date_means_end_of_day:
                return dt.datetime.combine(day, dt.time(23, 59, 59))
            return dt.datetime.combine(day, dt.time())
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is not a date or time; use {FORMATS}", param, ctx)

    @staticmethod
    def _day(word: str) -> dt.date | None:
        if word not in ("today", "tomorrow"):
            return None
        today = dt.datetime.now(zoneinfo.ZoneInfo(get_settings().timezone)).date()
        return today + dt.timedelta(days=1) if word == "tomorrow" else today


DUE = When(date_means_end_of_day=True)
"""``--due``: a date alone is due by the end of that day."""
AT = When(date_means_end_of_day=False)
"""``--at``: a date alone is the start of that day."""
