"""Deadline arithmetic for data subject requests (Art. 12(3) GDPR).

A request is answered "within one month of receipt", extendable by two further months. Periods
in months follow Regulation 1182/71 (Art. 3(2)(c)): the period ends on the same day of the month
it ends in, or on that month's last day when it has no such day (31 January → 28/29 February).
Every period counts from the day of receipt, never from a previous deadline, so extending a
request received on 31 January ends on 31 March, not on 28 March.
"""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo

BASE_MONTHS = 1
MAX_EXTENSION_MONTHS = 2


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months later, or that month's last day."""
    if months < 0:
        raise ValueError("months must not be negative")
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day.day, last))


def due_date(received: dt.date, extension_months: int = 0) -> dt.date:
    """When a request received on ``received`` must be answered, after the given extensions."""
    if not 0 <= extension_months <= MAX_EXTENSION_MONTHS:
        raise ValueError(
            f"a request can be extended by at most {MAX_EXTENSION_MONTHS} months in total"
        )
    return add_months(received, BASE_MONTHS + extension_months)


def local_date(moment: dt.datetime, timezone: str) -> dt.date:
    """The calendar day ``moment`` falls on in the installation's time zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(zoneinfo.ZoneInfo(timezone)).date()


def days_left(due: dt.date, today: dt.date) -> int:
    """Days until the due date: 0 on the day itself, negative once overdue."""
    return (due - today).days


def describe_days_left(days: int) -> str:
    """``5 days left``, ``due today`` or ``3 days overdue``, for lists people read."""
    if days == 0:
        return "due today"
    if days > 0:
        return f"{days} day{'s' if days != 1 else ''} left"
    late = -days
    return f"{late} day{'s' if late != 1 else ''} overdue"
