"""The compliance officer's start page. The data protection requests themselves belong to the
privacy module, which adds its pages here through the routes hook."""

from __future__ import annotations

from typing import Any

from kith.web.views.common import COMPLIANCE, render
from litestar import Request, get
from litestar.response import Template


@get("/compliance", opt=COMPLIANCE)
async def compliance_home(request: Request[Any, Any, Any]) -> Template:
    return render(request, "compliance.html")


PAGES = [compliance_home]
