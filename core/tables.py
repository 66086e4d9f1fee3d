"""Core tables: users and their API tokens, contacts with their emails and phones, interactions,
and the event outbox with its deliveries."""

from __future__ import annotations

from kith.ids import new_id
from piccolo.columns import (
    JSON,
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    DoublePrecision,
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
    # secret=True marks a personal column: the privacy plugin refuses to start unless every
    # such column is declared in the personal-data registry (kith.personal).
    display_name = Text(secret=True)
    given_name = Text(null=True, default=None, secret=True)
    family_name = Text(null=True, default=None, secret=True)
    organization: ForeignKey[Contact] = ForeignKey(
        references="self", on_delete=OnDelete.set_null, null=True
    )
    owner = ForeignKey(references=User, on_delete=OnDelete.set_null, null=True)
    tags = JSON(default=[])
    source = Varchar(length=100, default="api")
    archived = Boolean(default=False, index=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    # Kept by the database's triggers (see the migration that adds it): the time of the
    # contact's newest interaction other than a task, for the list ordered by it.
    last_interaction_at = Timestamptz(null=True, default=None)


class ContactPoint(Table, tablename="kith_contact_point"):
    """One email address or phone number of a contact, stored normalised."""

    id = UUID(primary_key=True, default=new_id)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False, index=True)
    kind = Varchar(length=10)
    value = Text(secret=True)
    lookup = Varchar(length=128, index=True)
    label = Varchar(length=50, default="")
    is_primary = Boolean(default=False)
    position = Integer(default=0)


class CustomField(Table, tablename="kith_custom_field"):
    """A field an admin (or a plugin) declared for contacts: its type and rules."""

    id = UUID(primary_key=True, default=new_id)
    name = Varchar(length=50, unique=True)
    label = Varchar(length=200, default="")
    type = Varchar(length=20)
    required = Boolean(default=False)
    # The default value as stored (normalised), or NULL for none.
    default = Text(null=True, default=None)
    choices = JSON(default=[])
    currency = Varchar(length=3, null=True, default=None)
    personal = Boolean(default=False)
    searchable = Boolean(default=False)
    category = Varchar(length=50, null=True, default=None)
    purpose = Varchar(length=100, null=True, default=None)
    archived = Boolean(default=False)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    # ``admin`` (the API or the CLI), ``kith.toml``, or the name of the plugin that declared it.
    declared_by = Varchar(length=100, default="admin")
    # The retention class of a personal field's values (retention rules name it), or NULL.
    retention = Varchar(length=100, null=True, default=None)


class CustomFieldValue(Table, tablename="kith_custom_field_value"):
    """One contact's value of one custom field, as normalised text: in ``value`` when the
    field is not personal (so lists can filter on it), else encrypted in ``protected``."""

    id = UUID(primary_key=True, default=new_id)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False, index=True)
    field = ForeignKey(references=CustomField, on_delete=OnDelete.cascade, null=False)
    value = Text(null=True, default=None)
    protected = Text(null=True, default=None, secret=True)
    # Numbers and money again as a number, for range filters.
    number = DoublePrecision(null=True, default=None)
    # The blind index of a searchable personal value (``kind`` names its key), else NULL.
    kind = Varchar(length=60, null=True, default=None)
    lookup = Varchar(length=128, null=True, default=None)
    # When the value was given (a type change keeps it): retention counts from here.
    set_at = Timestamptz(null=True, default=None)


