"""Users and their API tokens, for admins: the same rules as ``kith users`` and ``kith tokens``."""

from __future__ import annotations

import uuid
from typing import Annotated

from kith.http.auth import roles
from kith.http.routes.contacts import Cursor, Limit
from kith.schemas import Page
from kith.services.users import IssuedToken, TokenCreate, TokenOut, UserCreate, UserOut, UserService
from litestar import Controller, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

ADMINS = roles()


class UserController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/", opt=ADMINS, summary="List users")
    async def list_users(
        self, state: State, cursor: Cursor = None, limit: Limit = 50
    ) -> Page[UserOut]:
        return await UserService(state.kith).page(cursor=cursor, limit=limit)

    @post("/", opt=ADMINS, summary="Add a user")
    async def add(self, state: State, data: JSONBody[UserCreate]) -> Response[UserOut]:
        user = await UserService(state.kith).add(
            data.email, data.role, name=data.name, password=data.password
        )
        return Response(
            user, status_code=HTTP_201_CREATED, headers={"Location": f"/api/users/{user.id}"}
        )

    @get("/{user_id:uuid}", opt=ADMINS, summary="Read a user")
    async def read(self, state: State, user_id: FromPath[uuid.UUID]) -> UserOut:
        return await UserService(state.kith).get(user_id)


class TokenController(Controller):
    path = "/api/tokens"
    tags = ["tokens"]

    @get("/", opt=ADMINS, summary="List API tokens (never the tokens themselves)")
    async def list_tokens(
        self,
        state: State,
        user_id: Annotated[
            uuid.UUID | None, QueryParameter(description="only this user's tokens")
        ] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[TokenOut]:
        return await UserService(state.kith).token_page(user_id, cursor=cursor, limit=limit)

    @post("/", opt=ADMINS, summary="Create an API token; its secret is shown this once")
    async def create(self, state: State, data: JSONBody[TokenCreate]) -> Response[IssuedToken]:
        issued = await UserService(state.kith).create_token_for(
            data.user_id, name=data.name, expires_days=data.expires_days
        )
        return Response(
            issued,
            status_code=HTTP_201_CREATED,
            # The secret is in this answer alone: no cache may keep a copy.
            headers={"Location": f"/api/tokens/{issued.token.id}", "Cache-Control": "no-store"},
        )

    @get("/{token_id:uuid}", opt=ADMINS, summary="Read an API token (never the token itself)")
    async def read(self, state: State, token_id: FromPath[uuid.UUID]) -> TokenOut:
        return await UserService(state.kith).get_token(token_id)

    @delete("/{token_id:uuid}", opt=ADMINS, status_code=HTTP_200_OK, summary="Revoke an API token")
    async def revoke(self, state: State, token_id: FromPath[uuid.UUID]) -> TokenOut:
        users = UserService(state.kith)
        await users.get_token(token_id)
        return await users.revoke_token(str(token_id))
