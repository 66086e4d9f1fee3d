"""``/api/webhooks``: manage subscriptions and read their delivery log (admins only)."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from kith import Page
from kith.http import CurrentActor, roles
from kith.plugins.webhooks.schemas import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryState,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionPatch,
    SubscriptionWithSecret,
)
from kith.plugins.webhooks.service import WebhookService
from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

# roles() with no argument: admins only. Webhooks send data out of Kith.
ADMIN = roles()
Webhooks = NamedDependency[WebhookService]


class SecretIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A secret of your own for rotation; leave it out to have one generated."""

    secret: Annotated[str, msgspec.Meta(min_length=16, max_length=200)] | None = None


def _service(state: State) -> WebhookService:
    return WebhookService(state.kith)


class WebhookController(Controller):
    path = "/api/webhooks"
    tags = ["webhooks"]
    dependencies = {"webhooks": Provide(_service, sync_to_thread=False)}

    @post("/", opt=ADMIN, summary="Subscribe a URL to events; the secret is shown this once")
    async def create(
        self, data: JSONBody[SubscriptionCreate], webhooks: Webhooks, actor: CurrentActor
    ) -> Response[SubscriptionWithSecret]:
        created = await webhooks.create(data, actor)
        return Response(
            created,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/webhooks/{created.subscription.id}"},
        )

    @get("/", opt=ADMIN, summary="List subscriptions (without their secrets)")
    async def list_subscriptions(self, webhooks: Webhooks) -> list[SubscriptionOut]:
        return await webhooks.list()

    @get("/{subscription_id:uuid}", opt=ADMIN, summary="Read a subscription")
    async def read(
        self, subscription_id: FromPath[uuid.UUID], webhooks: Webhooks
    ) -> SubscriptionOut:
        return await webhooks.get(subscription_id)

    @patch("/{subscription_id:uuid}", opt=ADMIN, summary="Change a subscription")
    async def change(
        self,
        subscription_id: FromPath[uuid.UUID],
        data: JSONBody[SubscriptionPatch],
        webhooks: Webhooks,
        actor: CurrentActor,
    ) -> SubscriptionOut:
        return await webhooks.update(subscription_id, data, actor)

    @delete(
        "/{subscription_id:uuid}",
        opt=ADMIN,
        status_code=HTTP_200_OK,
        summary="Remove a subscription and its delivery log",
    )
    async def remove(
        self, subscription_id: FromPath[uuid.UUID], webhooks: Webhooks, actor: CurrentActor
    ) -> SubscriptionOut:
        return await webhooks.remove(subscription_id, actor)

    @post(
        "/{subscription_id:uuid}/secret",
        opt=ADMIN,
        status_code=HTTP_200_OK,
        summary="Replace the signing secret; the new one is shown this once",
    )
    async def rotate_secret(
        self,
        subscription_id: FromPath[uuid.UUID],
        webhooks: Webhooks,
        actor: CurrentActor,
        data: JSONBody[SecretIn],
    ) -> SubscriptionWithSecret:
        return await webhooks.rotate_secret(subscription_id, data.secret, actor)

    @get("/deliveries", opt=ADMIN, summary="The delivery log, newest first")
    async def deliveries(
        self,
        webhooks: Webhooks,
        subscription_id: Annotated[
            uuid.UUID | None, QueryParameter(description="only this subscription's")
        ] = None,
        # "state" is litestar's reserved name for the app state; the query key stays "state".
        delivery_state: Annotated[
            DeliveryState | None, QueryParameter(name="state", description="only these")
        ] = None,
        event_id: Annotated[
            uuid.UUID | None, QueryParameter(description="only this event's")
        ] = None,
        cursor: Annotated[
            str | None, QueryParameter(description="next_cursor of the last page")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="items per page")] = 50,
    ) -> Page[DeliveryOut]:
        return await webhooks.deliveries(
            subscription_id=subscription_id,
            state=delivery_state,
            event_id=event_id,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/deliveries/{delivery_id:uuid}",
        opt=ADMIN,
        summary="One delivery with its attempts and its receiver's last answer (audited)",
    )
    async def delivery(
        self, delivery_id: FromPath[uuid.UUID], webhooks: Webhooks, actor: CurrentActor
    ) -> DeliveryDetail:
        return await webhooks.delivery_detail(delivery_id, actor)

    @post(
        "/deliveries/{delivery_id:uuid}/retry",
        opt=ADMIN,
        status_code=HTTP_200_OK,
        summary="Queue a failed delivery for one more attempt",
    )
    async def retry(
        self, delivery_id: FromPath[uuid.UUID], webhooks: Webhooks, actor: CurrentActor
    ) -> DeliveryOut:
        return await webhooks.retry(delivery_id, actor=actor)