class Interaction(Table, tablename="kith_interaction"):
    # Indexes are the migrations' (kith_interaction_timeline leads with the contact; due_at and
    # assignee are indexed only where set): every one is written by each interaction logged.
    id = UUID(primary_key=True, default=new_id)
    contact = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False)
    kind = Varchar(length=20)
    direction = Varchar(length=10, null=True, default=None)
    occurred_at = Timestamptz(index=True)
    summary = Text(default="", secret=True)
    body = Text(default="", secret=True)
    channel = Varchar(length=50, null=True, default=None)
    duration_s = Integer(null=True, default=None)
    amount = Numeric(digits=(18, 2), null=True, default=None)
    source = Varchar(length=100, default="api")
    external_id = Varchar(length=200, null=True, default=None)
    due_at = Timestamptz(null=True, default=None)
    done_at = Timestamptz(null=True, default=None)
    assignee = ForeignKey(references=User, on_delete=OnDelete.set_null, null=True)
    # The due time ``task.due`` was published for: once per due time, again if due_at changes.
    due_event_at = Timestamptz(null=True, default=None)
    created_by = ForeignKey(references=User, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class OutboxEvent(Table, tablename="kith_event"):
    """A published event, written in the transaction of the change it describes. The payload is
    msgspec JSON of ids and codes, never personal data. ``fanned_out_at`` is set once a
    dispatcher has created the event's delivery rows."""

    id = UUID(primary_key=True, default=new_id)
    name = Varchar(length=200)
    occurred_at = Timestamptz()
    actor = Varchar(length=200, default="system")
    # Not a foreign key: the event history outlives an erased or merged contact.
    contact_id = UUID(null=True, default=None)
    payload = Text(default="{}")
    fanned_out_at = Timestamptz(null=True, default=None)


class EventDelivery(Table, tablename="kith_event_delivery"):
    """One event to one subscriber: its state (pending, delivered, dead), attempts and lease."""

    id = UUID(primary_key=True, default=new_id)
    event = ForeignKey(references=OutboxEvent, on_delete=OnDelete.cascade, null=False)
    subscriber = Varchar(length=200)
    # Copied from the event so the per-contact ordering check needs no join.
    contact_id = UUID(null=True, default=None)
    state = Varchar(length=10, default="pending")
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz()
    locked_until = Timestamptz(null=True, default=None)
    locked_by = Varchar(length=100, null=True, default=None)
    last_error = Text(null=True, default=None)
    delivered_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()


class EventSubscription(Table, tablename="kith_event_subscriber"):
    """Every subscriber any dispatching process has declared: fan-out creates deliveries for
    these, so a subscriber gets its events even while the process that runs it is down."""

    id = UUID(primary_key=True, default=new_id)
    name = Varchar(length=200, unique=True)
    events = Text(default="[]")
    max_attempts = Integer(default=8)
    registered_at = Timestamptz()
    last_seen_at = Timestamptz()


class NameToken(Table, tablename="kith_name_token"):
    """One prefix of one word of a contact's name, as a keyed hash (see kith.name_index).

    ``source`` says which personal row the word came from (a hash of its table and id), so a
    changed row replaces only its own tokens. Indexes (made by the migration): (token, contact)
    for searching in contact order, (contact, source) for replacing and erasing.

    ``contact`` has no foreign key: checking it cost two thirds of a new contact's token insert
    on SQLite. A trigger deletes a contact's tokens with it, whoever deletes it (migration
    ``name_tokens_go_with_their_contact``); erasure deletes them itself, since a contact kept
    for a legal hold stays (:func:`kith.name_index.forget_subject`)."""

    kith_subject_column = "contact"

    id = BigSerial(primary_key=True)
    token = BigInt()
    contact = UUID(null=False, default=None)
    source = BigInt()


class NameIndexState(Table, tablename="kith_name_index"):
    """Which keys the name index was completely built with (one row, or none while it is not
    complete: then a name search decrypts instead)."""

    fingerprint = Varchar(length=64)
    built_at = Timestamptz()


class Merge(Table, tablename="kith_merge"):
    """One merge of contacts into a survivor, and what undoing it needs.

    ``snapshot`` holds the losers' records, the survivor as it was and each plugin's note,
    encrypted under the survivor's data key: erasing the survivor makes it unreadable (and the
    erasure deletes the row). It is cleared once the merge is undone or its undo window has
    passed. No foreign key to the survivor: a survivor merged away later keeps this record, so
    that the later merge can be undone first and then this one."""

    kith_subject_column = "survivor"

    id = UUID(primary_key=True, default=new_id)
    survivor = UUID(index=True)
    actor = Varchar(length=200, default="system")
    at = Timestamptz()
    undo_until = Timestamptz()
    # done (can be undone until undo_until), undone, or closed (the window passed).
    state = Varchar(length=10, default="done")
    # The survivor's updated_at as the merge left it: an undo refuses a survivor changed since.
    survivor_updated_at = Timestamptz()
    snapshot = Text(null=True, default=None, secret=True)
    undone_at = Timestamptz(null=True, default=None)
    undone_by = Varchar(length=200, null=True, default=None)


class MergedContact(Table, tablename="kith_merge_loser"):
    """A contact a merge merged away (its id lives on here while the merge can be undone, and
    names the survivor to someone who still holds the old id)."""

    id = UUID(primary_key=True, default=new_id)
    merge = ForeignKey(references=Merge, on_delete=OnDelete.cascade, null=False, index=True)
    contact_id = UUID(index=True)
    position = Integer(default=0)


class DuplicatePair(Table, tablename="kith_duplicate_pair"):
    """Two contacts that may be one person, found by a duplicate scan (kith.services.duplicates).

    ``contact_a`` is the smaller id of the two (one row per pair, whatever order they were found
    in). Nothing personal: ids, a score from 0 to 100 and reason codes (``same_email``,
    ``similar_name``...). ``status`` is ``pending`` or ``dismissed`` ("not a duplicate", never
    proposed again). ``checked_at`` is when a scan last confirmed a pending pair."""

    id = UUID(primary_key=True, default=new_id)
    contact_a = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False)
    contact_b = ForeignKey(references=Contact, on_delete=OnDelete.cascade, null=False)
    score = Integer()
    reasons = JSON(default=[])
    status = Varchar(length=10, default="pending")
    found_at = Timestamptz()
    checked_at = Timestamptz()
    decided_by = Varchar(length=200, null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)


