"""``/api/forms`` (admins manage forms) and ``/f/{form_id}`` (the public side: post, hosted
page, embed snippet, fill-time token, opt-in confirmation)."""

from __future__ import annotations

from typing import Any

from kith import InvalidInput, Kith, KithError
from kith.http import answers, public, roles
from kith.plugins.webforms import markup
from kith.plugins.webforms.schemas import FormCreate, FormOut, FormStats
from kith.plugins.webforms.service import (
    FormService,
    OriginRefused,
    Submission,
    SubmissionService,
    settings_of,
)
from litestar import Controller, MediaType, Request, Response, Router, get, post, route
from litestar.datastructures import State
from litestar.middleware.rate_limit import (
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore

ADMIN = roles()
PUBLIC = public()
# The public side answers pages to browsers and problems to scripts.
SUBMIT = {**PUBLIC, **answers("text/html", problems=[403, 404, 413, 422, 429])}
PAGE = {**PUBLIC, **answers(problems=[404])}
TOKEN = {**PUBLIC, **answers(problems=[403, 404])}
CONFIRM = {**PUBLIC, **answers("text/html", problems=[410, 422])}
MAX_BODY_BYTES = 64 * 1024
_STORE = "webforms.rate_limit_store"


class FormController(Controller):
    path = "/api/forms"
    tags = ["forms"]

    @post("/", opt=ADMIN, summary="Create a form")
    async def create(self, data: JSONBody[FormCreate], state: State) -> Response[FormOut]:
        created = await FormService(state.kith).create(data)
        return Response(
            created, status_code=HTTP_201_CREATED, headers={"Location": f"/api/forms/{data.id}"}
        )

    @get("/", opt=ADMIN, summary="List forms")
    async def list_forms(self, state: State) -> list[FormOut]:
        return await FormService(state.kith).list()

    @get("/{form_id:str}", opt=ADMIN, summary="Read a form")
    async def read(self, form_id: FromPath[str], state: State) -> FormOut:
        return await FormService(state.kith).get(form_id)

    @post("/{form_id:str}/disable", opt=ADMIN, status_code=HTTP_200_OK, summary="Disable a form")
    async def disable(self, form_id: FromPath[str], state: State) -> FormOut:
        return await FormService(state.kith).disable(form_id)

    @get("/{form_id:str}/stats", opt=ADMIN, summary="Submissions and lead-source counts")
    async def stats(self, form_id: FromPath[str], state: State) -> FormStats:
        return await FormService(state.kith).stats(form_id)


# -- the public side ---------------------------------------------------------------------------


def base_url(request: Request[Any, Any, Any]) -> str:
    kith: Kith = request.app.state.kith
    return kith.settings.public_url or str(request.base_url).rstrip("/")


async def _allowed_origin(
    request: Request[Any, Any, Any], form_id: str, form: FormOut | None = None
) -> str | None:
    """The request's Origin when the form allows it (or it is Kith's own); refused otherwise."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return None
    if form is None:
        form = await FormService(request.app.state.kith).active(form_id)
    if origin in form.allowed_origins or origin == base_url(request):
        return origin
    raise OriginRefused(f"{origin} may not post this form")


def _cors(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


async def _values(request: Request[Any, Any, Any]) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object")
        return {
            str(k): v if isinstance(v, str) else str(v) for k, v in body.items() if v is not None
        }
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        return {str(k): v for k, v in form.items() if isinstance(v, str)}
    raise InvalidInput("send the form as urlencoded, multipart or JSON")


def _client_form_key(request: Request[Any, Any, Any]) -> str:
    return f"client:{request.path_params.get('form_id')}:{get_remote_address(request)}"


def _form_key(request: Request[Any, Any, Any]) -> str:
    return f"form:{request.path_params.get('form_id')}"


class _KithStoreConfig(RateLimitConfig):
    """Counts in the store of the installation: memory in one process, or Redis named by
    ``KITH_REDIS_URL`` so that every process serving it counts together."""

    def get_store_from_app(self, app: Any) -> Store:
        kith: Kith = app.state.kith
        store = kith.state.get(_STORE)
        if store is None:
            url = kith.settings.redis_url
            if url:
                from litestar.stores.redis import RedisStore

                store = RedisStore.with_client(url=url, namespace="kith-webforms")
            else:
                store = MemoryStore()
            kith.state[_STORE] = store
        return store  # type: ignore[no-any-return]


def _limits() -> list[Any]:
    return [
        _KithStoreConfig(
            rate_limit=("minute", 1),
            identifier_for_request=identify,
            check_throttle_handler=_is_post,
            middleware_class=_KithRateLimit,
        ).middleware
        for identify in (_client_form_key, _form_key)
    ]


async def _is_post(request: Request[Any, Any, Any]) -> bool:
    return request.method == "POST"


class _KithRateLimit(RateLimitMiddleware):
    """Takes its limit from ``[webforms]`` of the installation it serves."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        settings = settings_of(scope["app"].state.kith)
        per_client = self.config.identifier_for_request is _client_form_key
        self.max_requests = settings.rate_per_client if per_client else settings.rate_per_form
        await super().__call__(scope, receive, send)


class PublicFormController(Controller):
    path = "/f"
    tags = ["forms"]

    @post(
        "/{form_id:str}",
        opt=SUBMIT,
        summary="Submit a form (urlencoded, multipart or JSON)",
        request_max_body_size=MAX_BODY_BYTES,
        status_code=HTTP_200_OK,
    )
    async def submit(
        self, form_id: FromPath[str], request: Request[Any, Any, Any]
    ) -> Response[Any]:
        kith: Kith = request.app.state.kith
        html = _wants_html(request)
        origin: str | None = None
        try:
            form = await FormService(kith).active(form_id)
            origin = await _allowed_origin(request, form_id, form)
            submission = Submission(
                values=await _values(request),
                client_address=get_remote_address(request),
                user_agent=request.headers.get("user-agent"),
                referrer=request.headers.get("referer"),
                query={k: v for k, v in request.query_params.items() if isinstance(v, str)},
            )
            done = await SubmissionService(kith).submit(
                form_id, submission, base_url(request), form
            )
        except KithError as error:
            if not html:
                return _problem(error, _cors(origin))
            page = markup.message_page(error.title, error.detail)
            return Response(page, status_code=error.status_code, media_type=MediaType.HTML)
        if html:
            if done.redirect:
                return Response(None, status_code=303, headers={"Location": done.redirect})
            text = done.message
            if done.confirm_by_email:
                text += " Please confirm by the link we emailed you."
            return Response(markup.message_page("Thank you", text), media_type=MediaType.HTML)
        return Response(done, headers=_cors(origin))

    @get("/{form_id:str}", opt=PAGE, summary="The form as a page of its own")
    async def page(self, form_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[str]:
        kith: Kith = request.app.state.kith
        form = await FormService(kith).active(form_id)
        token = SubmissionService(kith).fill_token(form_id)
        return Response(markup.hosted(form, base_url(request), token), media_type=MediaType.HTML)

    @get("/{form_id:str}/embed", opt=PAGE, summary="The form as an HTML snippet to paste")
    async def embed(self, form_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[str]:
        form = await FormService(request.app.state.kith).active(form_id)
        return Response(markup.snippet(form, base_url(request)), media_type=MediaType.TEXT)

    @get("/{form_id:str}/token", opt=TOKEN, summary="A fresh fill-time token for the form")
    async def token(
        self, form_id: FromPath[str], request: Request[Any, Any, Any]
    ) -> Response[dict[str, str]]:
        kith: Kith = request.app.state.kith
        origin = await _allowed_origin(request, form_id)
        await FormService(kith).active(form_id)
        value = SubmissionService(kith).fill_token(form_id)
        return Response({"token": value}, headers={**_cors(origin), "Cache-Control": "no-store"})

    @get("/{form_id:str}/confirm", opt=CONFIRM, summary="Confirm consent by the emailed link")
    async def confirm(
        self, form_id: FromPath[str], token: FromQuery[str], request: Request[Any, Any, Any]
    ) -> Response[str]:
        try:
            await SubmissionService(request.app.state.kith).confirm(token)
        except KithError as error:
            page = markup.message_page(error.title, error.detail)
            return Response(page, status_code=error.status_code, media_type=MediaType.HTML)
        page = markup.message_page("Confirmed", "Thank you: your consent is recorded.")
        return Response(page, media_type=MediaType.HTML)


@route(
    "/f/{form_id:str}",
    http_method=["OPTIONS"],
    opt=PUBLIC,
    status_code=HTTP_204_NO_CONTENT,
    include_in_schema=False,
)
async def preflight(form_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[None]:
    origin = await _allowed_origin(request, form_id)
    headers = {
        **_cors(origin),
        "Access-Control-Allow-Methods": "POST, GET",
        "Access-Control-Allow-Headers": "Content-Type, Accept",
        "Access-Control-Max-Age": "600",
    }
    return Response(None, status_code=HTTP_204_NO_CONTENT, headers=headers)


def _problem(error: KithError, headers: dict[str, str]) -> Response[Any]:
    """RFC 9457 problem details, with the CORS headers a script needs to read them."""
    body = {
        "type": "about:blank",
        "title": error.title,
        "status": error.status_code,
        "detail": error.detail,
        **error.extra,
    }
    return Response(
        body,
        status_code=error.status_code,
        media_type="application/problem+json",
        headers=headers,
    )


def public_router() -> Router:
    """The public routes, rate-limited per client address and form and per form."""
    return Router(path="/", route_handlers=[preflight, PublicFormController], middleware=_limits())


__all__ = ["FormController", "public_router"]
