"""Bearer-token authentication and role checks. Every route declares its roles; default deny."""

from __future__ import annotations

from typing import Any

from kith.actor import Actor, Role
from kith.errors import KithError, NotAuthenticated, PermissionDenied
from kith.services.users import UserService
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler

PUBLIC = "public"
ROLES = "roles"
# Route ``opt``: an async callable returning the caller for routes that do not take bearer
# tokens (the web UI's pages take a session); the role check stays the same.
AUTHENTICATE = "authenticate"
_ACTOR = "kith.actor"

CurrentActor = NamedDependency[Actor]
"""A handler parameter ``actor: CurrentActor`` receives the caller (a user, after the guard)."""


def roles(*allowed: Role) -> dict[str, Any]:
    """Route ``opt`` declaring who may call it: ``@get(..., opt=roles(Role.AGENT))``.
    Admins may call everything."""
    return {ROLES: frozenset({Role.ADMIN, *allowed})}


def public() -> dict[str, Any]:
    """Route ``opt`` for endpoints anyone may call (health, signed webhooks)."""
    return {PUBLIC: True}


class UnsupportedMediaType(KithError):
    status_code = 415
    title = "Unsupported media type"


def _header(connection: ASGIConnection[Any, Any, Any, Any], name: bytes) -> str:
    # From the raw scope: ``connection.headers`` builds a multidict of every header, a
    # measurable part of a short authenticated request.
    for key, value in connection.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = _header(connection, b"authorization")
    scheme, _, token = header.partition(" ")
    if not header:
        raise NotAuthenticated("send an API token as `Authorization: Bearer <token>`")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("the Authorization header must be `Bearer <token>`")
    return token.strip()


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app-wide guard: authenticate, then check the route's declared roles."""
    if handler.opt.get(PUBLIC):
        return
    allowed = handler.opt.get(ROLES)
    kith = connection.app.state.kith
    authenticate = handler.opt.get(AUTHENTICATE)
    actor: Actor = await (
        authenticate(connection)
        if authenticate is not None
        else UserService(kith).authenticate(_bearer(connection))
    )
    # Straight into the scope's state: ``connection.state`` builds a State object per access.
    connection.scope["state"][_ACTOR] = actor
    if not allowed:
        raise PermissionDenied("this endpoint declares no role, so nobody may call it")
    if actor.role not in allowed:
        needed = ", ".join(sorted(role.value for role in allowed))
        raise PermissionDenied(f"your role ({actor.role}) may not do this; it needs: {needed}")
    if connection.scope.get("method") in ("POST", "PUT", "PATCH") and (
        "data" in handler.parsed_fn_signature.parameters
    ):
        content_type = _header(connection, b"content-type")
        if not content_type.split(";")[0].strip().lower().endswith("json"):
            raise UnsupportedMediaType(
                f"send the body as application/json (got {content_type or 'no content type'})"
            )
        if _header(connection, b"content-length").strip() == "0":
            raise KithError("the request body is empty; send a JSON object")


def current_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    """The caller the guard authenticated (only on routes that are not public)."""
    actor: Actor = connection.scope["state"][_ACTOR]
    return actor
