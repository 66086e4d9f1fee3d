"""The plugin's HTTP routes. Every handler declares its roles; one that does not answers 403."""

from __future__ import annotations

import uuid

from kith import Role
from kith.http import CurrentActor, roles
from litestar import get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_200_OK

from kith_example.welcomes import WelcomeOut, mark_welcomed, welcome_list


@get("/api/example/welcomes", opt=roles(Role.AGENT), tags=["example"])
async def list_welcomes(state: State, include_done: FromQuery[bool] = False) -> list[WelcomeOut]:
    """Contacts waiting to be welcomed (all of them with ``include_done=true``)."""
    return await welcome_list(state.kith, include_done)


@post(
    "/api/example/welcomes/{contact_id:uuid}/done",
    opt=roles(Role.AGENT),
    status_code=HTTP_200_OK,
    tags=["example"],
)
async def welcomed(
    contact_id: FromPath[uuid.UUID], state: State, actor: CurrentActor
) -> WelcomeOut:
    """Mark a contact welcomed."""
    return await mark_welcomed(state.kith, contact_id, actor)
