"""The live channel: events from the bus pushed to the signed-in people's pages as
server-sent events. An incoming call (``call.started``) goes to the user it rings for, so
their page shows the caller's card; a new interaction goes to everyone, and a page showing
that contact refreshes its timeline.

The bus delivers each event to one process; litestar's channels carry it on to the process
that holds the person's page: in memory on one process, through Redis (``redis_url``) when
several serve."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from kith.events import Event, utcnow
from kith.logs import get_logger
from kith.runtime import Kith
from kith.settings import Settings
from kith.subjects import Subscriber
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.response import ServerSentEventMessage

LIVE_CHANNEL = "web.live"
EVERYONE = "live:all"
# An event older than this when it arrives (the server was down, say) is not news any more.
STALE_AFTER = dt.timedelta(seconds=30)
# A comment line now and then keeps proxies from closing a quiet stream.
KEEPALIVE_S = 20.0

_log = get_logger("kith.web")


def user_channel(user_id: object) -> str:
    return f"live:user:{user_id}"


def live_plugin(settings: Settings) -> ChannelsPlugin:
    if settings.redis_url:
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend
        from redis.asyncio import Redis

        backend: Any = RedisChannelsPubSubBackend(
            redis=Redis.from_url(settings.redis_url), key_prefix="kith-live"
        )
    else:
        backend = MemoryChannelsBackend()
    return ChannelsPlugin(backend=backend, arbitrary_channels_allowed=True)


class LiveMessage(msgspec.Struct, kw_only=True):
    """What a page receives: ``call`` (pop the card) or ``timeline`` (refresh it)."""

    type: str
    contact_id: str | None = None
    call_id: str | None = None
    new_lead: bool = False


def _message(event: Event) -> tuple[LiveMessage, str] | None:
    payload = event.payload
    contact = payload.get("contact_id") or (str(event.contact_id) if event.contact_id else None)
    if event.name == "call.started":
        user_id = payload.get("user_id")
        if not user_id:
            return None
        return (
            LiveMessage(
                type="call",
                contact_id=str(contact) if contact else None,
                call_id=str(payload.get("call_id") or ""),
                new_lead=bool(payload.get("new_lead")),
            ),
            user_channel(user_id),
        )
    if event.name.startswith("interaction.") and contact:
        return LiveMessage(type="timeline", contact_id=str(contact)), EVERYONE
    return None


def live_subscriber(channels: ChannelsPlugin) -> Subscriber:
    async def forward(kith: Kith, event: Event) -> None:
        if utcnow() - event.occurred_at > STALE_AFTER:
            return
        found = _message(event)
        if found is not None:
            message, channel = found
            channels.publish(msgspec.json.encode(message), channel)

    return Subscriber(name=LIVE_CHANNEL, events=("call.started", "interaction.*"), handler=forward)


async def live_stream(
    channels: ChannelsPlugin, user_id: object
) -> AsyncIterator[ServerSentEventMessage]:
    """The server-sent events of one signed-in user's page."""
    async with channels.start_subscription([user_channel(user_id), EVERYONE]) as subscriber:
        yield ServerSentEventMessage(comment="connected")
        events = subscriber.iter_events()
        waiting: asyncio.Future[bytes] | None = None
        try:
            while True:
                if waiting is None:
                    waiting = asyncio.ensure_future(anext(events))
                # Not wait_for: cancelling the pending read would end the subscription.
                done, _ = await asyncio.wait({waiting}, timeout=KEEPALIVE_S)
                if not done:
                    yield ServerSentEventMessage(comment="keep-alive")
                    continue
                data, waiting = waiting.result(), None
                message = msgspec.json.decode(data, type=LiveMessage)
                yield ServerSentEventMessage(data=data.decode(), event=message.type)
        finally:
            if waiting is not None:
                waiting.cancel()
                with contextlib.suppress(BaseException):
                    await waiting
