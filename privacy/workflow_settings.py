"""The request-workflow half of ``[privacy]`` in ``kith.toml``: purposes, four-eyes approval,
retention rules, the controller named in the record of processing, consent links.

::

    [privacy]
    four_eyes = true                 # a second compliance user approves every request
    withdraw_link_days = 365         # how long a one-click withdrawal link stays valid

    [privacy.controller]
    name = "Example Ltd"
    contact = "privacy@example.com, 1 High Street, London"
    dpo = "dpo@example.com"

    [privacy.purposes.newsletter]
    description = "Monthly product newsletter by email"
    lawful_basis = "consent"
    notice = "We send you our newsletter once a month. Unsubscribe at any time."

    [privacy.retention]
    call_recordings = "90d"

Keys this module does not know are left to the rest of the privacy plugin (encryption, keys).
"""

from __future__ import annotations

import os
import re
from typing import Any

import msgspec
from kith.privacy.retention_rules import RetentionError, RetentionRule, parse_retention
from kith.settings import Settings, SettingsError
from kith.subjects import LAWFUL_BASES, Purpose

_PURPOSE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,79}$")
DEFAULT_WITHDRAW_LINK_DAYS = 365


class Controller(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who is responsible for the processing (Art. 30(1)(a))."""

    name: str = ""
    contact: str = ""
    dpo: str = ""
    representative: str = ""


class DeclaredPurpose(msgspec.Struct, frozen=True, kw_only=True):
    """A purpose from settings, with the notice text shown to people when they consent."""

    purpose: Purpose
    notice: str | None = None


class WorkflowSettings(msgspec.Struct, frozen=True, kw_only=True):
    four_eyes: bool = False
    withdraw_link_days: int = DEFAULT_WITHDRAW_LINK_DAYS
    controller: Controller = msgspec.field(default_factory=Controller)
    purposes: tuple[DeclaredPurpose, ...] = ()
    retention: tuple[RetentionRule, ...] = ()


def _bool(value: Any, setting: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{setting}: expected true or false, got {value!r}")


def _purposes(section: Any) -> tuple[DeclaredPurpose, ...]:
    if section is None:
        return ()
    if not isinstance(section, dict):
        raise SettingsError("privacy.purposes: expected tables like [privacy.purposes.newsletter]")
    declared = []
    for name, body in sorted(section.items()):
        setting = f"privacy.purposes.{name}"
        if not _PURPOSE_NAME.match(name):
            raise SettingsError(
                f"{setting}: a purpose name is lower-case letters, digits and underscores"
            )
        if not isinstance(body, dict):
            raise SettingsError(f"{setting}: expected a table with description and lawful_basis")
        unknown = sorted(set(body) - {"description", "lawful_basis", "notice"})
        if unknown:
            raise SettingsError(
                f"{setting}: unknown key {unknown[0]!r}; "
                "a purpose has description, lawful_basis and notice"
            )
        basis = body.get("lawful_basis")
        if basis not in LAWFUL_BASES:
            raise SettingsError(
                f"{setting}.lawful_basis: must be one of {', '.join(LAWFUL_BASES)}, got {basis!r}"
            )
        description = body.get("description", "")
        if not isinstance(description, str) or not description.strip():
            raise SettingsError(f"{setting}.description: say what the data is used for")
        notice = body.get("notice")
        if notice is not None and (not isinstance(notice, str) or not notice.strip()):
            raise SettingsError(f"{setting}.notice: expected the notice text")
        declared.append(
            DeclaredPurpose(
                purpose=Purpose(
                    name=name,
                    description=description.strip(),
                    lawful_basis=basis,
                    owner="settings",
                ),
                notice=notice,
            )
        )
    return tuple(declared)


def _controller(section: Any) -> Controller:
    if section is None:
        return Controller()
    if not isinstance(section, dict):
        raise SettingsError("privacy.controller: expected a table with name and contact")
    try:
        return msgspec.convert(section, Controller)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"privacy.controller: {exc}") from None


def parse_workflow_settings(section: dict[str, Any], env: dict[str, str]) -> WorkflowSettings:
    """Validate the workflow keys of ``[privacy]``; ``KITH_PRIVACY_FOUR_EYES`` overrides."""
    if "KITH_PRIVACY_FOUR_EYES" in env:
        four_eyes = _bool(env["KITH_PRIVACY_FOUR_EYES"], "KITH_PRIVACY_FOUR_EYES")
    else:
        four_eyes = _bool(section.get("four_eyes", False), "privacy.four_eyes")
    days = section.get("withdraw_link_days", DEFAULT_WITHDRAW_LINK_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
        raise SettingsError(
            f"privacy.withdraw_link_days: expected a number of days from 1 to 3660, got {days!r}"
        )
    try:
        retention = tuple(parse_retention(section.get("retention")))
    except RetentionError as exc:
        raise SettingsError(str(exc)) from None
    return WorkflowSettings(
        four_eyes=four_eyes,
        withdraw_link_days=days,
        controller=_controller(section.get("controller")),
        purposes=_purposes(section.get("purposes")),
        retention=retention,
    )


_cache: dict[int, tuple[Settings, WorkflowSettings]] = {}


def workflow_settings(settings: Settings) -> WorkflowSettings:
    """The parsed workflow settings of an installation (parsed once per Settings object)."""
    cached = _cache.get(id(settings))
    if cached is not None and cached[0] is settings:
        return cached[1]
    parsed = parse_workflow_settings(settings.section("privacy"), dict(os.environ))
    _cache[id(settings)] = (settings, parsed)
    return parsed
