"""Tables of the privacy workflow: consent ledger, notices, subject requests and certificates.

The consent ledger (:class:`ConsentEvent`) never names a contact: it names a random
pseudonym, and :class:`ConsentSubject` maps pseudonyms to contacts. Erasure deletes the
mapping (and the links to source interactions), after which the ledger still proves what was
consented to and when, but about nobody. So the ledger itself stays strictly append-only: the
migrations add triggers refusing UPDATE and DELETE on both engines.

Free-text columns (``secret=True``) may name the person: they are declared personal fields,
stored encrypted under the subject's key.

Requests refer to their subject by contact id without a foreign key, so that erasing the
contact leaves the request, its history and its certificate in place.
"""

from __future__ import annotations

from kith.ids import new_id
from kith.tables import Contact, Interaction
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


class Notice(Table, tablename="kith_privacy_notice"):
    """One version of the notice text shown when consent for a purpose is asked (append-only)."""

    id = UUID(primary_key=True, default=new_id)
    purpose = Varchar(length=80, index=True)
    version = Integer()
    text = Text()
    sha256 = Varchar(length=64)
    created_at = Timestamptz()
    created_by = Varchar(length=100)


class ConsentSubject(Table, tablename="kith_consent_subject"):
    """Which contact a ledger pseudonym stands for. Deleting the row anonymises the events."""

    pseudonym = UUID(primary_key=True)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False, index=True)
    created_at = Timestamptz()


class ConsentEvent(Table, tablename="kith_consent_event"):
    """One consent given or withdrawn (append-only: triggers refuse UPDATE and DELETE)."""

    id = UUID(primary_key=True, default=new_id)
    subject = UUID(index=True)
    purpose = Varchar(length=80)
    action = Varchar(length=10)
    lawful_basis = Varchar(length=30)
    notice = ForeignKey(references=Notice, on_delete=OnDelete.restrict, null=True)
    notice_version = Integer(null=True, default=None)
    notice_sha256 = Varchar(length=64, null=True, default=None)
    channel = Varchar(length=50)
    occurred_at = Timestamptz()
    recorded_at = Timestamptz()
    actor = Varchar(length=100)


class ConsentSource(Table, tablename="kith_consent_source"):
    """The interaction (e.g. a form submission) a consent event came from; erasable."""

    id = UUID(primary_key=True, default=new_id)
    event = ForeignKey(
        references=ConsentEvent, on_delete=OnDelete.restrict, null=False, unique=True
    )
    interaction = ForeignKey(
        references=Interaction, on_delete=OnDelete.cascade, null=False, index=True
    )


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


WORKFLOW_TABLES: list[type[Table]] = [
    Notice,
    ConsentSubject,
    ConsentEvent,
    ConsentSource,
    SubjectRequest,
    RequestTransition,
    RequestExtension,
    Certificate,
]

APPEND_ONLY_TABLES: tuple[str, ...] = (
    ConsentEvent._meta.tablename,
    Notice._meta.tablename,
    RequestTransition._meta.tablename,
    RequestExtension._meta.tablename,
    Certificate._meta.tablename,
)
