"""Users and roles for admins: add a user, reset a password, end someone's sessions."""

from __future__ import annotations

import uuid
from typing import Any

from kith.errors import KithError
from kith.services.users import UserService
from kith.web.sessions import revoke_sessions
from kith.web.views.common import ADMINS, form_of, kith_of, render, see_other, store_of
from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template


async def _users_page(
    request: Request[Any, Any, Any], status: int = 200, error: str | None = None, done: str = ""
) -> Template:
    users = await UserService(kith_of(request)).list()
    return render(request, "users.html", status=status, users=users, error=error, done=done)


@get("/admin/users", opt=ADMINS)
async def users_page(request: Request[Any, Any, Any]) -> Template:
    return await _users_page(request)


@post("/admin/users", opt=ADMINS)
async def add_user(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_of(request)
    try:
        await UserService(kith_of(request)).add(
            values.get("email", ""),
            values.get("role", ""),
            values.get("name", ""),
            values.get("password") or None,
        )
    except KithError as exc:
        return await _users_page(request, 422, exc.detail)
    return see_other("/admin/users")


@post("/admin/users/{user_id:uuid}/password", opt=ADMINS)
async def reset_password(
    request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID]
) -> Template | Redirect:
    values = await form_of(request)
    try:
        await UserService(kith_of(request)).set_password(user_id, values.get("password", ""))
    except KithError as exc:
        return await _users_page(request, 422, exc.detail)
    # The person signs in again with the new password, on every device.
    await revoke_sessions(store_of(request), user_id)
    return see_other("/admin/users")


@post("/admin/users/{user_id:uuid}/signout", opt=ADMINS)
async def end_sessions(request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID]) -> Redirect:
    await UserService(kith_of(request)).get(user_id)
    await revoke_sessions(store_of(request), user_id)
    return see_other("/admin/users")


PAGES = [users_page, add_user, reset_password, end_sessions]
