"""The one-time code that guards the first-run set-up page. ``kith serve`` makes and prints
it while the installation has no user; the store keeps only its hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from litestar.stores.base import Store

KEY = "setup-code"
# A code printed at start-up stays good for a day; a restart prints a new one.
LIFETIME_S = 24 * 3600


def _digest(code: str) -> bytes:
    return hashlib.sha256(code.strip().upper().replace(" ", "").replace("-", "").encode()).digest()


async def issue_setup_code(store: Store) -> str:
    """A new code (the previous one stops working), as people type it: ``XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(12))
    await store.set(KEY, _digest(raw), expires_in=LIFETIME_S)
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


async def check_setup_code(store: Store, code: str) -> bool:
    stored = await store.get(KEY)
    return stored is not None and hmac.compare_digest(stored, _digest(code))


async def forget_setup_code(store: Store) -> None:
    await store.delete(KEY)
