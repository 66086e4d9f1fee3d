"""The inputs of contacts' custom fields on a form (``_custom_field_inputs.html``): one per
active declaration, named ``field.<name>``. The contact form and a rectification request's
corrections both show them and read them back as a contact's ``fields``."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import Any

from kith.errors import InvalidInput
from kith.schemas import FieldOut
from kith.services.fields import FieldService
from kith.web.i18n import t
from kith.web.views.common import kith_of
from litestar import Request

FIELD_INPUT = "field."


def local_moment(request: Request[Any, Any, Any], text: str, field: str) -> dt.datetime | None:
    """A ``datetime-local`` input, read in the installation's time zone."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(t(request, "Give a date and time."), field=field) from None
    zone = zoneinfo.ZoneInfo(kith_of(request).settings.timezone)
    return value if value.tzinfo else value.replace(tzinfo=zone)


async def declared_fields(request: Request[Any, Any, Any]) -> list[FieldOut]:
    """The custom fields a form shows: the active declarations."""
    return await FieldService(kith_of(request)).declared()


async def posted_fields(
    request: Request[Any, Any, Any], declared: list[FieldOut]
) -> dict[str, str | list[str]]:
    """The custom fields' inputs as posted (a multiple choice is a list of boxes), to show
    again as typed."""
    form = await request.form()
    posted: dict[str, str | list[str]] = {}
    for field in declared:
        key = FIELD_INPUT + field.name
        if field.type == "multi_choice":
            posted[field.name] = [v for v in form.getall(key, []) if isinstance(v, str)]
        else:
            value = form.get(key, "")
            posted[field.name] = value.strip() if isinstance(value, str) else ""
    return posted


def field_values(
    request: Request[Any, Any, Any],
    declared: list[FieldOut],
    posted: Mapping[str, str | list[str]],
    *,
    clear_empty: bool,
) -> dict[str, Any]:
    """The posted inputs as a contact's ``fields``: the services check each value. An empty
    input clears the field's value when ``clear_empty``, and is left out otherwise (a new
    contact then gets the field's default; a correction leaves the value as it is)."""
    values: dict[str, Any] = {}
    for field in declared:
        raw = posted.get(field.name) or None
        if raw is not None and field.type == "datetime":
            moment = local_moment(request, str(raw), FIELD_INPUT + field.name)
            raw = moment.isoformat() if moment else None
        if raw is not None or clear_empty:
            values[field.name] = raw
    return values


def shown_fields(
    request: Request[Any, Any, Any], declared: list[FieldOut], stored: Mapping[str, Any]
) -> dict[str, str | list[str]]:
    """Values (as the services give them) as the form's inputs show them."""
    zone = zoneinfo.ZoneInfo(kith_of(request).settings.timezone)
    shown: dict[str, str | list[str]] = {}
    for field in declared:
        value = stored.get(field.name)
        if value is None:
            shown[field.name] = [] if field.type == "multi_choice" else ""
        elif field.type == "multi_choice":
            shown[field.name] = list(value)
        elif field.type == "boolean":
            shown[field.name] = "true" if value else "false"
        elif field.type == "datetime":
            local = dt.datetime.fromisoformat(str(value)).astimezone(zone)
            shown[field.name] = local.strftime("%Y-%m-%dT%H:%M")
        else:
            shown[field.name] = str(value)
    return shown
