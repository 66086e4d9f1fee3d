"""Recently checked API tokens, so that a client's next requests skip the token lookup.

Every API request authenticates its bearer token; looking it up is a database round trip that
costs about as much as the rest of a short read (docs/performance.md). A server therefore
remembers a token it has checked for ``token_cache_seconds`` (setting; 0 turns this off). The
trade-off: a token revoked in this process stops working at once (the revoking service forgets
it here), while one revoked by another process (``kith tokens revoke``, a second server) keeps
working there until its entry ages out. An entry never outlives the token's own expiry.

It also keeps a token's "last used" time from turning every request into a write: a server
records a token's use at most once every ``LAST_USED_EVERY`` (whether or not it remembers the
token itself), so ``last_used_at`` is at most that much behind.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import OrderedDict

from kith.actor import Actor

DEFAULT_CAPACITY = 4096
LAST_USED_EVERY = dt.timedelta(minutes=1)


class TokenCache:
    """A bounded LRU of token digest → (actor, valid until), each entry kept ``ttl`` seconds."""

    def __init__(self, ttl: float, capacity: int = DEFAULT_CAPACITY) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[float, dt.datetime | None, Actor]] = OrderedDict()
        # Token digest → when this process last wrote its use.
        self._uses: OrderedDict[str, dt.datetime] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str, now: dt.datetime) -> Actor | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        stored_at, expires_at, actor = entry
        if time.monotonic() - stored_at > self.ttl or (
            expires_at is not None and expires_at <= now
        ):
            # Aged out, or the token itself expired: the caller checks it against the database
            # again, which gives the precise reason.
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return actor

    def put(self, digest: str, actor: Actor, expires_at: dt.datetime | None) -> None:
        if self.ttl <= 0:
            return
        self._entries[digest] = (time.monotonic(), expires_at, actor)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def use_to_record(self, digest: str, now: dt.datetime) -> bool:
        """Whether this use of the token should be written as its last use (none written in
        the last ``LAST_USED_EVERY``); a True answer counts as written."""
        last = self._uses.get(digest)
        if last is not None and dt.timedelta(0) <= now - last < LAST_USED_EVERY:
            return False
        self._uses[digest] = now
        self._uses.move_to_end(digest)
        while len(self._uses) > self.capacity:
            self._uses.popitem(last=False)
        return True

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)
        self._uses.pop(digest, None)

    def clear(self) -> None:
        self._entries.clear()
        self._uses.clear()
