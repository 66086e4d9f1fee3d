"""The signed-in person's live channel (server-sent events)."""

from __future__ import annotations

from typing import Any

from kith.http.auth import current_actor
from kith.web.live import live_stream
from kith.web.views.common import ANYONE_SIGNED_IN
from litestar import Request, get
from litestar.channels import ChannelsPlugin
from litestar.response import ServerSentEvent


@get("/live", opt=ANYONE_SIGNED_IN)
async def live(request: Request[Any, Any, Any]) -> ServerSentEvent:
    channels = request.app.plugins.get(ChannelsPlugin)
    return ServerSentEvent(
        live_stream(channels, current_actor(request).id), headers={"Cache-Control": "no-store"}
    )


PAGES = [live]
