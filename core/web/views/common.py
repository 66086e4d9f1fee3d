"""What every page handler shares: rendering with the request's language and the signed-in
person, reading a form, and the roles pages declare (the API's, through the same guard)."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from kith.actor import Actor, Role
from kith.errors import InvalidInput
from kith.http.auth import current_actor, public, roles
from kith.navigation import NavLink
from kith.runtime import Kith
from kith.web.i18n import LANGUAGES, N_, choose_language
from kith.web.templating import page_gettext
from litestar import Request
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.stores.base import Store

T = TypeVar("T")

# The channel reads and changes through pages are audited under.
WEB = "web"
# Who may open what, as on the API (admins may open everything).
STAFF = roles(Role.AGENT)
READERS = roles(Role.AGENT, Role.COMPLIANCE)
ANYONE_SIGNED_IN = roles(Role.AGENT, Role.COMPLIANCE)
ADMINS = roles()
COMPLIANCE = roles(Role.COMPLIANCE)
OPEN = public()

COMPLIANCE_HOME = "/compliance"
# The navigation (plugins add theirs with ``kith_register_navigation``).
NAV: tuple[NavLink, ...] = (
    NavLink(path="/my-day", label=N_("My day"), roles=frozenset({Role.AGENT}), order=10),
    NavLink(
        path="/contacts",
        label=N_("Contacts"),
        roles=frozenset({Role.AGENT, Role.COMPLIANCE}),
        order=20,
    ),
    NavLink(path="/duplicates", label=N_("Duplicates"), roles=frozenset({Role.AGENT}), order=30),
    NavLink(path="/imports", label=N_("Import"), order=40),
    NavLink(path="/admin/users", label=N_("Users"), order=50),
    NavLink(path="/admin/tokens", label=N_("API tokens"), order=60),
    NavLink(path="/admin/fields", label=N_("Custom fields"), order=70),
    NavLink(path="/admin/plugins", label=N_("Plugins"), order=90),
    NavLink(
        path=COMPLIANCE_HOME, label=N_("Compliance"), roles=frozenset({Role.COMPLIANCE}), order=100
    ),
)


def navigation(kith: Kith) -> tuple[NavLink, ...]:
    """Core's links and every plugin's, in their order."""
    found = [*NAV, *(kith.plugins.navigation() if kith.plugins is not None else ())]
    return tuple(sorted(found, key=lambda link: link.order))


def visible_links(kith: Kith, actor: Actor | None) -> list[NavLink]:
    """The links ``actor``'s role sees (admins see every link)."""
    if actor is None:
        return []
    return [
        link for link in navigation(kith) if actor.role in link.roles or actor.role is Role.ADMIN
    ]


def on_compliance_page(link: NavLink) -> bool:
    """A link under ``/compliance/`` (a plugin's data protection page) is listed on the
    *Compliance* page, not in the bar."""
    return link.path.startswith(COMPLIANCE_HOME + "/")


def kith_of(request: Request[Any, Any, Any]) -> Kith:
    kith: Kith = request.app.state.kith
    return kith


def store_of(request: Request[Any, Any, Any]) -> Store:
    return request.app.stores.get("web")


def signed_in(request: Request[Any, Any, Any]) -> Actor | None:
    try:
        return current_actor(request)
    except KeyError:
        return None


def render(
    request: Request[Any, Any, Any], template: str, status: int = 200, **context: Any
) -> Template:
    actor = signed_in(request)
    links = visible_links(kith_of(request), actor)
    nav = [(link.path, link.label) for link in links if not on_compliance_page(link)]
    language = choose_language(request)
    return Template(
        template_name=template,
        context={
            "lang": language,
            "_": page_gettext(language),
            "languages": LANGUAGES,
            "actor": actor,
            "nav": nav,
            "here": request.url.path,
            "timezone": kith_of(request).settings.timezone,
            **context,
        },
        status_code=status,
    )


def see_other(path: str) -> Redirect:
    """After a form: the browser loads ``path`` with GET (so a reload sends nothing again)."""
    return Redirect(path, status_code=HTTP_303_SEE_OTHER)


async def form_of(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The text fields of a posted form (the CSRF token left out)."""
    form = await request.form()
    return {
        key: value.strip()
        for key, value in form.items()
        if isinstance(value, str) and key != "_csrf_token"
    }


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def convert_form(values: dict[str, Any], shape: type[T]) -> T:
    """``values`` as the service's input, checked as the API checks a body (the constructor
    alone checks no names, patterns or lengths)."""
    try:
        return msgspec.convert(values, shape)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from None