class DuplicateScan(Table, tablename="kith_duplicate_scan"):
    """One duplicate scan: when it ran and what it did. The start of the last finished scan is
    where the next incremental scan picks up."""

    id = UUID(primary_key=True, default=new_id)
    mode = Varchar(length=20)
    started_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)
    contacts = Integer(default=0)
    compared = Integer(default=0)
    found = Integer(default=0)
    skipped_keys = Integer(default=0)


class ImportJob(Table, tablename="kith_import_job"):
    """One CSV import (contacts or interactions): where its file is, how far it got and what it
    counted. Rows are committed in batches together with ``rows_done`` and the counts, so a
    killed import resumes at the first row it had not committed."""

    id = UUID(primary_key=True, default=new_id)
    kind = Varchar(length=20)
    # pending, running, done or failed.
    state = Varchar(length=10, default="pending", index=True)
    file_path = Text()
    file_name = Varchar(length=300, default="")
    # SHA-256 of the file: a resumed import reads the same bytes, or refuses.
    fingerprint = Varchar(length=64, index=True)
    file_size = BigInt(default=0)
    # How the file is read and mapped (msgspec JSON of kith.services.imports.ImportOptions).
    options = Text(default="{}")
    total = Integer(default=0)
    rows_done = Integer(default=0)
    last_line = Integer(default=0)
    imported = Integer(default=0)
    invalid = Integer(default=0)
    duplicate = Integer(default=0)
    suppressed = Integer(default=0)
    error_path = Text(null=True, default=None)
    # The error file's size at the last commit: a resumed import cuts it back to this.
    error_bytes = BigInt(default=0)
    message = Text(null=True, default=None)
    # Which process runs the import, and until when that claim holds unless renewed.
    lease_owner = Varchar(length=200, null=True, default=None)
    lease_until = Timestamptz(null=True, default=None)
    created_by = ForeignKey(references=User, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)


class DuplicateBlock(Table, tablename="kith_duplicate_block"):
    """A blocking key a running full scan compares through: a pair token of the name index
    (``token``) or an email or phone blind index (``lookup``) that 2 to ``max_block`` contacts
    hold. Written at the start of the scan and deleted with it, so that the scan reads its
    candidate pairs batch by batch in SQL, each pair once."""

    id = BigSerial(primary_key=True)
    scan = ForeignKey(references=DuplicateScan, on_delete=OnDelete.cascade, null=False)
    token = BigInt(null=True, default=None)
    lookup = Varchar(length=128, null=True, default=None)


class Mail(Table, tablename="kith_mail"):
    """An outgoing email (``kith.mail``): queued with its content, sent by the event bus, and
    then kept as a sent mark without content, so that it is never sent twice."""

    # No foreign key: a queued message about a contact is erased with them by core's erasure.
    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    contact_id = UUID(null=True, default=None, index=True)
    recipient = Text(default="", secret=True)
    subject = Text(default="", secret=True)
    body = Text(default="", secret=True)
    html = Text(null=True, default=None, secret=True)
    reply_to = Varchar(length=320, null=True, default=None)
    state = Varchar(length=10, default="pending")
    attempts = Integer(default=0)
    error = Text(null=True, default=None)
    created_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)


CORE_TABLES: list[type[Table]] = [
    User,
    ApiToken,
    Contact,
    ContactPoint,
    CustomField,
    CustomFieldValue,
    Interaction,
    OutboxEvent,
    EventDelivery,
    EventSubscription,
    NameToken,
    NameIndexState,
    Merge,
    MergedContact,
    DuplicatePair,
    DuplicateScan,
    DuplicateBlock,
    Mail,
    ImportJob,
]
