"""Settings of reminders, cadences, tiers, triggers and reports: sections of ``kith.toml`` core
declares like a plugin's (``KITH_<SECTION>_<KEY>`` variables override single values)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from kith.settings import Settings

REMINDERS = "reminders"
CADENCES = "cadences"
TIERS = "tiers"
TRIGGERS = "triggers"
REPORTS = "reports"

ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Days = Annotated[int, msgspec.Meta(ge=1, le=3650)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[\w.:-]+$")]


class ReminderSettings(msgspec.Struct, frozen=True, kw_only=True):
    """``[reminders]``: when a task counts as overdue and when digests go out."""

    overdue_after_minutes: Annotated[int, msgspec.Meta(ge=0, le=525_600)] = 60
    """An open task this many minutes past its due time publishes ``task.overdue``."""
    digest_at: ClockTime = "08:00"
    """Local time of each user's daily digest (a user may choose another)."""
    digest: bool = True
    """Make daily digests at all."""
    email: bool = False
    """Also email each notification to its user through the core mailer (``[mail]``). The
    email holds links and counts, never a contact's name."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ReminderSettings:
        return settings.parsed(REMINDERS, cls)


class CadenceSettings(msgspec.Struct, frozen=True, kw_only=True):
    """``[cadences]``: keep-in-touch reminders."""

    create_tasks: bool = False
    """Turn each contact that falls due into a task for its owner (once per due date)."""
    pause_tag: Annotated[str, msgspec.Meta(max_length=100)] = "no-cadence"
    """Contacts with this tag are never due (a trigger rule can add it)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> CadenceSettings:
        return settings.parsed(CADENCES, cls)


class TierLevel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One tier: a contact is in the first tier whose every threshold it meets."""

    name: Name
    min_monetary: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    """Total of its orders in the tier currency, at least."""
    min_orders: Annotated[int, msgspec.Meta(ge=0)] = 1
    """Number of orders in the tier currency, at least."""
    max_recency_days: Days | None = None
    """Its last order at most this many days ago (none: any)."""


DEFAULT_LEVELS = (
    TierLevel(name="A", min_monetary=100_000, min_orders=3, max_recency_days=365),
    TierLevel(name="B", min_monetary=20_000, min_orders=1, max_recency_days=365),
    TierLevel(name="C", min_monetary=0, min_orders=1),
)


class TierSettings(msgspec.Struct, frozen=True, kw_only=True):
    """``[tiers]``: value tiers from orders."""

    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "RUB"
    """The currency tiers are computed in, and that of orders that name none."""
    levels: tuple[TierLevel, ...] = DEFAULT_LEVELS
    """Tiers from best to worst; a contact meeting none has no tier."""

    @classmethod
    def from_settings(cls, settings: Settings) -> TierSettings:
        found = settings.parsed(TIERS, cls)
        names = [level.name for level in found.levels]
        if len(set(names)) != len(names):
            from kith.settings import SettingsError

            raise SettingsError(f"[{TIERS}] levels: tier names must differ, got {names}")
        return found


Condition = Literal["order_gap", "missed_call", "no_interaction", "event", "tier"]
Action = Literal["task", "notify", "tag", "event"]


class RuleSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A trigger rule: when ``condition`` holds for a contact, do ``action``.

    Conditions: ``order_gap`` (no order for ``factor`` times the contact's average order
    interval, at least ``min_orders`` orders), ``missed_call`` (an inbound missed call not
    returned within ``hours`` working hours), ``no_interaction`` (a contact from ``source``
    or with ``tag`` and no interaction but its first within ``days``), ``event`` (an event
    named ``event`` about the contact), ``tier`` (the contact is in ``tier``).
    Actions: ``task`` (for the contact's owner, or ``user``), ``notify`` (``user``, or the
    owner), ``tag`` (adds ``tag_to_add``), ``event`` (publishes ``trigger.fired``)."""

    name: Name
    condition: Condition
    action: Action
    enabled: bool = True
    factor: Annotated[float, msgspec.Meta(gt=0, le=100)] = 2.0
    min_orders: Annotated[int, msgspec.Meta(ge=2)] = 2
    hours: Annotated[float, msgspec.Meta(gt=0, le=10_000)] = 2.0
    days: Days = 3
    source: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    tag: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    event: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    tier: Annotated[str, msgspec.Meta(max_length=30)] | None = None
    user: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    """Email of the user a task or notification is for (none: the contact's owner)."""
    summary: Annotated[str, msgspec.Meta(max_length=500)] = ""
    """Summary of the task made (none: the rule's name)."""
    tag_to_add: Annotated[str, msgspec.Meta(max_length=100)] | None = None

    def problems(self) -> list[str]:
        """What the rule lacks for its condition and action."""
        needed: dict[str, Any] = {
            "event": self.event if self.condition == "event" else True,
            "tier": self.tier if self.condition == "tier" else True,
            "source or tag": (self.source or self.tag)
            if self.condition == "no_interaction"
            else True,
            "tag_to_add": self.tag_to_add if self.action == "tag" else True,
        }
        return [
            f"{self.condition}/{self.action} needs {key}" for key, ok in needed.items() if not ok
        ]


class TriggerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """``[triggers]``: rules in ``kith.toml`` and the working hours missed calls count in."""

    rules: tuple[RuleSpec, ...] = ()
    working_hours: Annotated[str, msgspec.Meta(pattern=r"^\d\d:\d\d-\d\d:\d\d$")] = "09:00-18:00"
    working_days: tuple[Annotated[int, msgspec.Meta(ge=1, le=7)], ...] = (1, 2, 3, 4, 5)
    """ISO weekdays (1 is Monday) that have working hours."""

    @classmethod
    def from_settings(cls, settings: Settings) -> TriggerSettings:
        return settings.parsed(TRIGGERS, cls)

    def hours_span(self) -> tuple[int, int]:
        """The working day as minutes after midnight (start, end)."""
        match = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", self.working_hours)
        assert match is not None
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        return h1 * 60 + m1, h2 * 60 + m2


class ReportSettings(msgspec.Struct, frozen=True, kw_only=True):
    """``[reports]``: what the KPI reports count as a lead and as stale."""

    lead_tag: Annotated[str, msgspec.Meta(max_length=100)] = "lead"
    stale_months: Annotated[int, msgspec.Meta(ge=1, le=600)] = 12

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportSettings:
        return settings.parsed(REPORTS, cls)


SECTIONS: tuple[tuple[str, type[msgspec.Struct]], ...] = (
    (REMINDERS, ReminderSettings),
    (CADENCES, CadenceSettings),
    (TIERS, TierSettings),
    (TRIGGERS, TriggerSettings),
    (REPORTS, ReportSettings),
)
