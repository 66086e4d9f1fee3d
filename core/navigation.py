"""What a plugin adds to the web UI's navigation (``kith_register_navigation``)."""

from __future__ import annotations

from dataclasses import dataclass

from kith.actor import Role


@dataclass(frozen=True, kw_only=True)
class NavLink:
    """A link in the web UI's navigation to one of the plugin's pages.

    ``label`` is English; wrap it in ``kith.web.N_`` so the message catalogs find it, and the
    page shows it in the reader's language where a translation exists. ``roles`` are those who
    see the link (admins see every link); the page itself still checks its own roles. ``order``
    places it among the other links (core's are 10, 20, ... 90; compliance is 100). A link under
    ``/compliance/`` is listed on the *Compliance* page instead of in the bar."""

    path: str
    label: str
    roles: frozenset[Role] = frozenset({Role.ADMIN})
    order: int = 95
