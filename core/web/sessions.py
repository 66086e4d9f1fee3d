"""Who is signed in: litestar's server-side session holds the user id and the session
generation of that user; bumping the generation (a password change, an admin reset or
"sign out everywhere") ends every session of the user at once, on every process."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from kith.actor import Actor, Role
from kith.errors import NotAuthenticated, NotFound
from kith.services.users import UserService
from litestar.connection import ASGIConnection
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.base import Store
from litestar.types import Message, ScopeSession

USER = "uid"
GENERATION = "gen"
# When the session was last written to the store (seconds since the epoch).
RENEWED = "at"
# An unchanged session is written back (its expiry pushed on) at most this often.
RENEW_AFTER = 300
_LOADED = "kith_session_loaded"


class SlidingSessionBackend(ServerSideSessionBackend):
    """Server-side sessions that slide without a store write on every response.

    Litestar writes the session back on every response (and with ``renew_on_access`` once more
    on every read). Here an unchanged session is written, and its cookie sent, only when its
    last write is ``RENEW_AFTER`` seconds old: it still expires ``max_age`` after its last use,
    give or take those seconds. Every request still reads the session from the store, so a
    session deleted or revoked by another process ends at its next request."""

    async def load_from_connection(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> dict[str, Any]:
        data = await super().load_from_connection(connection)
        connection.state[_LOADED] = dict(data)
        return data

    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        if isinstance(scope_session, dict) and scope_session:
            now = int(time.time())
            loaded = connection.state.get(_LOADED)
            if scope_session == loaded and now - int(loaded.get(RENEWED, 0)) < RENEW_AFTER:
                return
            scope_session[RENEWED] = now
        await super().store_in_message(scope_session, message, connection)


@dataclass
class SlidingSessionConfig(ServerSideSessionConfig):
    """:class:`SlidingSessionBackend` sessions (leave ``renew_on_access`` off: it writes)."""

    _backend_class = SlidingSessionBackend


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
