"""The data-subject-rights keys of ``[privacy]`` in ``kith.toml``: legal holds, how long export
packages are kept, and how often the worker applies the retention rules.

::

    [privacy]
    exports_kept_days = 30               # export ZIPs in KITH_HOME/exports are deleted after
    retention_interval_minutes = 60      # the worker applies the retention rules this often

    [privacy.legal_holds.tax_records]    # kept through an erasure, restricted, until expiry
    kinds = ["order"]                    # interaction kinds the law requires to be kept
    keep = "10y"                         # counted from the interaction's date
    ground = "Commercial and tax law: accounting records are kept for 10 years"

Without a ``legal_holds`` table, orders are held for 10 years (the default below), because
erasing accounting records can break the law; ``legal_holds = {}`` turns holds off.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec
from kith.privacy.retention_rules import Duration, RetentionError, parse_duration
from kith.settings import Settings, SettingsError

DEFAULT_EXPORTS_KEPT_DAYS = 30
DEFAULT_RETENTION_INTERVAL_MINUTES = 60
INTERACTION_KINDS = ("note", "call", "email", "meeting", "form_submission", "order", "task")


class LegalHoldRule(msgspec.Struct, frozen=True, kw_only=True):
    """Interactions of ``kinds`` younger than ``keep`` survive an erasure, restricted."""

    name: str
    kinds: tuple[str, ...]
    keep: Duration
    ground: str


DEFAULT_LEGAL_HOLDS: tuple[LegalHoldRule, ...] = (
    LegalHoldRule(
        name="tax_records",
        kinds=("order",),
        keep=Duration(120, "months"),
        ground="Commercial and tax law: orders and invoices are accounting records that must "
        "be kept for 10 years",
    ),
)


class SubjectSettings(msgspec.Struct, frozen=True, kw_only=True):
    legal_holds: tuple[LegalHoldRule, ...] = DEFAULT_LEGAL_HOLDS
    exports_kept_days: int = DEFAULT_EXPORTS_KEPT_DAYS
    retention_interval_minutes: int = DEFAULT_RETENTION_INTERVAL_MINUTES

    def hold_for(self, kind: str) -> LegalHoldRule | None:
        """The legal-hold rule that covers interactions of ``kind``, if any."""
        for rule in self.legal_holds:
            if kind in rule.kinds:
                return rule
        return None


def _int(value: Any, setting: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(f"{setting}: expected a whole number from {low} to {high}")
    return value


def _holds(section: Any) -> tuple[LegalHoldRule, ...]:
    if section is None:
        return DEFAULT_LEGAL_HOLDS
    if not isinstance(section, dict):
        raise SettingsError(
            "privacy.legal_holds: expected tables like [privacy.legal_holds.tax_records]"
        )
    rules = []
    claimed: dict[str, str] = {}
    for name, body in sorted(section.items()):
        setting = f"privacy.legal_holds.{name}"
        if not isinstance(body, dict):
            raise SettingsError(f"{setting}: expected a table with kinds, keep and ground")
        unknown = sorted(set(body) - {"kinds", "keep", "ground"})
        if unknown:
            raise SettingsError(
                f"{setting}: unknown key {unknown[0]!r}; a legal hold has kinds, keep and ground"
            )
        kinds = body.get("kinds")
        if not isinstance(kinds, list) or not kinds:
            raise SettingsError(f'{setting}.kinds: list the interaction kinds, like ["order"]')
        for kind in kinds:
            if kind not in INTERACTION_KINDS:
                raise SettingsError(
                    f"{setting}.kinds: {kind!r} is not an interaction kind "
                    f"({', '.join(INTERACTION_KINDS)})"
                )
            if kind in claimed:
                raise SettingsError(f"{setting}.kinds: {kind!r} is held by {claimed[kind]} too")
            claimed[kind] = setting
        ground = body.get("ground")
        if not isinstance(ground, str) or not ground.strip() or len(ground) > 400:
            raise SettingsError(
                f"{setting}.ground: say which law requires keeping them (up to 400 characters)"
            )
        try:
            keep = parse_duration(body.get("keep"), f"{setting}.keep")
        except RetentionError as exc:
            raise SettingsError(str(exc)) from None
        rules.append(LegalHoldRule(name=name, kinds=tuple(kinds), keep=keep, ground=ground.strip()))
    return tuple(rules)


def parse_subject_settings(section: dict[str, Any], env: dict[str, str]) -> SubjectSettings:
    """Validate the data-subject-rights keys of ``[privacy]``."""
    interval = section.get("retention_interval_minutes", DEFAULT_RETENTION_INTERVAL_MINUTES)
    if "KITH_PRIVACY_RETENTION_INTERVAL_MINUTES" in env:
        try:
            interval = int(env["KITH_PRIVACY_RETENTION_INTERVAL_MINUTES"])
        except ValueError:
            raise SettingsError(
                "KITH_PRIVACY_RETENTION_INTERVAL_MINUTES: expected minutes"
            ) from None
    return SubjectSettings(
        legal_holds=_holds(section.get("legal_holds")),
        exports_kept_days=_int(
            section.get("exports_kept_days", DEFAULT_EXPORTS_KEPT_DAYS),
            "privacy.exports_kept_days",
            1,
            3660,
        ),
        retention_interval_minutes=_int(
            interval, "privacy.retention_interval_minutes", 1, 7 * 24 * 60
        ),
    )


_cache: dict[int, tuple[Settings, SubjectSettings]] = {}


def subject_settings(settings: Settings) -> SubjectSettings:
    """The parsed settings of an installation (parsed once per Settings object)."""
    cached = _cache.get(id(settings))
    if cached is not None and cached[0] is settings:
        return cached[1]
    parsed = parse_subject_settings(settings.section("privacy"), dict(os.environ))
    _cache[id(settings)] = (settings, parsed)
    return parsed
