"""Duplicate contacts: the pairs a scan found, a scan on demand, and "not a duplicate". The same
rules as ``kith contacts duplicates``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from kith.http.auth import CurrentActor
from kith.http.routes.contacts import API, READ, WRITE, Cursor, Limit
from kith.schemas import DuplicatePairOut, DuplicateScanOut, DuplicateStatus, Page
from kith.services.duplicates import DuplicateService
from litestar import Controller, Request, get, post
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK


def _service(request: Request[Any, Any, Any]) -> DuplicateService:
    return DuplicateService(request.app.state.kith, API)


class DuplicateController(Controller):
    path = "/api/duplicates"
    tags = ["duplicates"]

    @get("/", opt=READ, summary="List duplicate pairs, best score first")
    async def list_pairs(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        cursor: Cursor = None,
        limit: Limit = 50,
        contact: Annotated[
            uuid.UUID | None, QueryParameter(description="only the pairs of this contact")
        ] = None,
        status: Annotated[
            DuplicateStatus,
            QueryParameter(description="pending pairs, or those marked not a duplicate"),
        ] = "pending",
    ) -> Page[DuplicatePairOut]:
        return await _service(request).list(
            contact_id=contact, status=status, cursor=cursor, limit=limit, actor=actor
        )

    @post("/scan", opt=WRITE, status_code=HTTP_200_OK, summary="Scan for duplicates")
    async def scan(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        full: Annotated[
            bool,
            QueryParameter(
                description="check every contact, not only those new or changed since the last scan"
            ),
        ] = False,
    ) -> DuplicateScanOut:
        return await _service(request).scan(full=full, actor=actor)

    @get("/{pair_id:uuid}", opt=READ, summary="Read a duplicate pair")
    async def read(
        self, pair_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], actor: CurrentActor
    ) -> DuplicatePairOut:
        return await _service(request).get(pair_id, actor)

    @post(
        "/{pair_id:uuid}/dismiss",
        opt=WRITE,
        status_code=HTTP_200_OK,
        summary="Mark a pair as not a duplicate",
    )
    async def dismiss(
        self, pair_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], actor: CurrentActor
    ) -> DuplicatePairOut:
        return await _service(request).dismiss(pair_id, actor)
