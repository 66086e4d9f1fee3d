"""Custom fields for admins: the list, a new field of any type, changing one, archiving one.
The same service and rules as ``/api/fields`` and ``kith fields``."""

from __future__ import annotations

from typing import Any, get_args

from kith.errors import KithError
from kith.http.auth import current_actor
from kith.schemas import FieldCreate, FieldOut, FieldPatch, FieldType
from kith.services.fields import CHOICE_TYPES, FieldService
from kith.web.views.common import ADMINS, WEB, convert_form, form_of, kith_of, render, see_other
from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

TYPES = get_args(FieldType)
FLAGS = ("required", "personal", "searchable")


def _choices(text: str) -> list[str]:
    # One a line: a choice may hold a comma.
    return [line.strip() for line in text.splitlines() if line.strip()]


def _create_input(values: dict[str, str]) -> dict[str, Any]:
    return {
        "name": values.get("name", ""),
        "type": values.get("type", ""),
        "label": values.get("label", ""),
        "default": values.get("default") or None,
        "choices": _choices(values.get("choices", "")),
        "currency": values.get("currency", "").upper() or None,
        "category": values.get("category") or None,
        "purpose": values.get("purpose") or None,
        "retention": values.get("retention") or None,
        **{flag: flag in values for flag in FLAGS},
    }


def _patch_input(values: dict[str, str]) -> dict[str, Any]:
    """Every setting the form shows is sent; an empty default or retention class removes it,
    an empty currency, category or purpose leaves it as the service decides."""
    changes = _create_input(values)
    for name in ("name", "personal"):
        changes.pop(name)
    if changes["type"] not in CHOICE_TYPES and not changes["choices"]:
        changes.pop("choices")
    for optional in ("currency", "category", "purpose"):
        if changes[optional] is None:
            changes.pop(optional)
    return changes


def _form_values(declared: FieldOut) -> dict[str, str]:
    values = {
        "name": declared.name,
        "type": declared.type,
        "label": declared.label,
        "default": _shown_default(declared.default),
        "choices": "\n".join(declared.choices),
        "currency": declared.currency or "",
        "category": declared.category or "",
        "purpose": declared.purpose or "",
        "retention": declared.retention or "",
    }
    values.update({flag: "on" for flag in FLAGS if getattr(declared, flag)})
    return values


def _shown_default(default: Any) -> str:
    if default is None:
        return ""
    if isinstance(default, list):
        return ", ".join(default)
    return str(default)


async def _fields_page(
    request: Request[Any, Any, Any],
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Template:
    declared = await FieldService(kith_of(request)).declared(include_archived=True)
    return render(
        request,
        "fields.html",
        status=status,
        declared=declared,
        types=TYPES,
        values=values or {"type": "text"},
        shown_default=_shown_default,
        error=error,
    )


@get("/admin/fields", opt=ADMINS)
async def fields_page(request: Request[Any, Any, Any]) -> Template:
    return await _fields_page(request)


@post("/admin/fields", opt=ADMINS)
async def add_field(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_of(request)
    try:
        data = convert_form(_create_input(values), FieldCreate)
        await FieldService(kith_of(request)).add(data)
    except KithError as exc:
        return await _fields_page(request, 422, exc.detail, values)
    return see_other("/admin/fields")


def _edit_page(
    request: Request[Any, Any, Any],
    declared: FieldOut,
    values: dict[str, str],
    status: int = 200,
    error: str | None = None,
) -> Template:
    return render(
        request,
        "field_form.html",
        status=status,
        field=declared,
        types=TYPES,
        values=values,
        error=error,
    )


@get("/admin/fields/{name:str}/edit", opt=ADMINS)
async def edit_field(request: Request[Any, Any, Any], name: FromPath[str]) -> Template:
    declared = await FieldService(kith_of(request)).get(name)
    return _edit_page(request, declared, _form_values(declared))


@post("/admin/fields/{name:str}/edit", opt=ADMINS)
async def change_field(request: Request[Any, Any, Any], name: FromPath[str]) -> Template | Redirect:
    values = await form_of(request)
    service = FieldService(kith_of(request))
    declared = await service.get(name)
    try:
        patch = convert_form(_patch_input(values), FieldPatch)
        await service.change(name, patch, current_actor(request), WEB)
    except KithError as exc:
        return _edit_page(request, declared, {**values, "name": name}, 422, exc.detail)
    return see_other("/admin/fields")


@post("/admin/fields/{name:str}/archive", opt=ADMINS)
async def archive_field(request: Request[Any, Any, Any], name: FromPath[str]) -> Redirect:
    await FieldService(kith_of(request)).archive(name)
    return see_other("/admin/fields")


PAGES = [fields_page, add_field, edit_field, change_field, archive_field]
