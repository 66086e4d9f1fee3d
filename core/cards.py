"""What a plugin adds to the web UI's contact card (``kith_contact_card_sections``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# The form a section's page posted, field name -> value (the CSRF field left out).
SectionForm = dict[str, str]


@dataclass(frozen=True, kw_only=True)
class CardSection:
    """One section of a contact's card: a heading and the HTML under it.

    ``title`` is English; wrap it in ``kith.web.N_`` so the message catalogs find it, and the
    card shows it in the reader's language where a translation exists.
    ``html`` goes into the page as it is: the plugin escapes every value it shows. ``key``
    names the section (its element id is ``card-<key>``); ``order`` places it among the
    other plugins' sections (lower first). A form in the section posts to
    ``/contacts/<contact id>/card/<key>``, where the web UI checks the session and the CSRF
    field and calls ``submit`` with the form; a :class:`kith.KithError` it raises is shown on
    the card (422), otherwise the browser goes back to the card."""

    key: str
    title: str
    html: str
    order: int = 100
    submit: Callable[[SectionForm], Awaitable[None]] | None = None
