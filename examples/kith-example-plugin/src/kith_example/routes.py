"""The plugin's HTTP routes. Every handler declares its roles; one that does not answers 403."""

from __future__ import annotations

import uuid

from kith import Role
from kith.http import CurrentActor, roles
from litestar import get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK

from kith_example.welcomes import NoteIn, WelcomeOut, mark_welcomed, set_note, welcome_list


@get("/api/example/welcomes", opt=roles(Role.AGENT), tags=["example"])
async def list_welcomes(
    state: State, actor: CurrentActor, include_done: FromQuery[bool] = False
) -> list[WelcomeOut]:
    """Contacts waiting to be welcomed (all of them with ``include_done=true``)."""
    return await welcome_list(state.kith, include_done, actor)


@put("/api/example/welcomes/{contact_id:uuid}/note", opt=roles(Role.AGENT), tags=["example"])
async def welcome_note(
    contact_id: FromPath[uuid.UUID], state: State, actor: CurrentActor, data: JSONBody[NoteIn]
) -> WelcomeOut:
    """Note how to welcome a contact (stored encrypted: it is about the person)."""
    return await set_note(state.kith, contact_id, data.note, actor)


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
