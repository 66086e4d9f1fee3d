from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from kith.actor import Role
from kith.http.auth import CurrentActor, current_actor, roles
from kith.schemas import (
    ContactCreate,
    ContactOut,
    ContactPatch,
    InteractionCreate,
    InteractionOut,
    Page,
)
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.services.tiers import ContactValueOut, TierService
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

Limit = Annotated[int, QueryParameter(ge=1, le=200, description="items per page")]
Cursor = Annotated[str | None, QueryParameter(description="next_cursor of the previous page")]
# The services, injected by name (see create_app's dependencies).
Contacts = NamedDependency[ContactService]
Interactions = NamedDependency[InteractionService]

# The channel accesses through these routes are reported under (the audit log's column).
API = "api"
READ = roles(Role.AGENT, Role.COMPLIANCE)
WRITE = roles(Role.AGENT)
# Query parameters filtering a list on custom fields: field.industry=retail.
FIELD_PREFIX = "field."
# The filters of a contacts list, which an export of contacts takes too.
SearchQuery = Annotated[
    str | None,
    QueryParameter(
        description="an exact email or phone (any format), or the start of words of "
        "the name, in any order and any script ('ada lov'; 'Иван' finds Ivan)"
    ),
]
OrganizationFilter = Annotated[
    uuid.UUID | None, QueryParameter(description="only the people of this organization")
]

TagFilter = Annotated[
    str | None, QueryParameter(description="only contacts with this tag (exact)", min_length=1)
]
OwnerFilter = Annotated[
    uuid.UUID | None, QueryParameter(description="only contacts owned by this user")
]
KindFilter = Annotated[
    Literal["person", "organization"] | None,
    QueryParameter(description="only people or only organizations"),
]
SortOrder = Annotated[
    Literal["created", "-created", "updated", "-updated", "name", "-name", "last_interaction"],
    QueryParameter(
        description="the order: by creation, last change or name, '-' for descending; "
        "'name' orders each page by name, the pages following creation order; "
        "'last_interaction' lists the most recent interaction first, contacts with none last"
    ),
]


def field_filters(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The custom field filters of a request: ``field.NAME=VALUE``, ``field.NAME.min=...``."""
    return {
        key.removeprefix(FIELD_PREFIX): value
        for key, value in request.query_params.items()
        if key.startswith(FIELD_PREFIX)
    }


class ContactController(Controller):
    path = "/api/contacts"
    tags = ["contacts"]

    @post("/", opt=WRITE, summary="Create a contact")
    async def create(
        self, data: JSONBody[ContactCreate], request: Request[Any, Any, Any]
    ) -> Response[ContactOut]:
        # The writes every integration makes take no dependencies either (see read below):
        # resolving two of them runs a task group for each request.
        contact = await ContactService(request.app.state.kith, API).create(
            data, current_actor(request)
        )
        return Response(
            contact,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/contacts/{contact.id}"},
        )

    @get("/", opt=READ, summary="List or search contacts")
    async def list_contacts(
        self,
        contacts: Contacts,
        q: SearchQuery = None,
        cursor: Cursor = None,
        limit: Limit = 50,
        include_archived: FromQuery[bool] = False,
        organization_id: OrganizationFilter = None,
        tier: Annotated[
            str | None, QueryParameter(description="only contacts in this value tier (A, B...)")
        ] = None,
        tag: TagFilter = None,
        owner_id: OwnerFilter = None,
        kind: KindFilter = None,
        sort: SortOrder = "created",
        *,
        actor: CurrentActor,
        request: Request[Any, Any, Any],
    ) -> Page[ContactOut]:
        """Custom fields filter the list: ``field.NAME=VALUE`` for an exact value, and
        ``field.NAME.min`` / ``field.NAME.max`` for numbers, money, dates and times. Names
        are stored encrypted: ``sort=name`` orders each page by name while the pages follow
        creation order; a name search lists oldest first or by name."""
        return await contacts.list(
            q=q,
            cursor=cursor,
            limit=limit,
            include_archived=include_archived,
            organization_id=organization_id,
            fields=field_filters(request),
            actor=actor,
            tier=tier,
            tag=tag,
            owner_id=owner_id,
            kind=kind,
            sort=sort,
        )

    @get("/{contact_id:uuid}/value", opt=READ, summary="Value and tier from orders")
    async def value(
        self, contact_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
    ) -> ContactValueOut:
        """Recency, frequency, monetary value per currency, lifetime value, average order
        interval and the contact's tier (numbers only)."""
        return await TierService(request.app.state.kith).value(contact_id)

    @get("/{contact_id:uuid}", opt=READ, summary="Read a contact")
    async def read(
        self, contact_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
    ) -> ContactOut:
        # The hottest route takes no dependencies: resolving them costs a measurable share of
        # a read (docs/performance.md). The actor is the one the guard put in the request state
        # after its role check.
        return await ContactService(request.app.state.kith, API).get(
            contact_id, current_actor(request)
        )

    @get("/{contact_id:uuid}/people", opt=READ, summary="An organization's people")
    async def people(
        self,
        contact_id: FromPath[uuid.UUID],
        contacts: Contacts,
        actor: CurrentActor,
        cursor: Cursor = None,
        limit: Limit = 50,
        include_archived: FromQuery[bool] = False,
    ) -> Page[ContactOut]:
        return await contacts.people(
            contact_id,
            cursor=cursor,
            limit=limit,
            include_archived=include_archived,
            actor=actor,
        )

    @patch("/{contact_id:uuid}", opt=WRITE, summary="Change a contact")
    async def change(
        self,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[ContactPatch],
        contacts: Contacts,
        actor: CurrentActor,
    ) -> ContactOut:
        return await contacts.update(contact_id, data, actor)

    @delete("/{contact_id:uuid}", opt=WRITE, status_code=HTTP_200_OK, summary="Archive a contact")
    async def archive(
        self, contact_id: FromPath[uuid.UUID], contacts: Contacts, actor: CurrentActor
    ) -> ContactOut:
        return await contacts.archive(contact_id, actor)

    @post("/{contact_id:uuid}/interactions", opt=WRITE, summary="Log an interaction")
    async def log_interaction(
        self,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[InteractionCreate],
        request: Request[Any, Any, Any],
    ) -> Response[InteractionOut]:
        interaction, created = await InteractionService(request.app.state.kith, API).log(
            contact_id, data, current_actor(request)
        )
        return Response(
            interaction,
            status_code=HTTP_201_CREATED if created else HTTP_200_OK,
            headers={"Location": f"/api/interactions/{interaction.id}"},
        )

    @get("/{contact_id:uuid}/timeline", opt=READ, summary="A contact's timeline, newest first")
    async def timeline(
        self,
        contact_id: FromPath[uuid.UUID],
        interactions: Interactions,
        actor: CurrentActor,
        cursor: Cursor = None,
        limit: Limit = 50,
        include_people: Annotated[
            bool,
            QueryParameter(description="an organization's timeline with its people's"),
        ] = False,
    ) -> Page[InteractionOut]:
        return await interactions.timeline(
            contact_id, cursor=cursor, limit=limit, actor=actor, include_people=include_people
        )
