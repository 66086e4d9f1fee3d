"""A contact's three names as they are stored: shared by the contact service and an import's
worker process, which computes their name-search tokens ahead of the writer."""

from __future__ import annotations

from kith.errors import InvalidInput


def blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def display_name(kind: str, name: str | None, given: str | None, family: str | None) -> str:
    """The name shown: ``name``, else the given and family names joined; an organization
    needs a name, a person one of the three."""
    name = (name or "").strip()
    if name:
        return name
    joined = " ".join(part.strip() for part in (given, family) if part and part.strip())
    if joined:
        return joined
    if kind == "organization":
        raise InvalidInput("an organization needs a name", field="name")
    raise InvalidInput("a person needs a name, or a given or family name", field="name")


def stored_names(
    kind: str, name: str | None, given: str | None, family: str | None
) -> dict[str, str | None]:
    """The contact row's name columns (plaintext) for these names."""
    return {
        "display_name": display_name(kind, name, given, family),
        "given_name": blank_to_none(given),
        "family_name": blank_to_none(family),
    }
