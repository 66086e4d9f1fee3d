"""The exchange endpoint 1C calls: by default ``/1c/exchange`` and the address 1C's "exchange
with the site" suggests for such sites, ``/bitrix/admin/1c_exchange.php``; ``[onec]
exchange_paths`` names others.

It speaks 1C's protocol, not Kith's API: plain-text answers (``success``, ``progress``,
``failure`` and a reason) that 1C reads line by line, always with status 200 so that 1C shows
the reason. It is public in Kith's sense: it checks the exchange user's password itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kith import KithError, get_logger
from kith.http import public
from kith.plugins.onec.exchange import COOKIE, ExchangeFailure, ExchangeService, failure
from litestar import Request, Response, route
from litestar.handlers import HTTPRouteHandler

# The endpoint's own cap; what one request may carry is [onec] file_limit_bytes.
MAX_BODY = 512 * 1024 * 1024
TEXT = "text/plain; charset=windows-1251"
XML = "application/xml; charset=windows-1251"

_log = get_logger(__name__)


def _text(body: str) -> Response[bytes]:
    # 1C reads the answer in windows-1251; anything outside it becomes "?".
    return Response(body.encode("cp1251", errors="replace"), media_type=TEXT, status_code=200)


def exchange_handler(paths: Sequence[str]) -> HTTPRouteHandler:
    """The exchange endpoint at ``paths`` (from ``[onec] exchange_paths``)."""
    return route(
        list(paths),
        http_method=["GET", "POST"],
        opt=public(),
        request_max_body_size=MAX_BODY,
        media_type=TEXT,
        status_code=200,
        summary="1C's exchange with the site (CommerceML): one step per request",
        description="Called by 1C, not by people: `type` (sale, catalog) and `mode` (checkauth, "
        "init, file, import, query, success) in the query string; answers are plain text "
        "(`success`, `progress`, `failure` and a reason) or, for `mode=query`, CommerceML XML "
        "in windows-1251. The paths are `[onec] exchange_paths`. See docs/onec.md.",
        tags=["1C"],
    )(exchange)


async def exchange(request: Request[Any, Any, Any]) -> Response[bytes]:
    """One step of 1C's exchange (``type`` and ``mode`` in the query string)."""
    service = ExchangeService(request.app.state.kith)
    params = request.query_params
    exchange_type = str(params.get("type", ""))
    mode = str(params.get("mode", ""))
    authorization = request.headers.get("authorization", "")
    try:
        if mode == "checkauth":
            return _text(await service.checkauth(exchange_type, authorization))
        await service.authenticate(request.cookies.get(COOKIE), authorization)
        if mode == "init":
            return _text(await service.init(exchange_type, params.get("version")))
        if mode == "file":
            return _text(
                await service.file(exchange_type, str(params.get("filename", "")), request.stream())
            )
        if mode == "import":
            return _text(await service.import_file(exchange_type, str(params.get("filename", ""))))
        if mode == "query":
            body = await service.query(exchange_type, params.get("version"))
            return Response(body, media_type=XML, status_code=200)
        if mode in ("success", "complete"):
            return _text(await service.success(exchange_type))
        raise ExchangeFailure(f"mode {mode[:30]!r} is not one of 1C's exchange steps")
    except (ExchangeFailure, KithError) as exc:
        reason = str(exc)
        _log.info(
            "1C exchange step refused", type=exchange_type[:20], mode=mode[:30], reason=reason
        )
        try:
            await service.failed(exchange_type or "-", mode or "-", reason)
        except Exception:
            _log.warning("could not record a failed 1C exchange step", exc_info=True)
        return _text(failure(reason))
