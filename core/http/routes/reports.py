"""KPI reports over HTTP; the same service as ``kith report``."""

from __future__ import annotations

from typing import Any

import msgspec
from kith.actor import Role
from kith.http.auth import roles
from kith.services.reports import Report, ReportService
from litestar import Request, get
from litestar.params import FromPath

READ = roles(Role.AGENT)


class ReportName(msgspec.Struct, kw_only=True):
    name: str
    description: str


@get("/api/reports", opt=READ, tags=["reports"], summary="The KPI reports")
async def list_reports(request: Request[Any, Any, Any]) -> list[ReportName]:
    service = ReportService(request.app.state.kith)
    return [ReportName(name=n, description=d) for n, d in service.names()]


@get("/api/reports/{name:str}", opt=READ, tags=["reports"], summary="One KPI report")
async def read_report(request: Request[Any, Any, Any], name: FromPath[str]) -> Report:
    """Counts, rates and times computed in the database; no personal value."""
    return await ReportService(request.app.state.kith).run(name)


REPORT_ROUTES = [list_reports, read_report]
