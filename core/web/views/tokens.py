"""API tokens for admins: every token with its owner and when it was last used (never the
secret), a new one (its secret shown this once), and revoking one."""

from __future__ import annotations

import uuid
from typing import Any

from kith.errors import InvalidInput, KithError
from kith.events import utcnow
from kith.services.users import IssuedToken, UserService
from kith.web.i18n import t
from kith.web.views.common import ADMINS, form_of, kith_of, render, see_other
from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

DEFAULT_DAYS = 90


async def _tokens_page(
    request: Request[Any, Any, Any],
    status: int = 200,
    error: str | None = None,
    issued: IssuedToken | None = None,
    values: dict[str, str] | None = None,
) -> Template:
    service = UserService(kith_of(request))
    users = await service.list()
    page = render(
        request,
        "tokens.html",
        status=status,
        tokens=await service.list_tokens(),
        owners={user.id: user for user in users},
        users=[user for user in users if user.active],
        now=utcnow(),
        issued=issued,
        values=values or {"expires_days": str(DEFAULT_DAYS)},
        error=error,
    )
    # A page showing a new secret must not be kept by the browser or a proxy.
    page.headers["Cache-Control"] = "no-store"
    return page


@get("/admin/tokens", opt=ADMINS)
async def tokens_page(request: Request[Any, Any, Any]) -> Template:
    return await _tokens_page(request)


def _days(request: Request[Any, Any, Any], text: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(
            t(request, "Give a whole number of days."), field="expires_days"
        ) from None


@post("/admin/tokens", opt=ADMINS)
async def create_token(request: Request[Any, Any, Any]) -> Template:
    values = await form_of(request)
    try:
        try:
            owner = uuid.UUID(values.get("user_id", ""))
        except ValueError:
            raise InvalidInput(t(request, "Choose whose token it is."), field="user_id") from None
        issued = await UserService(kith_of(request)).create_token_for(
            owner, values.get("name", ""), _days(request, values.get("expires_days", ""))
        )
    except KithError as exc:
        return await _tokens_page(request, 422, exc.detail, values=values)
    # Shown here and never again: a redirect would lose it.
    return await _tokens_page(request, 201, issued=issued)


@post("/admin/tokens/{token_id:uuid}/revoke", opt=ADMINS)
async def revoke_token(request: Request[Any, Any, Any], token_id: FromPath[uuid.UUID]) -> Redirect:
    await UserService(kith_of(request)).revoke_token(str(token_id))
    return see_other("/admin/tokens")


PAGES = [tokens_page, create_token, revoke_token]
