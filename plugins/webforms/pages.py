"""The web forms in the web UI, for admins: the list with submission counts, a new form, a
form's embed snippet and lead sources, disabling one. The same service as ``/api/forms`` and
``kith forms``."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from kith import InvalidInput, KithError, NavLink, Role
from kith.http import roles
from kith.plugins.webforms import markup
from kith.plugins.webforms.routes import base_url
from kith.plugins.webforms.schemas import FormCreate, FormOut, FormStats, form_from
from kith.plugins.webforms.service import FormService
from kith.web import N_, form_of, kith_of, render, see_other
from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

ADMINS = roles()
NAVIGATION = NavLink(
    path="/admin/webforms", label=N_("Web forms"), roles=frozenset({Role.ADMIN}), order=82
)
# What the new-form page starts with: one required email field and a name.
EXAMPLE_FIELDS = [
    {"name": "name", "maps_to": "name", "label": "Name"},
    {"name": "email", "maps_to": "email", "label": "Email", "type": "email", "required": True},
]


def _json(text: str, what: str, empty: Any) -> Any:
    if not text.strip():
        return empty
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno})") from None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def form_input(values: dict[str, str]) -> FormCreate:
    """The posted form as the API's body, checked as the API checks it."""
    body: dict[str, Any] = {
        "id": values.get("id", ""),
        "title": values.get("title", ""),
        "fields": _json(values.get("fields", ""), "fields", []),
        "purposes": _json(values.get("purposes", ""), "purposes", []),
        "allowed_origins": _lines(values.get("allowed_origins", "")),
        "success_redirect": values.get("success_redirect") or None,
        "notify_email": values.get("notify_email") or None,
        "double_opt_in": "double_opt_in" in values,
    }
    if values.get("success_message"):
        body["success_message"] = values["success_message"]
    try:
        return form_from(body)
    except (msgspec.ValidationError, ValueError) as exc:
        raise InvalidInput(str(exc)) from None


async def _counts(service: FormService, forms: list[FormOut]) -> dict[str, FormStats]:
    return {form.id: await service.stats(form.id) for form in forms}


async def _list_page(
    request: Request[Any, Any, Any],
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Template:
    service = FormService(kith_of(request))
    forms = await service.list()
    return render(
        request,
        "webforms/forms.html",
        status=status,
        forms=forms,
        stats=await _counts(service, forms),
        error=error,
        values=values
        or {"fields": json.dumps(EXAMPLE_FIELDS, indent=2, ensure_ascii=False), "purposes": ""},
    )


@get("/admin/webforms", opt=ADMINS)
async def forms_page(request: Request[Any, Any, Any]) -> Template:
    return await _list_page(request)


@post("/admin/webforms", opt=ADMINS)
async def create_form(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_of(request)
    try:
        created = await FormService(kith_of(request)).create(form_input(values))
    except KithError as exc:
        return await _list_page(request, exc.status_code, exc.detail, values)
    return see_other(f"/admin/webforms/{created.id}")


@get("/admin/webforms/{form_id:str}", opt=ADMINS)
async def form_page(request: Request[Any, Any, Any], form_id: FromPath[str]) -> Template:
    service = FormService(kith_of(request))
    form = await service.get(form_id)
    base = base_url(request)
    return render(
        request,
        "webforms/form.html",
        form=form,
        stats=await service.stats(form_id),
        # The snippet /f/{id}/embed serves, which it serves only while the form is active.
        snippet=markup.snippet(form, base) if form.active else None,
        hosted=f"{base}/f/{form.id}",
        definition=json.dumps(
            msgspec.to_builtins({"fields": form.fields, "purposes": form.purposes}),
            indent=2,
            ensure_ascii=False,
        ),
    )


@post("/admin/webforms/{form_id:str}/disable", opt=ADMINS)
async def disable_form(request: Request[Any, Any, Any], form_id: FromPath[str]) -> Redirect:
    await FormService(kith_of(request)).disable(form_id)
    return see_other(f"/admin/webforms/{form_id}")


PAGES = [forms_page, create_form, form_page, disable_form]
