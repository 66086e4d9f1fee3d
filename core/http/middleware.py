"""Request logging: method, path, status, duration and a request id; never bodies."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from kith.logs import get_logger
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_log = get_logger("kith.http")


class RequestLogMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        started = time.perf_counter()
        status: dict[str, int] = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await next_app(scope, receive, send_wrapper)
            except Exception as exc:
                # A middleware further in refused the request (the web UI's CSRF check): the
                # app's exception handler answers with the error's status after this returns.
                status["code"] = getattr(exc, "status_code", 500)
                raise
            finally:
                _log.info(
                    "request",
                    method=scope.get("method"),
                    path=scope.get("path"),
                    status=status["code"],
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )


def _incoming_id(scope: Any) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")[:64]
            if text.replace("-", "").isalnum():
                return text
    return None
