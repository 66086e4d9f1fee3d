"""What a rights action would do (a line of a preview) and did (a line of a certificate).

Erasure, export, rectification, restriction and the notices to recipients describe their work
in these terms; the requests plugin puts them into previews and signed certificates.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec
from kith import utcnow


class PlannedAction(msgspec.Struct, frozen=True, kw_only=True):
    """One location a request will touch and how (a line of the preview)."""

    source: str
    location: str
    method: str
    count: int = 0
    ground: str | None = None


class CertificateEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One location a request touched: what was done, how it turned out, and when.

    ``outcome`` is ``done``, ``failed`` (with ``detail``) or ``not_applicable``; ``detail``
    must not hold personal data (it goes into the certificate)."""

    source: str
    location: str
    method: str
    outcome: Literal["done", "failed", "not_applicable"] = "done"
    count: int = 0
    ground: str | None = None
    detail: str | None = None
    at: dt.datetime = msgspec.field(default_factory=utcnow)
