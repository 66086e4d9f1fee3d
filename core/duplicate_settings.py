"""Settings of duplicate detection: the ``[duplicates]`` table of ``kith.toml``, a section core
declares like a plugin's (``KITH_DUPLICATES_<KEY>`` variables override single values)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from kith.settings import Settings

SECTION = "duplicates"


class DuplicateSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How duplicate contacts are found (see docs/duplicates.md)."""

    threshold: Annotated[int, msgspec.Meta(ge=1, le=100)] = 85
    """Pairs scoring at least this (0-100) are proposed; pairs sharing an email address or a
    phone number are proposed whatever their score."""
    max_block: Annotated[int, msgspec.Meta(ge=2, le=10_000)] = 20
    """A blocking key (a pair of name words, an email, a phone) held by more contacts than
    this is too common to tell anyone apart: its contacts are not compared through it."""
    city_field: Annotated[str, msgspec.Meta(max_length=50)] = "city"
    """The custom field that holds a contact's city, compared when both have it ("" for
    none)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> DuplicateSettings:
        """``[duplicates]`` of ``kith.toml``; a bad value is a :class:`SettingsError`."""
        return settings.parsed(SECTION, cls)
