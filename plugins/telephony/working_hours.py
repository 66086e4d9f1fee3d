"""When a callback is due: the first moment within working hours after the callback delay."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from kith.plugins.telephony.settings import TelephonySettings

# A year of holidays and closed days is the most a search has to skip.
MAX_DAYS = 400


def _clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def callback_due(ended_at: dt.datetime, settings: TelephonySettings, zone_name: str) -> dt.datetime:
    """``ended_at`` plus the delay, moved forward to the next working moment (working days
    and hours in the configured time zone, holidays skipped); in UTC."""
    zone = zoneinfo.ZoneInfo(settings.timezone or zone_name)
    moment = (ended_at + dt.timedelta(minutes=settings.callback_delay_minutes)).astimezone(zone)
    start, end = _clock(settings.work_start), _clock(settings.work_end)
    for _ in range(MAX_DAYS):
        day = moment.date()
        if day.isoweekday() in settings.work_days and day not in settings.holidays:
            opens = dt.datetime.combine(day, start, zone)
            closes = dt.datetime.combine(day, end, zone)
            if moment < closes:
                return max(moment, opens).astimezone(dt.UTC)
        moment = dt.datetime.combine(day + dt.timedelta(days=1), start, zone)
    # No working day in sight (no work days configured): due at once rather than never.
    return (ended_at + dt.timedelta(minutes=settings.callback_delay_minutes)).astimezone(dt.UTC)
