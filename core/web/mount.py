"""What the app factory mounts for the web UI: the pages' router (with its session and CSRF
middleware), the templates, the static files, the store and the live channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kith.http.auth import AUTHENTICATE, public
from kith.runtime import Kith
from kith.web.config import SECTION, WebSettings
from kith.web.errors import WEB_EXCEPTION_HANDLERS
from kith.web.live import LIVE_CHANNEL, live_plugin, live_subscriber
from kith.web.sessions import SlidingSessionConfig, session_actor
from kith.web.stores import local_secret, web_store
from kith.web.templating import template_config
from kith.web.views import PAGES
from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins import PluginProtocol
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.template.config import TemplateConfig

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "kith_session"
CSRF_COOKIE = "kith_csrf"
CSRF_FIELD = "_csrf_token"


@dataclass
class WebMount:
    routes: list[Any]
    template_config: TemplateConfig[Any]
    stores: dict[str, Store]
    plugins: list[PluginProtocol]
    on_startup: list[Any] = field(default_factory=list)
    on_shutdown: list[Any] = field(default_factory=list)


def web_mount(kith: Kith) -> WebMount:
    """The web UI of ``kith``, for :func:`kith.http.create_app`."""
    options = kith.settings.parsed(SECTION, WebSettings)
    store = web_store(kith.settings)
    sessions = SlidingSessionConfig(
        key=SESSION_COOKIE,
        store="web",
        max_age=options.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=options.secure_cookies,
    )
    csrf = CSRFConfig(
        secret=options.secret or local_secret(kith.settings.home),
        cookie_name=CSRF_COOKIE,
        cookie_secure=options.secure_cookies,
        cookie_httponly=True,
        # The live channel's script sends no form; everything else that changes state does.
        header_name="x-csrf-token",
    )
    pages = Router(
        "/",
        route_handlers=[*PAGES, *(kith.plugins.pages() if kith.plugins is not None else ())],
        opt={AUTHENTICATE: session_actor},
        middleware=[sessions.middleware, DefineMiddleware(CSRFMiddleware, config=csrf)],
        exception_handlers=WEB_EXCEPTION_HANDLERS,
        include_in_schema=False,
    )
    live = live_plugin(kith.settings)

    subscriber = live_subscriber(live)

    async def subscribe() -> None:
        # One app per Kith serves pages; a second app of the same Kith (tests) takes over.
        kith.bus.unsubscribe(LIVE_CHANNEL)
        kith.bus.subscribe(subscriber)

    async def unsubscribe() -> None:
        if subscriber in kith.bus.subscribers:
            kith.bus.unsubscribe(LIVE_CHANNEL)

    return WebMount(
        routes=[
            pages,
            create_static_files_router(
                "/static", directories=[STATIC], include_in_schema=False, opt=public()
            ),
        ],
        template_config=template_config(
            kith.plugins.templates() if kith.plugins is not None else []
        ),
        stores={"web": store},
        plugins=[live],
        on_startup=[subscribe],
        on_shutdown=[unsubscribe],
    )


__all__ = ["CSRF_FIELD", "LIVE_CHANNEL", "WebMount", "web_mount"]
