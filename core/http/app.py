"""The litestar application factory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kith import __version__
from kith.actor import Actor
from kith.http.api_reference import SCHEMA_PATH, render_plugins
from kith.http.auth import authorize, current_actor, public
from kith.http.middleware import RequestLogMiddleware
from kith.http.openapi import SECURITY_SCHEME, KithOpenAPIConfig
from kith.http.problems import problem_details_plugin
from kith.http.request_body import KithRequest
from kith.http.routes.cadences import CADENCE_ROUTES
from kith.http.routes.contacts import API, ContactController
from kith.http.routes.duplicates import DuplicateController
from kith.http.routes.exports import ExportController
from kith.http.routes.fields import FieldController
from kith.http.routes.health import health
from kith.http.routes.imports import ImportController
from kith.http.routes.interactions import InteractionController, list_tasks
from kith.http.routes.merges import MergeController
from kith.http.routes.quality import quality_report
from kith.http.routes.reminders import REMINDER_ROUTES
from kith.http.routes.reports import REPORT_ROUTES
from kith.http.routes.triggers import TRIGGER_ROUTES
from kith.http.routes.users import TokenController, UserController
from kith.runtime import Kith
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from litestar import Litestar, Request, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.spec import Components, SecurityScheme

CORE_ROUTES: list[Any] = [
    health,
    ContactController,
    DuplicateController,
    FieldController,
    ImportController,
    ExportController,
    InteractionController,
    list_tasks,
    MergeController,
    quality_report,
    UserController,
    TokenController,
    *CADENCE_ROUTES,
    *REMINDER_ROUTES,
    *TRIGGER_ROUTES,
    *REPORT_ROUTES,
]


def _actor(request: Request[Any, Any, Any]) -> Actor:
    return current_actor(request)


def _contacts(state: State) -> ContactService:
    return ContactService(state.kith, API)


def _interactions(state: State) -> InteractionService:
    return InteractionService(state.kith, API)


def create_app(
    kith: Kith,
    extra_routes: Sequence[Any] = (),
    manage_lifecycle: bool = True,
    on_startup: Sequence[Any] = (),
    on_shutdown: Sequence[Any] = (),
    dispatch: bool | None = None,
    web: bool = True,
) -> Litestar:
    """The HTTP app for an opened :class:`Kith`. With ``manage_lifecycle`` the app starts and
    closes the database itself (``kith serve``); tests that share a Kith pass False.

    ``dispatch`` runs the event dispatcher and scheduler in the server process; by default it
    does when the app manages the lifecycle and ``dispatch_in_process`` is on. ``web`` mounts
    the web UI's pages (kith.web)."""
    # Imported here: the web UI's templates and stores are not loaded for an API-only app.
    from kith.web import web_mount

    pages = web_mount(kith) if web else None
    if dispatch is None:
        dispatch = manage_lifecycle and kith.settings.dispatch_in_process

    async def start() -> None:
        await kith.start()

    async def stop() -> None:
        await kith.close()

    async def start_dispatch() -> None:
        await kith.bus.start()

    async def stop_dispatch() -> None:
        await kith.bus.stop()

    openapi_config = KithOpenAPIConfig(
        title="Kith",
        version=__version__,
        path=SCHEMA_PATH,
        # The API description is public, like the health check.
        openapi_router=Router(
            SCHEMA_PATH, route_handlers=[], include_in_schema=False, opt=public()
        ),
        render_plugins=render_plugins(),
        components=Components(
            security_schemes={
                SECURITY_SCHEME: SecurityScheme(
                    type="http", scheme="bearer", description="API token"
                )
            }
        ),
        security=[{SECURITY_SCHEME: []}],
    )
    return Litestar(
        route_handlers=[
            *CORE_ROUTES,
            # The plugins' routes, registered through kith_register_routes.
            *(kith.plugins.routes(kith.settings) if kith.plugins is not None else ()),
            *extra_routes,
            *(pages.routes if pages else ()),
        ],
        state=State({"kith": kith}),
        guards=[authorize],
        dependencies={
            "actor": Provide(_actor, sync_to_thread=False),
            "contacts": Provide(_contacts, sync_to_thread=False),
            "interactions": Provide(_interactions, sync_to_thread=False),
        },
        middleware=[RequestLogMiddleware()],
        request_class=KithRequest,
        plugins=[
            problem_details_plugin(),
            openapi_config.routes,
            *(pages.plugins if pages else ()),
        ],
        template_config=pages.template_config if pages else None,
        stores=pages.stores if pages else None,
        request_max_body_size=kith.settings.max_request_bytes,
        on_startup=[
            *([start] if manage_lifecycle else []),
            # The web UI's live channel subscribes before dispatching starts.
            *(pages.on_startup if pages else ()),
            *([start_dispatch] if dispatch else []),
            *on_startup,
        ],
        on_shutdown=[
            *on_shutdown,
            *([stop_dispatch] if dispatch else []),
            *(pages.on_shutdown if pages else ()),
            *([stop] if manage_lifecycle else []),
        ],
        openapi_config=openapi_config,
        logging_config=None,
    )


__all__ = ["create_app"]
