"""The data quality report over HTTP; the same service as ``kith quality``."""

from __future__ import annotations

from typing import Annotated, Any

from kith.actor import Role
from kith.http.auth import current_actor, roles
from kith.http.routes.contacts import API
from kith.services.quality import QualityReport, QualityService
from litestar import Request, get
from litestar.params import QueryParameter


@get(
    "/api/quality",
    opt=roles(Role.AGENT),
    tags=["quality"],
    summary="The data quality report",
)
async def quality_report(
    request: Request[Any, Any, Any],
    stale_months: Annotated[
        int | None,
        QueryParameter(
            ge=1,
            le=600,
            description="contacts with no interaction and no change for this many months are "
            "stale (default: stale_months of [quality] in kith.toml, 12)",
        ),
    ] = None,
) -> QualityReport:
    """Counts and a few example contact ids: contacts nobody can reach, emails and phones that
    look unusable, stale contacts, required custom fields left empty. Checking emails and
    phones reads them: each contact read is in the audit log (``quality_check``)."""
    return await QualityService(request.app.state.kith, API).report(
        stale_months, current_actor(request)
    )
