"""Duplicates: the pairs a scan proposed, merged into the contact kept or dismissed."""

from __future__ import annotations

import uuid
from typing import Any

from kith.errors import InvalidInput, KithError
from kith.http.auth import current_actor
from kith.services.duplicates import DuplicateService
from kith.services.merges import MergeService
from kith.web.i18n import t
from kith.web.views.common import READERS, STAFF, WEB, form_of, kith_of, render, see_other
from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

PAGE_SIZE = 25


async def _page(
    request: Request[Any, Any, Any],
    cursor: str | None = None,
    status: int = 200,
    error: str | None = None,
    scanned: str = "",
) -> Template:
    pairs = await DuplicateService(kith_of(request), WEB).list(
        cursor=cursor, limit=PAGE_SIZE, actor=current_actor(request)
    )
    return render(
        request,
        "duplicates.html",
        status=status,
        pairs=pairs.items,
        next_cursor=pairs.next_cursor,
        error=error,
        scanned=scanned,
    )


@get("/duplicates", opt=READERS)
async def duplicates_page(
    request: Request[Any, Any, Any], cursor: FromQuery[str | None] = None
) -> Template:
    return await _page(request, cursor)


@post("/duplicates/scan", opt=STAFF)
async def scan(request: Request[Any, Any, Any]) -> Template:
    outcome = await DuplicateService(kith_of(request), WEB).scan(actor=current_actor(request))
    found = t(request, "Scan done: %(found)s new pairs.", found=outcome.found)
    return await _page(request, scanned=found)


@post("/duplicates/{pair_id:uuid}/merge", opt=STAFF)
async def merge(
    request: Request[Any, Any, Any], pair_id: FromPath[uuid.UUID]
) -> Template | Redirect:
    values = await form_of(request)
    actor = current_actor(request)
    try:
        pair = await DuplicateService(kith_of(request), WEB).get(pair_id, actor)
        sides = {pair.contact_a.id, pair.contact_b.id}
        try:
            keep = uuid.UUID(values.get("keep", ""))
        except ValueError:
            keep = None
        if keep not in sides:
            raise InvalidInput(t(request, "Choose the contact to keep."), field="keep")
        await MergeService(kith_of(request), WEB).merge(keep, list(sides - {keep}), actor=actor)
    except KithError as exc:
        return await _page(request, status=exc.status_code, error=exc.detail)
    return see_other(f"/contacts/{keep}")


@post("/duplicates/{pair_id:uuid}/dismiss", opt=STAFF)
async def dismiss(request: Request[Any, Any, Any], pair_id: FromPath[uuid.UUID]) -> Redirect:
    await DuplicateService(kith_of(request), WEB).dismiss(pair_id, current_actor(request))
    return see_other("/duplicates")


PAGES = [duplicates_page, scan, merge, dismiss]
