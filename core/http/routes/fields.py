"""Custom fields of contacts: admins declare, change and archive them; everyone who works with
contacts may list them. The same rules as ``kith fields``."""

from __future__ import annotations

from typing import Annotated

from kith.actor import Role
from kith.http.auth import CurrentActor, roles
from kith.http.routes.contacts import API
from kith.schemas import FieldCreate, FieldName, FieldOut, FieldPatch, PurgeOutcome
from kith.services.fields import FieldService
from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

ADMINS = roles()
READ = roles(Role.AGENT, Role.COMPLIANCE)


class FieldController(Controller):
    path = "/api/fields"
    tags = ["fields"]

    @get("/", opt=READ, summary="List custom fields")
    async def list_fields(
        self,
        state: State,
        include_archived: Annotated[
            bool, QueryParameter(description="archived fields too")
        ] = False,
    ) -> list[FieldOut]:
        return await FieldService(state.kith).declared(include_archived=include_archived)

    @post("/", opt=ADMINS, summary="Declare a custom field")
    async def add(self, state: State, data: JSONBody[FieldCreate]) -> Response[FieldOut]:
        declared = await FieldService(state.kith).add(data)
        return Response(
            declared,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/fields/{declared.name}"},
        )

    @get("/{name:str}", opt=READ, summary="Read a custom field")
    async def read(self, state: State, name: FromPath[FieldName]) -> FieldOut:
        return await FieldService(state.kith).get(name)

    @patch("/{name:str}", opt=ADMINS, summary="Change a custom field")
    async def change(
        self,
        state: State,
        name: FromPath[FieldName],
        data: JSONBody[FieldPatch],
        actor: CurrentActor,
    ) -> FieldOut:
        return await FieldService(state.kith).change(name, data, actor, API)

    @delete("/{name:str}", opt=ADMINS, status_code=HTTP_200_OK, summary="Archive a custom field")
    async def archive(self, state: State, name: FromPath[FieldName]) -> FieldOut:
        return await FieldService(state.kith).archive(name)

    @post(
        "/{name:str}/purge",
        opt=ADMINS,
        status_code=HTTP_200_OK,
        summary="Purge an archived custom field: delete it and every value of it",
    )
    async def purge(
        self, state: State, name: FromPath[FieldName], actor: CurrentActor
    ) -> PurgeOutcome:
        """Only an archived field can be purged (409 otherwise); the values cannot be brought
        back, and the name is free again."""
        return await FieldService(state.kith).purge(name, actor, API)
