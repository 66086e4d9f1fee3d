"""The compliance officer's start page. The data protection pages themselves belong to the
privacy module, which registers them (``kith_register_pages``) with links under
``/compliance/`` (``kith_register_navigation``): they are listed here."""

from __future__ import annotations

from typing import Any

from kith.web.views.common import (
    COMPLIANCE,
    COMPLIANCE_HOME,
    kith_of,
    on_compliance_page,
    render,
    signed_in,
    visible_links,
)
from litestar import Request, get
from litestar.response import Template


@get(COMPLIANCE_HOME, opt=COMPLIANCE)
async def compliance_home(request: Request[Any, Any, Any]) -> Template:
    links = visible_links(kith_of(request), signed_in(request))
    pages = [(link.path, link.label) for link in links if on_compliance_page(link)]
    return render(request, "compliance.html", pages=pages)


PAGES = [compliance_home]
