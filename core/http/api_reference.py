"""The browsable API reference under ``/schema``: Swagger UI, its script, style and icon served
by Kith itself, so that the page works on an installation without internet access."""

from __future__ import annotations

from kith.http.auth import public
from litestar import Router
from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

SCHEMA_PATH = "/schema"
# Swagger UI's distribution comes from the swagger-ui-bundle-v2 package, a dependency like any
# other: the version follows that package, nothing is kept in Kith's tree.
ASSETS = swagger_ui_path
ASSETS_PATH = f"{SCHEMA_PATH}/assets"


class _OfflineSwaggerUI(SwaggerRenderPlugin):
    """Swagger UI with its files served from ``/schema/assets``."""

    def __init__(self) -> None:
        super().__init__(
            path=["/", "/swagger"],
            js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            css_url=f"{ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(
            create_static_files_router(
                path=ASSETS_PATH.removeprefix(SCHEMA_PATH),
                directories=[ASSETS],
                name="api_reference_assets",
                include_in_schema=False,
                opt=public(),
            )
        )


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """What ``/schema`` serves: the reference (also at ``/schema/swagger``) and the document as
    YAML; litestar adds ``/schema/openapi.json``."""
    return [_OfflineSwaggerUI(), YamlRenderPlugin()]


__all__ = ["SCHEMA_PATH", "render_plugins"]
