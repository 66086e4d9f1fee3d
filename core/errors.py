"""Domain errors. Services raise them; the HTTP layer turns them into RFC 9457 problem details
and the CLI into one readable line."""

from __future__ import annotations

from typing import Any


class KithError(Exception):
    """Base of every error a person is meant to read."""

    status_code = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(KithError):
    """A value was not accepted; ``field`` names it."""

    status_code = 422
    title = "Invalid input"

    def __init__(self, detail: str, field: str | None = None, **extra: Any) -> None:
        if field is not None:
            extra["field"] = field
        super().__init__(detail, **extra)


class NotFound(KithError):
    status_code = 404
    title = "Not found"


class Conflict(KithError):
    status_code = 409
    title = "Conflict"


class NotAuthenticated(KithError):
    status_code = 401
    title = "Not authenticated"


class PermissionDenied(KithError):
    status_code = 403
    title = "Forbidden"
