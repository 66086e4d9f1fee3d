"""Merging duplicate contacts, reading a merge and undoing it (the rules are MergeService's)."""

from __future__ import annotations

import uuid

from kith.http.auth import CurrentActor
from kith.http.routes.contacts import API, READ, WRITE
from kith.schemas import MergeIn, MergeOut
from kith.services.merges import MergeService
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED


class MergeController(Controller):
    path = "/api"
    tags = ["merges"]

    @post(
        "/contacts/{contact_id:uuid}/merge",
        opt=WRITE,
        summary="Merge contacts into this one",
    )
    async def merge(
        self,
        state: State,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[MergeIn],
        actor: CurrentActor,
    ) -> Response[MergeOut]:
        """Everything the losers hold moves to this contact (emails and phones it lacks,
        custom field values, interactions and tasks, consent history, restrictions, requests,
        every plugin's rows) and the losers are deleted; ``choices`` pick whose value wins
        where they differ. ``POST /api/merges/{id}/undo`` undoes it within the undo window."""
        merged = await MergeService(state.kith, API).merge(
            contact_id, data.losers, data.choices, actor
        )
        return Response(
            merged, status_code=HTTP_201_CREATED, headers={"Location": f"/api/merges/{merged.id}"}
        )

    @get("/merges/{merge_id:uuid}", opt=READ, summary="Read a merge")
    async def read(self, state: State, merge_id: FromPath[uuid.UUID]) -> MergeOut:
        return await MergeService(state.kith, API).get(merge_id)

    @post(
        "/merges/{merge_id:uuid}/undo",
        opt=WRITE,
        status_code=HTTP_200_OK,
        summary="Undo a merge",
    )
    async def undo(
        self, state: State, merge_id: FromPath[uuid.UUID], actor: CurrentActor
    ) -> MergeOut:
        """The merged contacts exist again as they were, with their ids; refused (409) once
        the undo window has closed or the surviving contact has changed since."""
        return await MergeService(state.kith, API).undo(merge_id, actor)
