"""One AMI connection on panoramisk: connect, log in (plain or MD5 challenge), hand on events.

panoramisk's ``Manager`` frames messages and matches responses to actions; its own reconnect
(a fixed delay) and ping (fire and forget) are turned off here, because the provider backs off
and needs to notice a server that stopped answering.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

from kith.plugins.telephony.asterisk.settings import AsteriskSettings
from panoramisk import Manager
from panoramisk.message import Message


class LoginRefused(Exception):
    """The AMI refused the username and secret."""


class ConnectionGone(ConnectionError):
    """The connection closed while an action waited for its response."""


class AmiSession(Manager):  # type: ignore[misc]
    """A single AMI connection; :meth:`open` connects, a lost connection is final."""

    def __init__(
        self, settings: AsteriskSettings, on_message: Callable[[Message | None], None]
    ) -> None:
        super().__init__(
            host=settings.host,
            port=settings.port,
            loop=asyncio.get_running_loop(),
            events=settings.events,
        )
        self._settings = settings
        self._on_message = on_message
        self.lost: asyncio.Future[None] = self.loop.create_future()
        self.version: str | None = None
        self.register_event("*", self._forward)

    def _forward(self, _manager: Any, message: Message) -> None:
        self._on_message(message)

    async def open(self) -> None:
        """Connect and log in; raises OSError, TimeoutError or :class:`LoginRefused`."""
        settings = self._settings
        await asyncio.wait_for(self.connect(), settings.connect_timeout_seconds)
        if self.protocol is None:
            raise ConnectionGone("the connection closed at once")
        await self._login(settings.connect_timeout_seconds)
        self.version = getattr(self.protocol, "version", None)

    async def _login(self, timeout: float) -> None:
        settings = self._settings
        action: dict[str, str] = {"Action": "Login", "Username": settings.username}
        if settings.auth == "md5":
            challenge = await self.act({"Action": "Challenge", "AuthType": "MD5"}, timeout)
            if not challenge.success or not challenge.get("challenge"):
                raise LoginRefused(str(challenge.get("message") or "no challenge given"))
            # The AMI's own scheme; MD5 here keeps the secret off the wire, nothing more.
            key = hashlib.md5(
                (challenge["challenge"] + settings.secret).encode(), usedforsecurity=False
            ).hexdigest()
            action.update({"AuthType": "MD5", "Key": key})
        else:
            action["Secret"] = settings.secret
        action["Events"] = settings.events
        response = await self.act(action, timeout)
        if not response.success:
            raise LoginRefused(str(response.get("message") or "authentication failed"))

    async def act(self, action: dict[str, str], timeout: float) -> Message:
        """Send one action and wait for its first response only (an asynchronous Originate's
        later OriginateResponse arrives as an event)."""
        if self.lost.done() or self.protocol is None:
            raise ConnectionGone("not connected")
        future = self.send_action(action, as_list=False)
        done, _ = await asyncio.wait(
            {future, self.lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if future in done:
            return future.result()  # type: ignore[no-any-return]
        future.cancel()
        if self.lost.done():
            raise ConnectionGone("the connection closed")
        raise TimeoutError(f"no response to {action['Action']} in {timeout:g} s")

    def drop(self) -> None:
        """Close the connection and end the session (panoramisk does not report a close it
        was asked for)."""
        self.close()
        self.connection_lost(None)

    # -- panoramisk's callbacks, changed ------------------------------------------------------

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        # A failed connect is seen by ``open``; panoramisk would schedule its own reconnect.
        if f.cancelled() or f.exception() is not None:
            return
        super().connection_made(f)

    def connection_lost(self, exc: Any) -> None:
        self._connected = False
        # panoramisk keeps unanswered actions to send again after its reconnect; this session
        # does not come back, so they fail now.
        while self.awaiting_actions:
            action = self.awaiting_actions.popleft()
            if not action.future.done():
                action.future.set_exception(ConnectionGone("the connection closed"))
        if not self.lost.done():
            self.lost.set_result(None)
            self._on_message(None)

    def ping(self) -> None:
        """The provider pings on its own schedule and waits for the answer."""
