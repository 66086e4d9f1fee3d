"""Errors on pages: a person gets a page (or the sign-in page), not problem details."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from kith.errors import KithError, NotAuthenticated
from kith.web.i18n import N_, t
from kith.web.views.common import render
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect

FALLBACK = N_("Something went wrong")
TITLES = {
    400: N_("The request could not be read"),
    403: N_("You may not open this page"),
    404: N_("Page not found"),
    405: N_("This page does not take that request"),
    409: N_("Conflict"),
    413: N_("The file is too large"),
    422: N_("Something in the form is not right"),
    429: N_("Too many requests"),
}


def _error_page(request: Request[Any, Any, Any], status: int, detail: str) -> Response[Any]:
    title = t(request, TITLES.get(status, FALLBACK))
    return render(request, "error.html", status=status, title=title, detail=detail)


def _kith_error(request: Request[Any, Any, Any], exc: KithError) -> Response[Any]:
    if isinstance(exc, NotAuthenticated):
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return Redirect(f"/signin?next={quote(target)}")
    return _error_page(request, exc.status_code, exc.detail)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    detail = exc.detail
    if exc.status_code == 403 and "CSRF" in detail:
        detail = t(request, "The form had expired. Go back, reload the page and send it again.")
    elif exc.status_code == 404:
        detail = t(request, "There is nothing at this address.")
    return _error_page(request, exc.status_code, detail)


WEB_EXCEPTION_HANDLERS: dict[Any, Any] = {KithError: _kith_error, HTTPException: _http_error}
