"""Retention rules from settings: ``[privacy.retention]`` maps a target to how long data is kept.

A target is a data category (``communications``), a retention class of personal fields
(``call_recordings``), a purpose (``newsletter``) or a named rule the retention runner knows
(``leads_without_consent``, ``inactive_contacts``). Either a duration string::

    [privacy.retention]
    call_recordings = "90d"
    leads_without_consent = "30d"
    inactive_contacts = "24 months"

or a table, when the rule deserves a word of explanation in the record of processing::

    [privacy.retention.inactive_contacts]
    keep = "2y"
    description = "Contacts nobody has touched for two years"

This module parses and validates; applying the rules is the retention runner's job.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any, Literal

import msgspec

Unit = Literal["days", "months"]

# Named rules the runner implements beyond categories, classes and purposes; the runner adds
# its own names here (``register_rule_name``) so that validation accepts them.
NAMED_RULES: dict[str, str] = {
    "leads_without_consent": "Leads that never gave consent for any purpose",
    "inactive_contacts": "Contacts with no interaction or change for the given time",
}

MAX_DAYS = 100 * 366
_UNITS: dict[str, tuple[Unit, int]] = {
    "d": ("days", 1),
    "day": ("days", 1),
    "days": ("days", 1),
    "w": ("days", 7),
    "week": ("days", 7),
    "weeks": ("days", 7),
    "month": ("months", 1),
    "months": ("months", 1),
    "mo": ("months", 1),
    "y": ("months", 12),
    "year": ("months", 12),
    "years": ("months", 12),
}
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")


class RetentionError(ValueError):
    """A retention setting Kith cannot use; the message names the setting."""


class Duration(msgspec.Struct, frozen=True):
    """A retention period: a number of days, or of calendar months (years are 12 months)."""

    amount: int
    unit: Unit

    def __str__(self) -> str:
        if self.unit == "months" and self.amount % 12 == 0:
            years = self.amount // 12
            return f"{years} year{'s' if years != 1 else ''}"
        single = self.unit[:-1]
        return f"{self.amount} {single if self.amount == 1 else self.unit}"

    def cutoff(self, now: dt.datetime) -> dt.datetime:
        """The moment before which data falls under this rule (``now`` minus the period)."""
        if self.unit == "days":
            return now - dt.timedelta(days=self.amount)
        # Calendar months backwards: the same day that many months earlier, clamped to the
        # month's end, so "24 months" before 29 Feb is 28 Feb two years earlier.
        year, month = divmod(now.year * 12 + (now.month - 1) - self.amount, 12)
        last = calendar.monthrange(year, month + 1)[1]
        return now.replace(year=year, month=month + 1, day=min(now.day, last))


def parse_duration(text: Any, setting: str = "duration") -> Duration:
    """``90d``, ``4 weeks``, ``24 months``, ``2y`` → :class:`Duration`; clear errors otherwise."""
    if not isinstance(text, str):
        raise RetentionError(
            f'{setting}: expected a duration like "90d", "24 months" or "2y", got {text!r}'
        )
    match = _DURATION.match(text.lower())
    if match is None:
        raise RetentionError(
            f"{setting}: {text!r} is not a duration; write a number and a unit, "
            'like "90d", "4 weeks", "24 months" or "2y"'
        )
    amount, unit_text = int(match.group(1)), match.group(2)
    if unit_text == "m":
        raise RetentionError(
            f'{setting}: {text!r} is ambiguous; write "{amount} months" (or days as "d")'
        )
    if unit_text not in _UNITS:
        raise RetentionError(
            f"{setting}: unknown unit {unit_text!r} in {text!r}; use d, weeks, months or y"
        )
    unit, factor = _UNITS[unit_text]
    if amount <= 0:
        raise RetentionError(f"{setting}: a retention period must be longer than zero")
    amount *= factor
    days = amount if unit == "days" else amount * 31
    if days > MAX_DAYS:
        raise RetentionError(f"{setting}: {text!r} is longer than 100 years")
    return Duration(amount, unit)


class RetentionRule(msgspec.Struct, frozen=True, kw_only=True):
    """Keep data under ``target`` for ``keep``; ``description`` explains it in the record."""

    target: str
    keep: Duration
    description: str = ""


def parse_retention(section: Any, prefix: str = "privacy.retention") -> list[RetentionRule]:
    """Parse the ``[privacy.retention]`` table; raises :class:`RetentionError` on the first
    problem, naming the setting."""
    if section is None:
        return []
    if not isinstance(section, dict):
        raise RetentionError(f'{prefix}: expected a table of rules like call_recordings = "90d"')
    rules = []
    for target, value in sorted(section.items()):
        setting = f"{prefix}.{target}"
        if not _NAME.match(target):
            raise RetentionError(
                f"{setting}: a rule name is lower-case letters, digits and underscores"
            )
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"keep", "description"})
            if unknown:
                raise RetentionError(
                    f"{setting}: unknown key {unknown[0]!r}; a rule has keep and description"
                )
            if "keep" not in value:
                raise RetentionError(f'{setting}: missing keep = "<duration>"')
            description = value.get("description", "")
            if not isinstance(description, str):
                raise RetentionError(f"{setting}.description: expected text")
            rules.append(
                RetentionRule(
                    target=target,
                    keep=parse_duration(value["keep"], f"{setting}.keep"),
                    description=description,
                )
            )
        else:
            rules.append(RetentionRule(target=target, keep=parse_duration(value, setting)))
    return rules


def register_rule_name(name: str, description: str) -> None:
    """Let a retention runner declare a named rule it implements (e.g. ``stale_leads``)."""
    NAMED_RULES[name] = description


def unknown_targets(
    rules: list[RetentionRule],
    categories: set[str],
    retention_classes: set[str],
    purposes: set[str],
) -> list[str]:
    """One readable problem per rule whose target nothing in the installation knows."""
    known = categories | retention_classes | purposes | set(NAMED_RULES)
    problems = []
    for rule in rules:
        if rule.target not in known:
            problems.append(
                f"privacy.retention.{rule.target}: not a data category, retention class, "
                f"purpose or named rule (known: {', '.join(sorted(known))})"
            )
    return problems


def target_kind(
    target: str, categories: set[str], retention_classes: set[str], purposes: set[str]
) -> str:
    """What a rule's target refers to, for the record of processing."""
    kinds = []
    if target in retention_classes:
        kinds.append("retention class")
    if target in categories:
        kinds.append("data category")
    if target in purposes:
        kinds.append("purpose")
    if target in NAMED_RULES:
        kinds.append("named rule")
    return " / ".join(kinds) or "unknown"
