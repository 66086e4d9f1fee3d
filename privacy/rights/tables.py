"""Tables of data subject rights: consent ledger, audit log, suppression list, restrictions,
legal holds, erasure jobs, rectifications, recipient notices and export packages.

The consent ledger (:class:`ConsentEvent`) never names a contact: it names a random pseudonym,
and :class:`ConsentSubject` maps pseudonyms to contacts. Erasure deletes the mapping (and the
links to source interactions), after which the ledger still proves what was consented to and
when, but about nobody. So the ledger itself stays strictly append-only: the migrations add
triggers refusing UPDATE and DELETE on both engines.

The other tables have no foreign key to the contact table: each must outlive the contact it is
about (an erasure job, its certificate evidence, a legal hold, the audit trail). Where a row
holds text that may name the person (``secret=True``), it is a declared personal field, stored
encrypted under the contact's data key, so erasing the contact makes it unreadable too.
"""

from __future__ import annotations

from typing import Any

from kith.ids import new_id
from piccolo.columns import (
    JSON,
    UUID,
    BigInt,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.reference import LazyTableReference
from piccolo.table import Table

# Foreign keys to core's tables name them rather than import them: the privacy plugins reach
# core's data through its services and hooks; the database keeps the links (and cascades).
_CONTACT = LazyTableReference("Contact", module_path="kith.tables")
_INTERACTION = LazyTableReference("Interaction", module_path="kith.tables")


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
    contact: ForeignKey[Any] = ForeignKey(
        references=_CONTACT, on_delete=OnDelete.cascade, null=False, index=True
    )
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
    interaction: ForeignKey[Any] = ForeignKey(
        references=_INTERACTION, on_delete=OnDelete.cascade, null=False, index=True
    )


class AuditEntry(Table, tablename="kith_privacy_audit"):
    """Who read, exported, changed or erased whose personal data, when, through which channel.
    ``details`` (fields, items) is encrypted under the subject's key."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    contact_id = UUID(index=True)
    at = Timestamptz()
    actor = Varchar(length=200)
    channel = Varchar(length=20)
    action = Varchar(length=30)
    request_id = UUID(null=True, default=None)
    details = Text(null=True, default=None, secret=True)


class Suppression(Table, tablename="kith_privacy_suppression"):
    """A keyed hash of an email or phone of someone erased (or who objected to marketing), so
    that they are not brought back silently. It names nobody: no contact id, no value."""

    id = UUID(primary_key=True, default=new_id)
    kind = Varchar(length=10)
    digest = Varchar(length=64)
    # The root key (kith_privacy_root_key) the digest was made under. Entries from before root
    # keys name only the KEK their key was derived from, until start-up carries them over.
    root_key_id = UUID(null=True, default=None, index=True)
    kek_id = Varchar(length=64, default="")
    reason = Varchar(length=20)
    created_at = Timestamptz()


class SuppressionOverride(Table, tablename="kith_privacy_suppression_override"):
    """An operator created a contact whose email or phone is suppressed, giving a reason."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    suppression = ForeignKey(references=Suppression, on_delete=OnDelete.cascade, null=False)
    contact_id = UUID(index=True)
    kind = Varchar(length=10)
    reason = Text(secret=True)
    actor = Varchar(length=200)
    at = Timestamptz()


class Restriction(Table, tablename="kith_privacy_restriction"):
    """A restriction of processing (Art. 18): only storage (and the request) is allowed until
    it is lifted, which needs the notice given to the person (Art. 18(3))."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    contact_id = UUID(index=True)
    ground = Varchar(length=40)
    request_id = UUID(null=True, default=None)
    started_at = Timestamptz()
    started_by = Varchar(length=200)
    lifted_at = Timestamptz(null=True, default=None)
    lifted_by = Varchar(length=200, null=True, default=None)
    lift_notice = Text(null=True, default=None, secret=True)


class LegalHold(Table, tablename="kith_privacy_legal_hold"):
    """Records kept after an erasure because a law requires them (e.g. orders for tax law).

    The id is also the data subject the kept records are re-encrypted under, so the person's
    own key can be destroyed while the held records stay readable until ``held_until``; then
    retention erases them and destroys this key too. The contact is restricted meanwhile."""

    id = UUID(primary_key=True, default=new_id)
    contact_id = UUID(index=True)
    rule = Varchar(length=100)
    ground = Varchar(length=500)
    kinds = JSON(default=[])
    held_count = Integer(default=0)
    held_until = Timestamptz()
    created_at = Timestamptz()
    job_id = UUID(null=True, default=None)
    released_at = Timestamptz(null=True, default=None)


class ErasureJob(Table, tablename="kith_privacy_erasure_job"):
    """One erasure of one subject (for a request or a retention rule), run in steps."""

    id = UUID(primary_key=True, default=new_id)
    contact_id = UUID(index=True)
    origin = Varchar(length=20)
    request_id = UUID(null=True, default=None)
    rule = Varchar(length=100, null=True, default=None)
    state = Varchar(length=10, default="running")
    actor = Varchar(length=200)
    started_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)
    # A failed step's message may quote the person: sealed under their key.
    last_error = Text(null=True, default=None, secret=True)


class ErasureStep(Table, tablename="kith_privacy_erasure_step"):
    """A finished step of an erasure job and what it did; a resumed job skips these."""

    id = UUID(primary_key=True, default=new_id)
    job = ForeignKey(references=ErasureJob, on_delete=OnDelete.cascade, null=False, index=True)
    step = Varchar(length=120)
    position = Integer()
    entries = JSON(default=[])
    finished_at = Timestamptz()


class Rectification(Table, tablename="kith_privacy_rectification"):
    """The corrections a rectification request will make (encrypted: they are personal data)."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    request_id = UUID(unique=True)
    contact_id = UUID(index=True)
    patch = Text(secret=True)
    created_by = Varchar(length=200)
    created_at = Timestamptz()


class RecipientNoticeRecord(Table, tablename="kith_privacy_recipient_notice"):
    """One notice to one recipient about one subject (Art. 19) and how it went."""

    id = UUID(primary_key=True, default=new_id)
    notice_id = UUID(index=True)
    contact_id = UUID(index=True)
    action = Varchar(length=30)
    recipient = Varchar(length=200)
    owner = Varchar(length=100)
    outcome = Varchar(length=20)
    detail = Text(default="")
    # How many of the recipient's endpoints were told (a resumed job reports it again).
    endpoints = Integer(default=0)
    request_id = UUID(null=True, default=None)
    at = Timestamptz()


class ExportPackage(Table, tablename="kith_privacy_export"):
    """A ZIP written for an access or portability request, kept in KITH_HOME/exports for a
    limited time (and deleted by erasure)."""

    id = UUID(primary_key=True, default=new_id)
    contact_id = UUID(index=True)
    request_id = UUID(null=True, default=None, index=True)
    file_name = Varchar(length=200)
    sha256 = Varchar(length=64)
    size = BigInt(default=0)
    created_by = Varchar(length=200)
    created_at = Timestamptz()
    deleted_at = Timestamptz(null=True, default=None)


RIGHTS_TABLES: list[type[Table]] = [
    Notice,
    ConsentSubject,
    ConsentEvent,
    ConsentSource,
    AuditEntry,
    Suppression,
    SuppressionOverride,
    Restriction,
    LegalHold,
    ErasureJob,
    ErasureStep,
    Rectification,
    RecipientNoticeRecord,
    ExportPackage,
]
