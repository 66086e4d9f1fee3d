"""Lock-out after repeated failed sign-ins: a counter per account in the web store, so every
process serving the installation counts together. The key is a hash, not the address."""

from __future__ import annotations

import hashlib

from litestar.stores.base import Store


class Lockout:
    def __init__(self, store: Store, attempts: int, minutes: int) -> None:
        self.store = store
        self.attempts = attempts
        self.seconds = minutes * 60

    @staticmethod
    def _key(email: str) -> str:
        return "signin-failures:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()

    async def locked(self, email: str) -> bool:
        count = await self.store.get(self._key(email))
        return count is not None and int(count) >= self.attempts

    async def failed(self, email: str) -> None:
        key = self._key(email)
        count = await self.store.get(key)
        # The lock lasts lockout_minutes from the last failure.
        await self.store.set(key, str(int(count or 0) + 1), expires_in=self.seconds)

    async def clear(self, email: str) -> None:
        await self.store.delete(self._key(email))
