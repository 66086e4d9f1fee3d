"""The 1C plugin's tables: which 1C object is which Kith record, order details, exchange
sessions and their log, notices owed to 1C and conflicts met while syncing."""

from __future__ import annotations

from typing import Any

import msgspec
from kith import new_id
from piccolo.columns import (
    JSON,
    UUID,
    Boolean,
    Integer,
    Numeric,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class OnecLink(Table, tablename="onec_link"):
    """One 1C object (a counterparty, a contact person, a document) and the Kith record made
    from it. ``digest`` is a hash of what 1C last sent, so that the same file sent again
    changes nothing; ``data_version`` is OData's ``DataVersion``. An erased subject's link
    stays with ``state = 'erased'`` so that the next exchange does not bring them back."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    kind = Varchar(length=20)
    onec_id = Varchar(length=200)
    kith_id = UUID()
    contact_id = UUID(null=True, default=None, index=True)
    digest = Varchar(length=64, default="")
    # Keyed hashes of each value as last synced, by field: who changed what since (never
    # the values themselves).
    synced = JSON(default={})
    data_version = Varchar(length=100, default="")
    state = Varchar(length=20, default="active")
    updated_at = Timestamptz()


class OnecOrder(Table, tablename="onec_order"):
    """What an order interaction carries besides its text: 1C's number, sum, currency,
    status, flags and lines (goods, not people). ``id`` is the interaction's id."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True)
    contact_id = UUID(index=True)
    onec_id = Varchar(length=200)
    operation = Varchar(length=50)
    number = Varchar(length=100, default="")
    amount = Numeric(digits=(18, 2), null=True, default=None)
    currency = Varchar(length=3, default="")
    status = Varchar(length=200, default="")
    paid = Boolean(default=False)
    shipped = Boolean(default=False)
    cancelled = Boolean(default=False)
    deleted = Boolean(default=False)
    lines = JSON(default=[])
    updated_at = Timestamptz()


class OnecSession(Table, tablename="onec_session"):
    """An exchange session opened by ``mode=checkauth``: only a hash of its cookie."""

    id = UUID(primary_key=True, default=new_id)
    token_hash = Varchar(length=64, unique=True)
    exchange_type = Varchar(length=20)
    created_at = Timestamptz()
    expires_at = Timestamptz()


class OnecExchange(Table, tablename="onec_exchange"):
    """The log of exchanges and syncs, for ``kith onec status``: no personal data, only
    counts and Kith's own words about errors."""

    id = UUID(primary_key=True, default=new_id)
    channel = Varchar(length=20)
    action = Varchar(length=40)
    filename = Varchar(length=200, default="")
    state = Varchar(length=20, default="running")
    counts = JSON(default={})
    error = Text(default="")
    started_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)


class OnecNotice(Table, tablename="onec_notice"):
    """A rectification or erasure 1C must be told of (Art. 19): sent over OData when it is
    configured, else handed over in the next exchange's query reply."""

    id = UUID(primary_key=True, default=new_id)
    notice_id = UUID()
    onec_id = Varchar(length=200)
    action = Varchar(length=20)
    state = Varchar(length=20, default="pending")
    attempts = Integer(default=0)
    error = Text(default="")
    created_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)


class OnecConflict(Table, tablename="onec_conflict"):
    """A field both sides changed, and which side won: names only, never the values."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    contact_id = UUID(index=True)
    onec_id = Varchar(length=200)
    field = Varchar(length=100)
    winner = Varchar(length=10)
    created_at = Timestamptz()


ONEC_TABLES: list[type[Table]] = [
    OnecLink,
    OnecOrder,
    OnecSession,
    OnecExchange,
    OnecNotice,
    OnecConflict,
]


def json_value(value: Any) -> Any:
    """A JSON column's value as Python: PostgreSQL's driver decodes it, SQLite's gives text."""
    return msgspec.json.decode(value) if isinstance(value, (str, bytes)) else value
