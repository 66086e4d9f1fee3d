"""Custom fields declared outside the API: in ``[[fields]]`` of ``kith.toml`` and by plugins
(``kith_register_custom_fields``). ``kith migrate`` adds the ones that do not exist yet and
reports every one; a field that exists already is never changed, whoever changed it last."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from kith.errors import KithError
from kith.runtime import Kith
from kith.schemas import FieldCreate, FieldOut
from kith.services.fields import FieldService
from kith.settings import FIELDS_KEY, SETTINGS_FILE, Settings, SettingsError

SETTINGS_KEY = FIELDS_KEY
TOML = SETTINGS_FILE
# What a declaration says, compared with the field that exists.
COMPARED = (
    "type",
    "label",
    "required",
    "default",
    "choices",
    "currency",
    "personal",
    "searchable",
    "category",
    "purpose",
    "retention",
)

Outcome = Literal["added", "unchanged", "differs", "archived", "overridden", "refused"]


class SeedOutcome(msgspec.Struct, kw_only=True):
    """What ``kith migrate`` did with one declared field: ``added``; ``unchanged`` (it
    exists as declared); ``differs`` (it exists otherwise and was left so: ``differences``
    names what); ``archived`` (it exists archived and stays so); ``overridden`` (a plugin's
    declaration of a name ``kith.toml`` declares too); ``refused`` (``problem`` says why)."""

    name: str
    source: str
    outcome: Outcome
    differences: list[str] = []
    problem: str | None = None


def configured_fields(settings: Settings) -> list[FieldCreate]:
    """The ``[[fields]]`` tables of ``kith.toml``, each a field declaration like the body of
    ``POST /api/fields``; :class:`SettingsError` naming the entry at fault."""
    raw = settings.extra.get(SETTINGS_KEY)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SettingsError(
            f"[{SETTINGS_KEY}] in {TOML}: declare each field as a [[{SETTINGS_KEY}]] table "
            'with its name, like name = "industry" and type = "text"'
        )
    declared: list[FieldCreate] = []
    for number, entry in enumerate(raw, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"[[{SETTINGS_KEY}]] number {number}" + (f" ({name})" if name else "")
        try:
            declared.append(msgspec.convert(entry, FieldCreate))
        except msgspec.ValidationError as exc:
            raise SettingsError(f"{where} in {TOML}: {exc}") from None
        if sum(other.name == declared[-1].name for other in declared) > 1:
            raise SettingsError(f"{where} in {TOML}: the field is declared twice")
    return declared


def _sources(kith: Kith) -> list[tuple[str, FieldCreate]]:
    configured = [(TOML, declared) for declared in configured_fields(kith.settings)]
    from_plugins = kith.plugins.custom_fields() if kith.plugins is not None else []
    return configured + list(from_plugins)


def _differences(existing: FieldOut, wanted: FieldOut) -> list[str]:
    return [name for name in COMPARED if getattr(existing, name) != getattr(wanted, name)]


async def seed_fields(kith: Kith) -> list[SeedOutcome]:
    """Add the declared fields that do not exist yet; say what became of each."""
    service = FieldService(kith)
    existing = {f.name: f for f in await service.declared(include_archived=True)}
    outcomes: list[SeedOutcome] = []
    seen: set[str] = set()
    for source, data in _sources(kith):
        outcome = SeedOutcome(name=data.name, source=source, outcome="unchanged")
        outcomes.append(outcome)
        if data.name in seen:
            outcome.outcome = "overridden"
            continue
        seen.add(data.name)
        try:
            wanted = service.checked(data, source)
        except KithError as exc:
            outcome.outcome, outcome.problem = "refused", exc.detail
            continue
        current = existing.get(data.name)
        if current is None:
            await service.add(data, source)
            outcome.outcome = "added"
        elif current.archived:
            outcome.outcome = "archived"
        else:
            outcome.differences = _differences(current, wanted)
            if outcome.differences:
                outcome.outcome = "differs"
    return outcomes


def describe(outcome: SeedOutcome) -> str:
    """One line for a person: what became of a declared field."""
    text: dict[str, Any] = {
        "added": "added",
        "unchanged": "exists as declared",
        "archived": "is archived; left so",
        "overridden": f"declared in {TOML} too; the declaration there applies",
        "differs": "exists with another "
        + ", ".join(outcome.differences)
        + "; left as it is (kith fields change changes it)",
        "refused": f"not added: {outcome.problem}",
    }
    return f"custom field {outcome.name} ({outcome.source}): {text[outcome.outcome]}"
