"""Core tables: users and their API tokens, contacts with their emails and phones, interactions."""

from __future__ import annotations

from kith.ids import new_id
from piccolo.columns import (
    JSON,
    UUID,
    Boolean,
    ForeignKey,
    Integer,
    Numeric,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class User(Table, tablename="kith_user"):
    id = UUID(primary_key=True, default=new_id)
    email = Varchar(length=320, unique=True)
    name = Varchar(length=200, default="")
    role = Varchar(length=20)
    password_hash = Text(null=True, default=None)
    active = Boolean(default=True)
    created_at = Timestamptz()


class ApiToken(Table, tablename="kith_api_token"):
    id = UUID(primary_key=True, default=new_id)
    user = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False)
    name = Varchar(length=100, default="")
    prefix = Varchar(length=16)
    token_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz()
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)


class Contact(Table, tablename="kith_contact"):
    id = UUID(primary_key=True, default=new_id)
    kind = Varchar(length=20)
    display_name = Text()
    given_name = Text(null=True, default=None)
    family_name = Text(null=True, default=None)
    organization = ForeignKey(references="self", on_delete=OnDelete.set_null, null=True)
    owner = ForeignKey(references=User, on_delete=OnDelete.set_null, null=True)
    tags = JSON(default=[])
    source = Varchar(length=100, default="api")
    archived = Boolean(default=False, index=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class ContactPoint(Table, tablename="kith_contact_point"):
    """One email address or phone number of a contact, stored normalised."""

    id = UUID(primary_key=True, default=new_id)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False, index=True)
    kind = Varchar(length=10)
    value = Text()
    lookup = Varchar(length=128, index=True)
    label = Varchar(length=50, default="")
    is_primary = Boolean(default=False)
    position = Integer(default=0)


class Interaction(Table, tablename="kith_interaction"):
    id = UUID(primary_key=True, default=new_id)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False, index=True)
    kind = Varchar(length=20)
    direction = Varchar(length=10, null=True, default=None)
    occurred_at = Timestamptz(index=True)
    summary = Text(default="")
    body = Text(default="")
    channel = Varchar(length=50, null=True, default=None)
    duration_s = Integer(null=True, default=None)
    amount = Numeric(digits=(18, 2), null=True, default=None)
    source = Varchar(length=100, default="api")
    external_id = Varchar(length=200, null=True, default=None)
    due_at = Timestamptz(null=True, default=None, index=True)
    done_at = Timestamptz(null=True, default=None)
    assignee = ForeignKey(references=User, on_delete=OnDelete.set_null, null=True, index=True)
    created_by = ForeignKey(references=User, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()


CORE_TABLES: list[type[Table]] = [User, ApiToken, Contact, ContactPoint, Interaction]
