"""The rights plugin's keys of ``[privacy]`` in ``kith.toml``::

    [privacy]
    withdraw_link_days = 365             # how long a one-click withdrawal link stays valid
    exports_kept_days = 30               # export ZIPs in KITH_HOME/exports are deleted after
    retention_interval_minutes = 60      # the worker applies the retention rules this often
    marketing_purposes = ["marketing", "newsletter"]  # an objection to these is remembered
    audit_durability = "durable"         # or "write_behind": see the compliance guide

    [privacy.controller]                 # named in the record of processing (Art. 30(1)(a))
    name = "Example Ltd"
    contact = "privacy@example.com, 1 High Street, London"
    dpo = "dpo@example.com"

    [privacy.purposes.newsletter]        # a purpose of your own, or a plugin's overridden
    description = "Monthly product newsletter by email"
    lawful_basis = "consent"
    notice = "We send you our newsletter once a month. Unsubscribe at any time."

    [privacy.retention]                  # how long data is kept (see retention_rules)
    call_recordings = "90d"

    [privacy.legal_holds.tax_records]    # kept through an erasure, restricted, until expiry
    kinds = ["order"]                    # interaction kinds the law requires to be kept
    keep = "10y"                         # counted from the interaction's date
    ground = "Commercial and tax law: accounting records are kept for 10 years"

Without a ``legal_holds`` table, orders are held for 10 years (the default below), because
erasing accounting records can break the law; ``legal_holds = {}`` turns holds off. Every key
can also be set by a ``KITH_PRIVACY_<KEY>`` variable (``KITH_PRIVACY_EXPORTS_KEPT_DAYS=7``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from kith import InteractionKind, LawfulBasis, Purpose
from kith.privacy.rights.retention_rules import (
    Duration,
    RetentionError,
    RetentionRule,
    parse_duration,
    parse_retention,
)
from kith.settings import Settings

SECTION = "privacy"
# ``durable``: a read's audit entry is committed before the read is answered (concurrent reads
# share the commit). ``write_behind``: it is written right after, so a crash can lose the
# entries of reads answered in its last few tens of milliseconds (docs/compliance.md).
AuditDurability = Literal["durable", "write_behind"]
DEFAULT_AUDIT_DURABILITY: AuditDurability = "durable"
PurposeName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,79}$")]


class Controller(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who is responsible for the processing (Art. 30(1)(a))."""

    name: str = ""
    contact: str = ""
    dpo: str = ""
    representative: str = ""


class PurposeSetting(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[privacy.purposes.<name>]``: a purpose with the notice shown when consent is asked."""

    description: Annotated[str, msgspec.Meta(min_length=1)]
    lawful_basis: LawfulBasis
    notice: Annotated[str, msgspec.Meta(min_length=1)] | None = None

    def __post_init__(self) -> None:
        if not self.description.strip():
            raise ValueError("description: say what the data is used for")
        if self.notice is not None and not self.notice.strip():
            raise ValueError("notice: expected the notice text")


class DeclaredPurpose(msgspec.Struct, frozen=True, kw_only=True):
    """A purpose from settings, with the notice text shown to people when they consent."""

    purpose: Purpose
    notice: str | None = None


class LegalHoldSetting(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[privacy.legal_holds.<name>]``: interactions a law requires to keep."""

    kinds: Annotated[tuple[InteractionKind, ...], msgspec.Meta(min_length=1)]
    keep: str
    ground: Annotated[str, msgspec.Meta(min_length=1, max_length=400)]

    def __post_init__(self) -> None:
        try:
            parse_duration(self.keep, "keep")
        except RetentionError as exc:
            raise ValueError(str(exc)) from None
        if not self.ground.strip():
            raise ValueError("ground: say which law requires keeping them")


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


class RetentionTable(msgspec.Struct, frozen=True, kw_only=True):
    keep: str
    description: str = ""


class RightsSettings(msgspec.Struct, frozen=True, kw_only=True):
    withdraw_link_days: Annotated[int, msgspec.Meta(ge=1, le=3660)] = 365
    exports_kept_days: Annotated[int, msgspec.Meta(ge=1, le=3660)] = 30
    retention_interval_minutes: Annotated[int, msgspec.Meta(ge=1, le=7 * 24 * 60)] = 60
    marketing_purposes: tuple[str, ...] = ("marketing", "newsletter")
    audit_durability: AuditDurability = DEFAULT_AUDIT_DURABILITY
    controller: Controller = msgspec.field(default_factory=Controller)
    purposes: dict[PurposeName, PurposeSetting] = msgspec.field(default_factory=dict)
    retention: dict[str, str | RetentionTable] = msgspec.field(default_factory=dict)
    legal_holds: dict[str, LegalHoldSetting] | None = None

    def __post_init__(self) -> None:
        # Named here, as "<key>: <problem>", so the error names the setting at fault.
        try:
            self.retention_rules()
        except RetentionError as exc:
            raise ValueError(str(exc).removeprefix("privacy.")) from None
        claimed: dict[str, str] = {}
        for name, hold in sorted((self.legal_holds or {}).items()):
            for kind in hold.kinds:
                if kind in claimed:
                    raise ValueError(
                        f"legal_holds.{name}.kinds: {kind!r} is held by "
                        f"legal_holds.{claimed[kind]} too"
                    )
                claimed[kind] = name

    def retention_rules(self) -> list[RetentionRule]:
        """``[privacy.retention]`` as rules (validated when the settings are read)."""
        return parse_retention(msgspec.to_builtins(self.retention) or None)

    def holds(self) -> tuple[LegalHoldRule, ...]:
        """The legal holds: the default one unless ``[privacy.legal_holds]`` says otherwise."""
        if self.legal_holds is None:
            return DEFAULT_LEGAL_HOLDS
        return tuple(
            LegalHoldRule(
                name=name,
                kinds=tuple(hold.kinds),
                keep=parse_duration(hold.keep),
                ground=hold.ground.strip(),
            )
            for name, hold in sorted(self.legal_holds.items())
        )

    def hold_for(self, kind: str) -> LegalHoldRule | None:
        """The legal-hold rule that covers interactions of ``kind``, if any."""
        return next((rule for rule in self.holds() if kind in rule.kinds), None)

    def declared_purposes(self) -> tuple[DeclaredPurpose, ...]:
        """The purposes of ``[privacy.purposes]``, which override a plugin's of the same name."""
        return tuple(
            DeclaredPurpose(
                purpose=Purpose(
                    name=name,
                    description=body.description.strip(),
                    lawful_basis=body.lawful_basis,
                    owner="settings",
                ),
                notice=body.notice,
            )
            for name, body in sorted(self.purposes.items())
        )


def rights_settings(settings: Settings) -> RightsSettings:
    return settings.parsed(SECTION, RightsSettings)
