"""HTTP: the channels' webhooks (public, refused with 403 unless verified, 404 while the
channel is off) and a contact's messages (agents). Thin: the message service does the work."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from kith import PermissionDenied, Role
from kith.http import CurrentActor, answers, public, roles
from kith.plugins.messengers.schemas import MessageIn, MessageOut, Taken
from kith.plugins.messengers.services import MessageService
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

AGENTS = roles(Role.AGENT)
# Verified webhooks: refused unverified (403), absent while their channel is off (404).
SIGNED = {**public(), **answers(problems=[403, 404, 422])}
Messages = NamedDependency[MessageService]


def _service(state: State) -> MessageService:
    return MessageService(state.kith)


class MessengerWebhooks(Controller):
    """What the providers call. Nothing is stored unless the request is verified."""

    path = "/api/messengers"
    tags = ["messengers"]
    dependencies = {"messages": Provide(_service, sync_to_thread=False)}

    @get(
        "/{channel:str}",
        opt={**public(), **answers("text/plain", problems=[403, 404])},
        summary="The provider's check of the webhook address (WhatsApp's hub.challenge)",
    )
    async def challenge(
        self, request: Request[Any, Any, Any], channel: FromPath[str], messages: Messages
    ) -> Response[str]:
        answer = messages.adapter(channel).challenge(dict(request.query_params))
        if answer is None:
            raise PermissionDenied("the verify token is missing or wrong")
        return Response(answer, media_type="text/plain")

    @post("/{channel:str}", opt=SIGNED, status_code=HTTP_200_OK, summary="A provider's update")
    async def update(
        self, request: Request[Any, Any, Any], channel: FromPath[str], messages: Messages
    ) -> Taken:
        incoming = messages.check(channel, request.headers, await request.body())
        return await messages.take(channel, incoming)


class ContactMessages(Controller):
    path = "/api/contacts"
    tags = ["messengers"]
    dependencies = {"messages": Provide(_service, sync_to_thread=False)}

    @post(
        "/{contact_id:uuid}/messages",
        opt={**AGENTS, **answers(problems=[404, 409, 422])},
        status_code=HTTP_201_CREATED,
        summary="Send the contact a message on their messenger conversation",
    )
    async def send(
        self,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[MessageIn],
        messages: Messages,
        actor: CurrentActor,
    ) -> MessageOut:
        return await messages.send(contact_id, data, actor)

    @get(
        "/{contact_id:uuid}/messages",
        opt={**AGENTS, **answers(problems=[404])},
        summary="The contact's latest messages, newest first",
    )
    async def read(
        self,
        contact_id: FromPath[uuid.UUID],
        messages: Messages,
        actor: CurrentActor,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[MessageOut]:
        return await messages.messages(contact_id, actor, limit=limit)


ROUTES = (MessengerWebhooks, ContactMessages)
