"""The one way the adapters call a provider's HTTP API."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
from kith import __version__
from kith.plugins.messengers.adapters import MessengerError

TIMEOUT_S = 15.0
USER_AGENT = f"Kith-Messengers/{__version__}"


async def post_json(
    url: str, payload: dict[str, Any], *, what: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST ``payload`` as JSON; the status and the decoded answer (an empty dict when the
    answer is not a JSON object). Raises :class:`MessengerError` when nothing came back."""
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            answer = await client.post(
                url, json=payload, headers={"User-Agent": USER_AGENT, **(headers or {})}
            )
    except httpx.HTTPError as exc:
        raise MessengerError(f"{what} could not be reached ({type(exc).__name__})") from None
    try:
        decoded = msgspec.json.decode(answer.content)
    except msgspec.DecodeError:
        decoded = {}
    return answer.status_code, decoded if isinstance(decoded, dict) else {}
