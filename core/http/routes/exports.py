"""Exports of contacts as CSV, streamed as they are read, with the filters of the contacts list.
The same service as ``kith export contacts``."""

from __future__ import annotations

from typing import Annotated, Any

from kith.http.auth import current_actor
from kith.http.routes.contacts import (
    API,
    READ,
    OrganizationFilter,
    SearchQuery,
    field_filters,
)
from kith.services.contacts import ContactFilter
from kith.services.exports import ExportService
from litestar import Controller, Request, get
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

CSV = "text/csv; charset=utf-8"


class ExportController(Controller):
    path = "/api/exports"
    tags = ["exports"]

    @get(
        "/contacts.csv",
        opt=READ,
        summary="Export contacts as CSV",
        media_type=CSV,
    )
    async def contacts(
        self,
        request: Request[Any, Any, Any],
        q: SearchQuery = None,
        include_archived: FromQuery[bool] = False,
        organization_id: OrganizationFilter = None,
        excel: Annotated[
            bool,
            QueryParameter(
                description="for spreadsheets: UTF-8 with a byte order mark, `;` between "
                "values, and texts that start like a formula kept as text"
            ),
        ] = False,
    ) -> Stream:
        """The contacts the list with the same filters shows (``field.NAME=VALUE``,
        ``field.NAME.min``/``.max`` on custom fields included), every one of them:
        one row each, one column per custom field. Streamed as it is read; each contact
        exported is in the audit log (``csv_export``)."""
        export = await ExportService(request.app.state.kith, API).contacts(
            ContactFilter(
                q=q,
                include_archived=include_archived,
                organization_id=organization_id,
                fields=field_filters(request),
            ),
            excel=excel,
            actor=current_actor(request),
        )
        return Stream(
            export.chunks(),
            media_type=CSV,
            headers={
                "Cache-Control": "no-store",
                "Content-Disposition": 'attachment; filename="contacts.csv"',
            },
        )
