"""Keep-in-touch cadences and who is due for a call; the same service as ``kith contacts due``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from kith.actor import Role
from kith.http.auth import current_actor, roles
from kith.http.routes.contacts import API, READ, WRITE
from kith.services.cadences import CadenceIn, CadenceOut, CadenceService, DueContact
from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter


class DuePage(msgspec.Struct, kw_only=True):
    items: list[DueContact]


@get("/api/contacts/due", opt=READ, tags=["cadences"], summary="Contacts due for a call")
async def contacts_due(
    request: Request[Any, Any, Any],
    owner: Annotated[
        str | None, QueryParameter(description="`me`, or empty for everyone's contacts")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> DuePage:
    """Contacts whose keep-in-touch cadence says it is time to call, most overdue first, with
    the reason. Each name shown is a read of the contact (audited)."""
    actor = current_actor(request)
    owner_id = actor.id if owner == "me" else None
    service = CadenceService(request.app.state.kith, API)
    return DuePage(items=await service.due(owner_id=owner_id, limit=limit, actor=actor))


@get("/api/cadences", opt=READ, tags=["cadences"], summary="List cadences")
async def list_cadences(request: Request[Any, Any, Any]) -> list[CadenceOut]:
    return await CadenceService(request.app.state.kith, API).list()


@post("/api/cadences", opt=WRITE, tags=["cadences"], summary="Add or change a cadence")
async def set_cadence(request: Request[Any, Any, Any], data: JSONBody[CadenceIn]) -> CadenceOut:
    """ "Contact every ``every_days`` days" for a contact (``target``: its id), a tag or a
    tier; the same scope and target again changes the interval."""
    return await CadenceService(request.app.state.kith, API).set(data)


@delete(
    "/api/cadences/{cadence_scope:str}/{target:str}",
    opt=roles(Role.AGENT),
    tags=["cadences"],
    summary="Remove a cadence",
)
async def remove_cadence(
    request: Request[Any, Any, Any],
    cadence_scope: FromPath[Literal["contact", "tag", "tier"]],
    target: FromPath[str],
) -> None:
    await CadenceService(request.app.state.kith, API).remove(cadence_scope, target)


CADENCE_ROUTES = [contacts_due, list_cadences, set_cadence, remove_cadence]
