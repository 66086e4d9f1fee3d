"""Tables of data subject requests: the requests, their history, extensions and certificates.

Transitions, extensions and certificates are evidence: the migrations add triggers refusing
UPDATE and DELETE on both engines. Free-text columns (``secret=True``) may name the person:
they are declared personal fields, stored encrypted under the subject's key.

Requests refer to their subject by contact id without a foreign key, so that erasing the
contact leaves the request, its history and its certificate in place.
"""

from __future__ import annotations

from kith.ids import new_id
from piccolo.columns import (
    JSON,
    UUID,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class SubjectRequest(Table, tablename="kith_subject_request"):
    """A data subject request (access, portability, rectification, restriction, erasure)."""

    # Whose data key seals this row's free text: the contact, or the request itself for a
    # subject Kith does not hold. The privacy registry reads it as the row's subject.
    kith_subject_column = "sealed_for"

    id = UUID(primary_key=True, default=new_id)
    kind = Varchar(length=20)
    state = Varchar(length=20, index=True)
    contact_id = UUID(null=True, default=None, index=True)
    subject_lookup = Varchar(length=128, null=True, default=None)
    subject_kind = Varchar(length=10)
    received_at = Timestamptz()
    received_on = Date()
    due_on = Date(index=True)
    extension_months = Integer(default=0)
    identity_status = Varchar(length=20, default="unverified")
    identity_method = Text(null=True, default=None, secret=True)
    identity_verified_by = Varchar(length=100, null=True, default=None)
    identity_verified_at = Timestamptz(null=True, default=None)
    created_by = Varchar(length=100)
    previewed_by = Varchar(length=100, null=True, default=None)
    approved_by = Varchar(length=100, null=True, default=None)
    parameters = JSON(default={})
    note = Text(null=True, default=None, secret=True)
    sealed_for = UUID(null=True, default=None)
    preview = JSON(null=True, default=None)
    progress = JSON(default={})
    outcome = JSON(null=True, default=None)
    last_error = Text(null=True, default=None, secret=True)
    # Who is carrying a running request out, and until when unless they renew: a process that
    # dies leaves its lease to run out, and then the worker resumes the request. With nobody
    # holding it, ``lease_until`` is when the worker may try again after a failed run.
    lease_owner = Varchar(length=100, null=True, default=None)
    lease_until = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    closed_at = Timestamptz(null=True, default=None)


class RequestTransition(Table, tablename="kith_subject_request_transition"):
    """Who moved a request from one state to another, and when (append-only)."""

    kith_subject_column = "sealed_for"

    id = UUID(primary_key=True, default=new_id)
    request = ForeignKey(
        references=SubjectRequest, on_delete=OnDelete.restrict, null=False, index=True
    )
    from_state = Varchar(length=20, null=True, default=None)
    to_state = Varchar(length=20)
    actor = Varchar(length=100)
    at = Timestamptz()
    note = Text(null=True, default=None, secret=True)
    sealed_for = UUID(null=True, default=None)


class RequestExtension(Table, tablename="kith_subject_request_extension"):
    """One extension of a request's deadline with its reason (append-only)."""

    kith_subject_column = "sealed_for"

    id = UUID(primary_key=True, default=new_id)
    request = ForeignKey(
        references=SubjectRequest, on_delete=OnDelete.restrict, null=False, index=True
    )
    months = Integer()
    reason = Text(secret=True)
    sealed_for = UUID(null=True, default=None)
    due_before = Date()
    due_after = Date()
    actor = Varchar(length=100)
    at = Timestamptz()


class Certificate(Table, tablename="kith_subject_certificate"):
    """A signed certificate of what a request did (append-only)."""

    id = UUID(primary_key=True, default=new_id)
    request = ForeignKey(
        references=SubjectRequest, on_delete=OnDelete.restrict, null=False, index=True
    )
    document = Text()
    signature = Varchar(length=200)
    key_id = Varchar(length=64)
    issued_at = Timestamptz()


REQUEST_TABLES: list[type[Table]] = [
    SubjectRequest,
    RequestTransition,
    RequestExtension,
    Certificate,
]
