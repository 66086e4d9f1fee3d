"""Webhooks in the web UI, for admins: the subscriptions, a new one (its signing secret shown
this once), pausing, resuming, removing one and replacing its secret, and the delivery log with
its dead letters and what a receiver answered. The same service as ``/api/webhooks`` and
``kith webhooks``."""

from __future__ import annotations

import re
import uuid
from typing import Any

import msgspec
from kith import SYSTEM, InvalidInput, KithError, NavLink, Role
from kith.http import roles
from kith.plugins.webhooks.schemas import (
    DELIVERY_STATES,
    DeliveryDetail,
    SubscriptionCreate,
    SubscriptionPatch,
    SubscriptionWithSecret,
)
from kith.plugins.webhooks.service import WebhookService
from kith.web import N_, form_of, kith_of, render, see_other, signed_in
from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

ADMINS = roles()
NAVIGATION = NavLink(
    path="/admin/webhooks", label=N_("Webhooks"), roles=frozenset({Role.ADMIN}), order=88
)
DELIVERIES_SHOWN = 50


def _service(request: Request[Any, Any, Any]) -> WebhookService:
    return WebhookService(kith_of(request))


def subscription_input(values: dict[str, str]) -> SubscriptionCreate:
    """The posted form as the API's body, checked as the API checks it."""
    body = {
        "url": values.get("url", ""),
        # Separated by commas, spaces or lines, as people list them.
        "events": [name for name in re.split(r"[\s,]+", values.get("events", "")) if name],
        "description": values.get("description", ""),
        "include_personal_data": "include_personal_data" in values,
    }
    try:
        return msgspec.convert(body, SubscriptionCreate)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from None


async def _webhooks_page(
    request: Request[Any, Any, Any],
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
    issued: SubscriptionWithSecret | None = None,
    rotated: bool = False,
) -> Template:
    service = _service(request)
    shown = request.query_params.get("state") or None
    deliveries = await service.deliveries(state=shown, limit=DELIVERIES_SHOWN)
    subscriptions = await service.list()
    return render(
        request,
        "webhooks/webhooks.html",
        status=status,
        subscriptions=subscriptions,
        urls={subscription.id: subscription.url for subscription in subscriptions},
        deliveries=deliveries.items,
        more=deliveries.next_cursor is not None,
        states=DELIVERY_STATES,
        shown=shown,
        error=error,
        values=values or {},
        issued=issued,
        rotated=rotated,
    )


@get("/admin/webhooks", opt=ADMINS)
async def webhooks_page(request: Request[Any, Any, Any]) -> Template:
    return await _webhooks_page(request)


@post("/admin/webhooks", opt=ADMINS)
async def add_subscription(request: Request[Any, Any, Any]) -> Template:
    values = await form_of(request)
    try:
        issued = await _service(request).create(
            subscription_input(values), signed_in(request) or SYSTEM
        )
    except KithError as exc:
        return await _webhooks_page(request, exc.status_code, exc.detail, values)
    # Not a redirect: the secret is shown on this answer only.
    return await _webhooks_page(request, 201, issued=issued)


async def _set_active(
    request: Request[Any, Any, Any], subscription_id: uuid.UUID, on: bool
) -> None:
    await _service(request).update(
        subscription_id, SubscriptionPatch(active=on), signed_in(request) or SYSTEM
    )


@post("/admin/webhooks/{subscription_id:uuid}/disable", opt=ADMINS)
async def disable_subscription(
    request: Request[Any, Any, Any], subscription_id: FromPath[uuid.UUID]
) -> Redirect:
    await _set_active(request, subscription_id, False)
    return see_other("/admin/webhooks")


@post("/admin/webhooks/{subscription_id:uuid}/enable", opt=ADMINS)
async def enable_subscription(
    request: Request[Any, Any, Any], subscription_id: FromPath[uuid.UUID]
) -> Redirect:
    await _set_active(request, subscription_id, True)
    return see_other("/admin/webhooks")


@post("/admin/webhooks/{subscription_id:uuid}/delete", opt=ADMINS)
async def delete_subscription(
    request: Request[Any, Any, Any], subscription_id: FromPath[uuid.UUID]
) -> Redirect:
    await _service(request).remove(subscription_id, signed_in(request) or SYSTEM)
    return see_other("/admin/webhooks")


@post("/admin/webhooks/{subscription_id:uuid}/secret", opt=ADMINS)
async def rotate_secret(
    request: Request[Any, Any, Any], subscription_id: FromPath[uuid.UUID]
) -> Template:
    rotated = await _service(request).rotate_secret(
        subscription_id, actor=signed_in(request) or SYSTEM
    )
    # Not a redirect: the new secret is shown on this answer only.
    return await _webhooks_page(request, issued=rotated, rotated=True)


@get("/admin/webhooks/deliveries/{delivery_id:uuid}", opt=ADMINS)
async def delivery_page(
    request: Request[Any, Any, Any], delivery_id: FromPath[uuid.UUID]
) -> Template:
    """One delivery with the start of its receiver's answer. Opened only when asked for: the
    answer may quote the person, and the service records each reading in their audit log."""
    service = _service(request)
    found: DeliveryDetail = await service.delivery_detail(
        delivery_id, signed_in(request) or SYSTEM, channel="web"
    )
    subscription = await service.get(found.subscription_id)
    return render(request, "webhooks/delivery.html", delivery=found, url=subscription.url)


@post("/admin/webhooks/deliveries/{delivery_id:uuid}/retry", opt=ADMINS)
async def retry_delivery(
    request: Request[Any, Any, Any], delivery_id: FromPath[uuid.UUID]
) -> Redirect:
    await _service(request).retry(delivery_id, actor=signed_in(request) or SYSTEM)
    return see_other("/admin/webhooks")


PAGES = [
    webhooks_page,
    add_subscription,
    disable_subscription,
    enable_subscription,
    delete_subscription,
    rotate_secret,
    delivery_page,
    retry_delivery,
]
