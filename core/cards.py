"""What a plugin adds to the web UI's contact card (``kith_contact_card_sections``)."""

from __future__ import annotations

import msgspec


class CardSection(msgspec.Struct, frozen=True, kw_only=True):
    """One section of a contact's card: a heading and the HTML under it.

    ``html`` goes into the page as it is: the plugin escapes every value it shows. ``key``
    names the section (its element id is ``card-<key>``); ``order`` places it among the
    other plugins' sections (lower first)."""

    key: str
    title: str
    html: str
    order: int = 100
