"""Every error leaves the API as RFC 9457 problem details with a message a person can act on."""

from __future__ import annotations

from typing import Any

from kith.errors import KithError
from kith.logs import get_logger
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_422_UNPROCESSABLE_ENTITY

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
}


def _from_kith(exc: KithError) -> ProblemDetailsException:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return ProblemDetailsException(
        status_code=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        extra=exc.extra or None,
        headers=headers,
    )


def _from_validation(exc: ValidationException) -> ProblemDetailsException:
    errors: list[dict[str, Any]] = [
        # ``data`` is the handler's name for the body; a client knows it as the body.
        {**e, "key": "body"} if e.get("key") == "data" else e
        for e in (exc.extra or [])
        if isinstance(e, dict)
    ]
    if not errors and isinstance(exc.__cause__, KeyError):
        # A required parameter is absent; litestar's message also repeats the whole URL.
        name = str(exc.__cause__.args[0]) if exc.__cause__.args else "?"
        source = next((s for s in ("query", "header", "cookie") if f" {s} " in exc.detail), "query")
        errors = [{"key": name, "source": source, "message": "required"}]
        return ProblemDetailsException(
            status_code=HTTP_422_UNPROCESSABLE_ENTITY,
            title=TITLES[422],
            detail=f"the {source} parameter {name!r} is required",
            extra={"errors": errors},
        )
    if not errors:
        # The body could not be decoded at all (not JSON, wrong top-level type).
        return ProblemDetailsException(
            status_code=HTTP_400_BAD_REQUEST,
            title=TITLES[400],
            detail=f"the request body could not be read: {exc.detail}",
        )
    first = errors[0]
    where = first.get("key") or first.get("source") or "body"
    return ProblemDetailsException(
        status_code=HTTP_422_UNPROCESSABLE_ENTITY,
        title=TITLES[422],
        detail=f"{where}: {first.get('message', 'invalid value')}",
        extra={"errors": errors},
    )


def _from_http(exc: HTTPException) -> ProblemDetailsException:
    detail = exc.detail
    if isinstance(exc.__cause__, SerializationException):
        detail = f"the request body is not valid JSON: {detail}"
    elif exc.status_code == 413:
        detail = "the request body is larger than this server accepts"
    elif exc.status_code == 404 and detail == "Not Found":
        detail = "no such endpoint; /schema shows the API"
    return ProblemDetailsException(
        status_code=exc.status_code,
        title=TITLES.get(exc.status_code, "Error"),
        detail=detail,
        headers=exc.headers,
        extra=exc.extra if isinstance(exc.extra, dict) else None,
    )


def _from_unexpected(exc: Exception) -> ProblemDetailsException:
    get_logger("kith.http").error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return ProblemDetailsException(
        status_code=500,
        title=TITLES[500],
        detail="something went wrong on the server; the log has the details (search for the "
        "request id)",
    )


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                KithError: _from_kith,
                ValidationException: _from_validation,
                HTTPException: _from_http,
                Exception: _from_unexpected,
            }
        )
    )
