"""The ``kith.toml`` sections plugins declare, validated into their msgspec Structs."""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec
from kith.plugin_manager._records import log
from kith.settings import Settings, SettingsError

_MSGSPEC_PATH = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$")
_MSGSPEC_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def validate_sections(
    schemas: Mapping[str, type[msgspec.Struct]], settings: Settings
) -> dict[str, msgspec.Struct]:
    """Every declared section, validated; raises :class:`SettingsError` naming
    ``[section] key`` for the first bad value. An undeclared table is only warned about."""
    for name, value in settings.extra.items():
        if isinstance(value, dict) and name not in schemas:
            log().warning(
                "kith.toml has a section no loaded plugin declares; it is ignored",
                section=name,
            )
    return {name: _validate(name, schema, settings) for name, schema in schemas.items()}


def _validate(name: str, schema: type[msgspec.Struct], settings: Settings) -> msgspec.Struct:
    raw = settings.extra.get(name, {})
    if not isinstance(raw, dict):
        raise SettingsError(f"[{name}] in kith.toml must be a table, got {type(raw).__name__}")
    known = {info.encode_name for info in msgspec.structs.fields(schema)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(
            f"[{name}] {unknown[0]}: unknown setting (known: {', '.join(sorted(known)) or 'none'})"
        )
    try:
        return msgspec.convert(raw, schema)
    except msgspec.ValidationError as exc:
        raise SettingsError(_readable(name, str(exc))) from None


def _readable(section: str, message: str) -> str:
    path = ""
    located = _MSGSPEC_PATH.match(message)
    if located:
        message, path = located["message"], located["path"].lstrip(".")
    missing = _MSGSPEC_MISSING.match(message)
    if missing:
        key = f"{path}.{missing['field']}" if path else missing["field"]
        return f"[{section}] {key}: required setting is missing"
    return f"[{section}] {path or '(section)'}: {message}"
