"""The shapes of contacts, interactions and tasks going in and out of services (msgspec)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

ContactKind = Literal["person", "organization"]
InteractionKind = Literal[
    "note", "call", "email", "meeting", "form_submission", "order", "task", "message"
]
Direction = Literal["inbound", "outbound"]

ShortText = Annotated[str, Meta(max_length=200)]
Tag = Annotated[str, Meta(min_length=1, max_length=50)]
Label = Annotated[str, Meta(max_length=50)]
LongText = Annotated[str, Meta(max_length=100_000)]
# A PostgreSQL INTEGER column's range: both engines store it, whatever the client sends.
Seconds = Annotated[int, Meta(ge=0, le=2**31 - 1)]

T = TypeVar("T")

FieldType = Literal[
    "text",
    "long_text",
    "number",
    "decimal",
    "date",
    "datetime",
    "boolean",
    "choice",
    "multi_choice",
    "email",
    "phone",
    "url",
]
FieldName = Annotated[
    str,
    Meta(
        pattern=r"^[a-z][a-z0-9_]{0,49}$",
        description="lower-case letters, digits and _, starting with a letter",
    ),
]
Choice = Annotated[str, Meta(min_length=1, max_length=100)]
Choices = Annotated[list[Choice], Meta(max_length=200)]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, like EUR")]
Category = Annotated[str, Meta(min_length=1, max_length=50)]
PurposeName = Annotated[str, Meta(min_length=1, max_length=100)]
RetentionClass = Annotated[
    str,
    Meta(
        pattern=r"^[a-z][a-z0-9_.-]{0,99}$",
        description="a retention class, which a rule of [privacy.retention] may name",
    ),
]
# A contact's custom field values by field name; null clears a value (in a change).
FieldValues = Annotated[dict[str, Any], Meta(max_length=200)]


class FieldCreate(Struct, forbid_unknown_fields=True, kw_only=True):
    """A custom field to declare. ``personal`` values are encrypted with the contact's key,
    exported and erased with them; ``category`` and ``purpose`` say what they are and why,
    and ``retention`` names the retention class a rule of ``[privacy.retention]`` may keep
    them for (counted from when each value was given)."""

    name: FieldName
    type: FieldType
    label: ShortText = ""
    required: bool = False
    default: Any = None
    choices: Choices = []
    currency: Currency | None = None
    personal: bool = False
    searchable: bool = False
    category: Category | None = None
    purpose: PurposeName | None = None
    retention: RetentionClass | None = None


class FieldPatch(Struct, forbid_unknown_fields=True, kw_only=True):
    """Only the fields present are changed; a ``null`` default removes it. A new ``type``
    converts the values contacts hold, or is refused when any would not convert."""

    type: FieldType | UnsetType = UNSET
    label: ShortText | UnsetType = UNSET
    required: bool | UnsetType = UNSET
    default: Any = UNSET
    choices: Choices | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    searchable: bool | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    purpose: PurposeName | UnsetType = UNSET
    retention: RetentionClass | UnsetType | None = UNSET


class FieldOut(Struct, kw_only=True):
    id: uuid.UUID
    name: str
    label: str
    type: FieldType
    required: bool
    default: Any
    choices: list[str]
    currency: str | None
    personal: bool
    searchable: bool
    category: str | None
    purpose: str | None
    retention: str | None
    archived: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    # ``admin`` (the API or the command line), ``kith.toml`` or the plugin that declared it.
    declared_by: str = "admin"


class PurgeOutcome(Struct, kw_only=True):
    """A purged custom field: its name, and how many values contacts held of it."""

    field: str
    values_deleted: int


class EmailIn(Struct, forbid_unknown_fields=True):
    address: Annotated[str, Meta(max_length=320)]
    label: Label = ""
    primary: bool = False


class PhoneIn(Struct, forbid_unknown_fields=True):
    number: Annotated[str, Meta(max_length=40)]
    label: Label = ""
    primary: bool = False


class ContactCreate(Struct, forbid_unknown_fields=True, kw_only=True):
    kind: ContactKind = "person"
    name: ShortText | None = None
    given_name: ShortText | None = None
    family_name: ShortText | None = None
    organization_id: uuid.UUID | None = None
    emails: Annotated[list[EmailIn], Meta(max_length=20)] = []
    phones: Annotated[list[PhoneIn], Meta(max_length=20)] = []
    tags: Annotated[list[Tag], Meta(max_length=50)] = []
    owner_id: uuid.UUID | None = None
    source: Annotated[str, Meta(max_length=100)] = "api"
    fields: FieldValues = {}
    # Set by an operator who knowingly re-creates a person who asked to be erased (the
    # privacy plugin's suppression list refuses them otherwise); the reason is recorded.
    override_suppression_reason: Annotated[str, Meta(min_length=1, max_length=500)] | None = None


class ContactPatch(Struct, forbid_unknown_fields=True, kw_only=True):
    """Only the fields present are changed; ``null`` clears an optional field."""

    kind: ContactKind | UnsetType = UNSET
    name: ShortText | UnsetType = UNSET
    given_name: ShortText | UnsetType | None = UNSET
    family_name: ShortText | UnsetType | None = UNSET
    organization_id: uuid.UUID | UnsetType | None = UNSET
    emails: Annotated[list[EmailIn], Meta(max_length=20)] | UnsetType = UNSET
    phones: Annotated[list[PhoneIn], Meta(max_length=20)] | UnsetType = UNSET
    tags: Annotated[list[Tag], Meta(max_length=50)] | UnsetType = UNSET
    owner_id: uuid.UUID | UnsetType | None = UNSET
    archived: bool | UnsetType = UNSET
    fields: FieldValues | UnsetType = UNSET
    # As on ContactCreate: set by an operator who knowingly adds an email or phone of a person
    # who asked to be erased to this contact; the reason is recorded. Not a field of the
    # contact, so not among the changed fields (see CONTACT_PATCH_DIRECTIVES).
    override_suppression_reason: (
        Annotated[str, Meta(min_length=1, max_length=500)] | UnsetType | None
    ) = UNSET


# Members of ContactPatch that steer the change rather than change a field of the contact.
CONTACT_PATCH_DIRECTIVES = frozenset({"override_suppression_reason"})


class EmailOut(Struct):
    address: str
    label: str
    primary: bool


class PhoneOut(Struct):
    number: str
    label: str
    primary: bool


class ContactOut(Struct, kw_only=True):
    id: uuid.UUID
    kind: ContactKind
    name: str
    given_name: str | None
    family_name: str | None
    organization_id: uuid.UUID | None
    emails: list[EmailOut]
    phones: list[PhoneOut]
    tags: list[str]
    owner_id: uuid.UUID | None
    source: str
    created_at: dt.datetime
    updated_at: dt.datetime
    archived: bool
    # Custom field values by field name (fields without a value are left out).
    fields: dict[str, Any] = {}
    # The value tier from its orders ([tiers]), null when it meets none.
    tier: str | None = None


class InteractionCreate(Struct, forbid_unknown_fields=True, kw_only=True):
    kind: InteractionKind
    direction: Direction | None = None
    occurred_at: dt.datetime | None = None
    summary: Annotated[str, Meta(max_length=500)] = ""
    body: LongText = ""
    channel: Annotated[str, Meta(max_length=50)] | None = None
    duration_s: Seconds | None = None
    amount: decimal.Decimal | None = None
    source: Annotated[str, Meta(min_length=1, max_length=100)] = "api"
    external_id: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    due_at: dt.datetime | None = None
    done_at: dt.datetime | None = None
    assignee_id: uuid.UUID | None = None


class InteractionPatch(Struct, forbid_unknown_fields=True, kw_only=True):
    direction: Direction | UnsetType | None = UNSET
    occurred_at: dt.datetime | UnsetType = UNSET
    summary: Annotated[str, Meta(max_length=500)] | UnsetType = UNSET
    body: LongText | UnsetType = UNSET
    channel: Annotated[str, Meta(max_length=50)] | UnsetType | None = UNSET
    duration_s: Seconds | UnsetType | None = UNSET
    amount: decimal.Decimal | UnsetType | None = UNSET
    due_at: dt.datetime | UnsetType | None = UNSET
    done_at: dt.datetime | UnsetType | None = UNSET
    assignee_id: uuid.UUID | UnsetType | None = UNSET


class InteractionOut(Struct, kw_only=True):
    id: uuid.UUID
    contact_id: uuid.UUID
    kind: InteractionKind
    direction: Direction | None
    occurred_at: dt.datetime
    summary: str
    body: str
    channel: str | None
    duration_s: int | None
    amount: decimal.Decimal | None
    source: str
    external_id: str | None
    due_at: dt.datetime | None
    done_at: dt.datetime | None
    assignee_id: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


DuplicateReason = Literal[
    "same_email", "same_phone", "similar_name", "same_organization", "same_city"
]
DuplicateStatus = Literal["pending", "dismissed"]


class DuplicateContact(Struct, kw_only=True):
    """One side of a duplicate pair: enough to tell which contact it is."""

    id: uuid.UUID
    kind: ContactKind
    name: str


class DuplicatePairOut(Struct, kw_only=True):
    """Two contacts that may be one: ``score`` from 0 to 100, and what they have in common."""

    id: uuid.UUID
    contact_a: DuplicateContact
    contact_b: DuplicateContact
    score: int
    reasons: list[DuplicateReason]
    status: DuplicateStatus
    found_at: dt.datetime
    decided_at: dt.datetime | None = None
    decided_by: str | None = None


class DuplicateScanOut(Struct, kw_only=True):
    """What a duplicate scan did. ``contacts``: contacts checked (all, or those new or changed
    since the last scan); ``compared``: candidate pairs scored; ``found``: pairs proposed, of
    which ``new`` were not proposed before; ``skipped_keys``: blocking keys held by too many
    contacts to compare through; ``name_index``: whether names could be compared (the name
    search index is on and complete)."""

    mode: Literal["full", "incremental"]
    contacts: int
    compared: int
    found: int
    new: int
    skipped_keys: int
    name_index: bool
    started_at: dt.datetime
    finished_at: dt.datetime


class Page(Struct, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None


def unset_to_dict(patch: Struct) -> dict[str, object]:
    """The fields a patch actually sets."""
    return {
        name: value
        for name in patch.__struct_fields__
        if (value := getattr(patch, name)) is not msgspec.UNSET
    }


# At most this many contacts merge into one at a time (each is read and rewritten whole).
MAX_MERGE_LOSERS = 20
MergeState = Literal["done", "undone", "closed"]


class MergeIn(Struct, forbid_unknown_fields=True, kw_only=True):
    """Contacts to merge into the one named (the survivor), and where they differ, whose value
    wins: ``choices`` maps ``name``, ``given_name``, ``family_name``, ``owner``,
    ``organization``, ``primary_email``, ``primary_phone`` or ``fields.<name>`` to the id of
    the contact whose value the survivor keeps. Without a choice the survivor's value stays,
    or, where it has none, the first loser's that has one."""

    losers: Annotated[list[uuid.UUID], Meta(min_length=1, max_length=MAX_MERGE_LOSERS)]
    choices: Annotated[dict[str, uuid.UUID], Meta(max_length=250)] = msgspec.field(
        default_factory=dict
    )


class MergeOut(Struct, kw_only=True):
    """A merge: who was merged into whom, by whom and when, and until when it can be undone.
    ``state`` is ``done`` (undoable while ``can_undo``), ``undone``, or ``closed`` (the undo
    window passed and what undoing needed is gone)."""

    id: uuid.UUID
    contact_id: uuid.UUID
    losers: list[uuid.UUID]
    actor: str
    merged_at: dt.datetime
    undo_until: dt.datetime
    state: MergeState
    can_undo: bool
    undone_at: dt.datetime | None = None
    undone_by: str | None = None
