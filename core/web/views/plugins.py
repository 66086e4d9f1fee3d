"""The installed plugins for admins: those loaded, with version, source and hooks, and those
skipped, with the reason. What ``kith plugins list --hooks`` prints."""

from __future__ import annotations

from typing import Any

from kith.web.views.common import ADMINS, kith_of, render
from litestar import Request, get
from litestar.response import Template


@get("/admin/plugins", opt=ADMINS)
async def plugins_page(request: Request[Any, Any, Any]) -> Template:
    manager = kith_of(request).plugins
    return render(
        request,
        "plugins.html",
        loaded=manager.plugins() if manager is not None else [],
        skipped=manager.skipped() if manager is not None else [],
    )


PAGES = [plugins_page]
