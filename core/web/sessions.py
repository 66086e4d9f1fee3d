"""Who is signed in: litestar's server-side session holds the user id and the session
generation of that user; bumping the generation (a password change, an admin reset or
"sign out everywhere") ends every session of the user at once, on every process."""

from __future__ import annotations

import uuid
from typing import Any

from kith.actor import Actor, Role
from kith.errors import NotAuthenticated, NotFound
from kith.services.users import UserService
from litestar.connection import ASGIConnection
from litestar.stores.base import Store

USER = "uid"
GENERATION = "gen"


def _generation_key(user_id: uuid.UUID) -> str:
    return f"session-gen:{user_id}"


async def generation(store: Store, user_id: uuid.UUID) -> int:
    value = await store.get(_generation_key(user_id))
    return int(value) if value is not None else 0


async def revoke_sessions(store: Store, user_id: uuid.UUID) -> None:
    """End every session of this user (they sign in again)."""
    await store.set(_generation_key(user_id), str(await generation(store, user_id) + 1))


async def start_session(
    connection: ASGIConnection[Any, Any, Any, Any], store: Store, user_id: uuid.UUID
) -> None:
    # A new session id on sign-in, so a session id planted before it is worth nothing.
    connection.clear_session()
    connection.set_session({USER: str(user_id), GENERATION: await generation(store, user_id)})


async def session_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    """The signed-in user of this request (the guard's ``authenticate`` for pages)."""
    found = connection.scope.get("session")
    session: dict[str, Any] = found if isinstance(found, dict) else {}
    raw = session.get(USER)
    if not raw:
        raise NotAuthenticated("sign in first")
    store: Store = connection.app.stores.get("web")
    user_id = uuid.UUID(str(raw))
    if session.get(GENERATION) != await generation(store, user_id):
        connection.clear_session()
        raise NotAuthenticated("this session was ended; sign in again")
    try:
        user = await UserService(connection.app.state.kith).get(user_id)
    except NotFound:
        connection.clear_session()
        raise NotAuthenticated("sign in first") from None
    if not user.active:
        connection.clear_session()
        raise NotAuthenticated("this account is deactivated")
    return Actor(kind="user", id=user.id, role=Role(user.role), name=user.email)
