"""What an installation declares: purposes, recipients, personal fields and enabled plugins.

Purposes come from core (``customer_relationship``), every plugin's ``kith_register_purposes``
hook, and ``[privacy.purposes.<name>]`` in ``kith.toml``, which overrides a declared purpose of
the same name (the operator, as controller, has the last word).
"""

from __future__ import annotations

from typing import Any

import msgspec
from kith.errors import InvalidInput
from kith.personal import CORE_PERSONAL_FIELDS, PersonalField
from kith.privacy.rights.settings import rights_settings
from kith.runtime import Kith
from kith.subjects import Purpose, Recipient


class PurposeInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A declared purpose and where it was declared; ``notice`` is the text from settings."""

    name: str
    description: str
    lawful_basis: str
    declared_by: str
    notice: str | None = None


def _collected(kith: Kith, kind: str) -> list[Any]:
    """What the loaded plugins registered of one kind (``purposes``, ``recipients``)."""
    manager = getattr(kith, "plugins", None)
    if manager is None:
        return []
    return list(getattr(manager, kind)())


def purposes(kith: Kith) -> dict[str, PurposeInfo]:
    """Every declared purpose by name (built-in, then plugins, then settings)."""
    found: dict[str, PurposeInfo] = {}

    def add(purpose: Purpose, declared_by: str, notice: str | None = None) -> None:
        found[purpose.name] = PurposeInfo(
            name=purpose.name,
            description=purpose.description,
            lawful_basis=purpose.lawful_basis,
            declared_by=declared_by,
            notice=notice,
        )

    for purpose in _collected(kith, "purposes"):
        add(purpose, purpose.owner)
    for declared in rights_settings(kith.settings).declared_purposes():
        add(declared.purpose, "kith.toml", declared.notice)
    return dict(sorted(found.items()))


def purpose(kith: Kith, name: str) -> PurposeInfo:
    """One declared purpose, or :class:`InvalidInput` listing the declared ones."""
    declared = purposes(kith)
    if name not in declared:
        raise InvalidInput(
            f"{name!r} is not a declared purpose; declared: {', '.join(declared)} "
            "(declare more in [privacy.purposes.<name>] of kith.toml)",
            field="purpose",
        )
    return declared[name]


def recipients(kith: Kith) -> list[Recipient]:
    """Every recipient the enabled plugins declare, by name."""
    return sorted(_collected(kith, "recipients"), key=lambda r: r.name)


def personal_fields(kith: Kith) -> list[PersonalField]:
    """The registry of personal fields (core's and every plugin's), by table and column."""
    fields = getattr(kith, "personal_fields", None) or list(CORE_PERSONAL_FIELDS)
    unique = {field.key: field for field in fields}
    return sorted(unique.values(), key=lambda field: field.key)


class PluginRef(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str | None
    source: str


def enabled_plugins(kith: Kith) -> list[PluginRef]:
    """The loaded plugins, as the plugin manager knows them."""
    manager = getattr(kith, "plugins", None)
    if manager is None:
        return []
    return sorted(
        (
            PluginRef(name=info.name, version=info.version, source=info.source)
            for info in manager.plugins()
        ),
        key=lambda ref: ref.name,
    )
