"""The ``[web]`` section of kith.toml (``KITH_WEB_<KEY>`` overrides a value)."""

from __future__ import annotations

from typing import Annotated

import msgspec

SECTION = "web"


class WebSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """How the web UI signs people in."""

    # Signs the CSRF cookie; every process serving one Kith needs the same one. Empty: a
    # random secret kept in KITH_HOME (one machine).
    secret: str = ""
    # A session ends after this many hours without a request.
    session_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 90)] = 12
    # Wrong passwords in a row before an account is locked for lockout_minutes.
    lockout_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    lockout_minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 15
    # Send cookies over HTTPS only: set it when Kith is reached through https://.
    secure_cookies: bool = False
