from __future__ import annotations

import uuid
from typing import Annotated, Literal

from kith.actor import Role
from kith.errors import InvalidInput
from kith.http.auth import CurrentActor, roles
from kith.http.routes.contacts import Cursor, Interactions, Limit
from kith.schemas import InteractionOut, InteractionPatch, Page
from litestar import Controller, get, patch
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter


class InteractionController(Controller):
    path = "/api/interactions"
    tags = ["interactions"]

    @get("/{interaction_id:uuid}", opt=roles(Role.AGENT, Role.COMPLIANCE), summary="Read one")
    async def read(
        self, interaction_id: FromPath[uuid.UUID], interactions: Interactions, actor: CurrentActor
    ) -> InteractionOut:
        return await interactions.get(interaction_id, actor)

    @patch("/{interaction_id:uuid}", opt=roles(Role.AGENT), summary="Change one (e.g. done_at)")
    async def change(
        self,
        interaction_id: FromPath[uuid.UUID],
        data: JSONBody[InteractionPatch],
        interactions: Interactions,
        actor: CurrentActor,
    ) -> InteractionOut:
        return await interactions.update(interaction_id, data, actor)


@get("/api/tasks", opt=roles(Role.AGENT), tags=["tasks"], summary="Open tasks by due date")
async def list_tasks(
    interactions: Interactions,
    actor: CurrentActor,
    due: FromQuery[Literal["today", "overdue", "all"]] = "all",
    assignee: Annotated[
        str | None, QueryParameter(description="`me`, a user id, or empty for everyone's")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[InteractionOut]:
    assignee_id: uuid.UUID | None = None
    if assignee == "me":
        assignee_id = actor.id
    elif assignee:
        try:
            assignee_id = uuid.UUID(assignee)
        except ValueError:
            raise InvalidInput("assignee must be `me` or a user id", field="assignee") from None
    return await interactions.tasks(
        due=due, assignee_id=assignee_id, cursor=cursor, limit=limit, actor=actor
    )
