"""First run, signing in and out, one's own password, the language."""

from __future__ import annotations

from typing import Any

from kith.actor import Role
from kith.errors import KithError, NotAuthenticated, NotFound
from kith.services.users import UserService
from kith.web.config import SECTION, WebSettings
from kith.web.i18n import LANGUAGE_COOKIE, LANGUAGES, t
from kith.web.lockout import Lockout
from kith.web.sessions import revoke_sessions, session_actor, start_session
from kith.web.setup_code import check_setup_code, forget_setup_code
from kith.web.views.common import (
    ANYONE_SIGNED_IN,
    OPEN,
    current_actor,
    form_of,
    kith_of,
    render,
    safe_next,
    see_other,
    store_of,
)
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery
from litestar.response import Redirect, Template

YEAR_S = 365 * 24 * 3600


def _lockout(request: Request[Any, Any, Any]) -> Lockout:
    options = kith_of(request).settings.parsed(SECTION, WebSettings)
    return Lockout(store_of(request), options.lockout_attempts, options.lockout_minutes)


def landing(role: Role) -> str:
    return "/compliance" if role == Role.COMPLIANCE else "/my-day"


@get("/", opt=OPEN)
async def home(request: Request[Any, Any, Any]) -> Redirect:
    if await UserService(kith_of(request)).count() == 0:
        return Redirect("/setup")
    try:
        actor = await session_actor(request)
    except NotAuthenticated:
        return Redirect("/signin")
    assert actor.role is not None
    return Redirect(landing(actor.role))


async def _fresh_install(request: Request[Any, Any, Any]) -> None:
    # Once someone can sign in, the set-up page is gone.
    if await UserService(kith_of(request)).count() > 0:
        raise NotFound("Kith is set up already")


@get("/setup", opt=OPEN)
async def setup_form(request: Request[Any, Any, Any]) -> Template:
    await _fresh_install(request)
    return render(request, "setup.html", values={}, error=None)


@post("/setup", opt=OPEN)
async def setup(request: Request[Any, Any, Any]) -> Template | Redirect:
    await _fresh_install(request)
    values = await form_of(request)
    store = store_of(request)
    error = None
    if not await check_setup_code(store, values.get("code", "")):
        error = t(request, "The set-up code is not right. `kith serve` printed it when it started.")
    elif values.get("password", "") != values.get("password_again", ""):
        error = t(request, "The two passwords differ.")
    else:
        try:
            user = await UserService(kith_of(request)).add(
                values.get("email", ""),
                Role.ADMIN.value,
                values.get("name", ""),
                values.get("password", ""),
            )
        except KithError as exc:
            error = exc.detail
        else:
            await forget_setup_code(store)
            await start_session(request, store, user.id)
            return see_other("/my-day")
    values.pop("password", None)
    values.pop("password_again", None)
    return render(request, "setup.html", status=422, values=values, error=error)


@get("/signin", opt=OPEN)
async def signin_form(
    request: Request[Any, Any, Any], next: FromQuery[str | None] = None
) -> Template:
    return render(request, "signin.html", email="", next=safe_next(next), error=None)


@post("/signin", opt=OPEN)
async def signin(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_of(request)
    email, target = values.get("email", ""), safe_next(values.get("next"))
    lockout = _lockout(request)
    if await lockout.locked(email):
        error = t(
            request,
            "Too many wrong passwords: this account is locked for a while. "
            "Try again later or ask an admin.",
        )
        return render(request, "signin.html", status=429, email=email, next=target, error=error)
    try:
        user = await UserService(kith_of(request)).verify_password(
            email, values.get("password", "")
        )
    except (NotAuthenticated, KithError):
        await lockout.failed(email)
        error = t(request, "Wrong email or password.")
        return render(request, "signin.html", status=401, email=email, next=target, error=error)
    await lockout.clear(email)
    await start_session(request, store_of(request), user.id)
    return see_other(target if target != "/" else landing(user.role))


@post("/signout", opt=ANYONE_SIGNED_IN)
async def signout(request: Request[Any, Any, Any]) -> Redirect:
    request.clear_session()
    return see_other("/signin")


@get("/account", opt=ANYONE_SIGNED_IN)
async def account(request: Request[Any, Any, Any]) -> Template:
    return render(request, "account.html", error=None, done=False)


@post("/account/password", opt=ANYONE_SIGNED_IN)
async def change_password(request: Request[Any, Any, Any]) -> Template:
    actor = current_actor(request)
    values = await form_of(request)
    users = UserService(kith_of(request))
    error = None
    try:
        await users.verify_password(actor.name, values.get("current", ""))
    except KithError:
        error = t(request, "Your current password is not right.")
    if error is None and values.get("password", "") != values.get("password_again", ""):
        error = t(request, "The two passwords differ.")
    if error is None:
        assert actor.id is not None
        try:
            await users.set_password(actor.id, values.get("password", ""))
        except KithError as exc:
            error = exc.detail
        else:
            # Every other session of this person ends; this one goes on.
            await revoke_sessions(store_of(request), actor.id)
            await start_session(request, store_of(request), actor.id)
    return render(
        request,
        "account.html",
        status=200 if error is None else 422,
        error=error,
        done=error is None,
    )


@post("/language", opt=OPEN)
async def language(request: Request[Any, Any, Any]) -> Response[Any]:
    values = await form_of(request)
    chosen = values.get("language", "")
    response = see_other(safe_next(values.get("next")))
    if chosen in LANGUAGES:
        response.cookies.append(
            Cookie(key=LANGUAGE_COOKIE, value=chosen, max_age=YEAR_S, samesite="lax", path="/")
        )
    return response


PAGES = [
    home,
    setup_form,
    setup,
    signin_form,
    signin,
    signout,
    account,
    change_password,
    language,
]
