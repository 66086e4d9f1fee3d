"""Signing outgoing webhook requests.

``Kith-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is HMAC-SHA256, keyed with the
subscription's secret (its UTF-8 bytes), over ``<t>.<raw body>``. Signing the timestamp with
the body lets a receiver refuse replays of an old request. During a secret rotation's grace
period a second ``v1=`` signature, under the previous secret, follows the first.
docs/plugins/webhooks.md shows how to verify it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

SIGNATURE_HEADER = "Kith-Signature"
EVENT_ID_HEADER = "Kith-Event-Id"
EVENT_HEADER = "Kith-Event"
DELIVERY_ID_HEADER = "Kith-Delivery-Id"
ATTEMPT_HEADER = "Kith-Delivery-Attempt"
SCHEME = "v1"
SECRET_PREFIX = "whsec_"
MIN_SECRET_LENGTH = 16


def new_secret() -> str:
    """A fresh random secret (256 bits), prefixed so it is recognisable in a config file."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(signing: Sequence[str], timestamp: int, body: bytes) -> str:
    """The value of the ``Kith-Signature`` header: one ``v1=`` signature per secret (two during
    a secret rotation's grace period, the current secret's first)."""
    signed = ",".join(f"{SCHEME}={signature(secret, timestamp, body)}" for secret in signing)
    return f"t={timestamp},{signed}"
