"""The ``[telephony.asterisk]`` settings: where the AMI is, how to log in, how to place calls."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from msgspec import Meta, Struct

Seconds = Annotated[float, Meta(gt=0, le=3600)]


class AsteriskSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """How Kith reaches an Asterisk through its Manager Interface (AMI).

    ``username`` and ``secret`` are a ``manager.conf`` user. ``auth = "md5"`` logs in by the
    challenge, so the secret never crosses the network. ``events`` is the event mask asked for at
    login: calls, queues (``agent``) and dialplan variables (recordings) are all Kith reads.
    """

    enabled: bool = False
    host: Annotated[str, Meta(min_length=1, max_length=255)] = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 5038
    username: Annotated[str, Meta(max_length=100)] = ""
    secret: Annotated[str, Meta(max_length=200)] = ""
    auth: Literal["plain", "md5"] = "md5"
    events: Annotated[str, Meta(min_length=1, max_length=200)] = "call,agent,dialplan"
    # A caller or dialled number that matches is an office extension; anything else is the
    # outside world (which decides inbound, outbound and internal).
    extension_pattern: Annotated[str, Meta(min_length=1, max_length=200)] = r"^[0-9]{2,5}$"
    # Click-to-call rings the agent's phone through this channel first ({extension} is
    # replaced), then dials the number in ``originate_context``.
    originate_channel: Annotated[str, Meta(min_length=1, max_length=200)] = (
        "Local/{extension}@from-internal"
    )
    originate_context: Annotated[str, Meta(min_length=1, max_length=80)] = "from-internal"
    originate_ring_seconds: Seconds = 30.0
    connect_timeout_seconds: Seconds = 10.0
    # Reconnection waits the minimum, then doubles up to the maximum; a login resets it.
    reconnect_min_seconds: Seconds = 1.0
    reconnect_max_seconds: Seconds = 60.0
    ping_interval_seconds: Seconds = 20.0
    ping_timeout_seconds: Seconds = 10.0

    def problems(self) -> list[str]:
        """What keeps these settings from working, one readable line each (empty when fine)."""
        found: list[str] = []
        if not self.username or not self.secret:
            found.append("username and secret (a manager.conf user) are required")
        try:
            re.compile(self.extension_pattern)
        except re.error as exc:
            found.append(f"extension_pattern is not a regular expression ({exc})")
        if "{extension}" not in self.originate_channel:
            found.append("originate_channel must contain {extension}")
        if self.reconnect_min_seconds > self.reconnect_max_seconds:
            found.append("reconnect_min_seconds is above reconnect_max_seconds")
        return found
