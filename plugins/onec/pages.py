"""1C in the web UI, for admins: where 1C's exchange calls, the OData link (its password
masked), and the last exchange and sync steps with their counts and errors, as
``kith onec status`` shows them. The settings file owns the settings; this page changes none."""

from __future__ import annotations

from typing import Any

from kith import NavLink, Role
from kith.http import roles
from kith.plugins.onec.settings import onec_settings
from kith.plugins.onec.status import status_of
from kith.web import N_, kith_of, render
from litestar import Request, get
from litestar.response import Template

ADMINS = roles()
NAVIGATION = NavLink(path="/admin/onec", label=N_("1C"), roles=frozenset({Role.ADMIN}), order=86)
STEPS_SHOWN = 20


@get("/admin/onec", opt=ADMINS)
async def onec_page(request: Request[Any, Any, Any]) -> Template:
    kith = kith_of(request)
    settings = onec_settings(kith)
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "onec/onec.html",
        found=await status_of(kith, STEPS_SHOWN),
        settings=settings,
        exchange_urls=[kith.settings.link(path, base) for path in settings.exchange_paths],
        settings_file=kith.settings.home / "kith.toml",
    )


PAGES = [onec_page]
