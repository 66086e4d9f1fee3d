"""Subscription secrets at rest: sealed through Kith's field protector, never stored readable.

A secret is a credential, not personal data, but anyone who reads it can sign requests that a
receiver accepts as Kith's; so it is stored like a personal field, sealed under a data key of
the subscription's own (the subscription is its own subject), and opened only to sign.

After a rotation the previous secret keeps signing beside the new one for
``[webhooks] secret_grace_seconds``, so a receiver can switch over without refusing deliveries:
every request carries one ``v1=`` signature per secret, and a receiver accepts any that matches.

Without field encryption (the privacy plugin switched off) the protector stores what it is
given; the secret then stays in the ``secret`` column, and ``kith migrate`` seals it once field
encryption is on.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from kith import Kith, get_logger
from kith.plugins.webhooks.tables import WebhookSubscription

TABLE = str(WebhookSubscription._meta.tablename)
CURRENT = "sealed_secret"
PREVIOUS = "previous_secret"

_log = get_logger("kith.webhooks")


@dataclass(frozen=True)
class StoredSecrets:
    """The column values that hold a subscription's secrets."""

    secret: str  # readable only without field encryption, else ""
    sealed_secret: str | None
    previous_secret: str | None = None

    def values(self) -> dict[Any, Any]:
        return {
            WebhookSubscription.secret: self.secret,
            WebhookSubscription.sealed_secret: self.sealed_secret,
            WebhookSubscription.previous_secret: self.previous_secret,
        }


async def store(
    kith: Kith, subscription_id: uuid.UUID, secret: str, previous: str | None = None
) -> StoredSecrets:
    """How to store ``secret`` (and the ``previous`` one, during a rotation's grace period)."""
    values: dict[str, str | None] = {CURRENT: secret, PREVIOUS: previous}
    stored = await kith.protector.protect(subscription_id, TABLE, subscription_id, values)
    if stored[CURRENT] == secret:
        # The protector does not encrypt: both stay readable, and are sealed by `kith migrate`
        # once field encryption is on.
        return StoredSecrets(secret=secret, sealed_secret=None, previous_secret=previous)
    return StoredSecrets(secret="", sealed_secret=stored[CURRENT], previous_secret=stored[PREVIOUS])


async def secrets_of(
    kith: Kith, row: dict[str, Any], prefix: str = ""
) -> tuple[str, str | None, dt.datetime | None]:
    """(current secret, previous secret, until when the previous one signs) of a subscription
    row; ``prefix`` for a row joined from deliveries (``subscription.``)."""
    subscription_id = row[f"{prefix}id"]
    previous = row[f"{prefix}{PREVIOUS}"]
    until = row[f"{prefix}previous_secret_until"]
    readable = row[f"{prefix}secret"]
    if readable:
        return str(readable), previous, until
    opened = await kith.protector.reveal(
        subscription_id,
        TABLE,
        subscription_id,
        {CURRENT: row[f"{prefix}{CURRENT}"], PREVIOUS: previous},
    )
    return opened[CURRENT] or "", opened[PREVIOUS], until


async def signing_secrets(
    kith: Kith, row: dict[str, Any], now: dt.datetime, prefix: str = ""
) -> list[str]:
    """The secrets a delivery is signed with now: the current one, then the previous one while
    its grace period lasts."""
    secret, previous, until = await secrets_of(kith, row, prefix)
    if previous is not None and until is not None and until > now:
        return [secret, previous]
    return [secret]


async def seal_readable(kith: Kith) -> int:
    """Seal every secret still stored readable (written before secrets were sealed, or while
    field encryption was off); how many subscriptions were sealed. Idempotent."""
    rows = await WebhookSubscription.select().where(WebhookSubscription.secret != "")
    sealed = 0
    for row in rows:
        stored = await store(kith, row["id"], row["secret"], row["previous_secret"])
        if stored.sealed_secret is None:
            return 0  # no field encryption: nothing can be sealed
        await (
            WebhookSubscription.update(stored.values())
            .where(WebhookSubscription.id == row["id"])
            .run()
        )
        sealed += 1
    if sealed:
        _log.info("webhook secrets sealed", subscriptions=sealed)
    return sealed
