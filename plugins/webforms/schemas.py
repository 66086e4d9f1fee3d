"""What goes in and out of the web forms plugin: form definitions, settings, statistics."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

FormId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
FieldName = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,62}$")]
Text200 = Annotated[str, Meta(max_length=200)]
Url = Annotated[str, Meta(min_length=1, max_length=2000)]
Origin = Annotated[str, Meta(pattern=r"^https?://[^/\s]+$", max_length=300)]
NoticeText = Annotated[str, Meta(min_length=1, max_length=20_000)]
FieldType = Literal["text", "email", "phone", "textarea"]
# Where a field's value goes: contact fields, a custom field ("custom:<name>") or the message.
MAPPINGS = ("name", "given_name", "family_name", "email", "phone", "message")
_CUSTOM = re.compile(r"^custom:[a-z][a-z0-9_]{0,62}$")
# Query and body keys of attribution, stored with the submission.
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CLICK_KEYS = ("gclid", "yclid")
# Names the plugin reads itself; a form field may not use them.
RESERVED = frozenset({*UTM_KEYS, *CLICK_KEYS, "page_url", "referrer", "website", "_kith_t"})
HONEYPOT = "website"
TOKEN_FIELD = "_kith_t"


class FormField(Struct, forbid_unknown_fields=True, kw_only=True):
    """One input of a form and where its value goes: ``name``, ``given_name``,
    ``family_name``, ``email``, ``phone``, ``message`` (the submission's text) or
    ``custom:<field>`` (a declared custom field of contacts)."""

    name: FieldName
    maps_to: Annotated[str, Meta(max_length=100)]
    label: Text200 = ""
    type: FieldType = "text"
    required: bool = False

    def __post_init__(self) -> None:
        if self.maps_to not in MAPPINGS and not _CUSTOM.match(self.maps_to):
            raise ValueError(
                f"field {self.name!r}: maps_to must be one of {', '.join(MAPPINGS)} "
                "or custom:<field name>"
            )
        if self.name in RESERVED:
            raise ValueError(f"field {self.name!r}: that name is reserved")


class FormPurpose(Struct, forbid_unknown_fields=True, kw_only=True):
    """A consent box: the purpose it is for, the notice text shown beside it and its version
    (yours, shown with the text). ``required``: the form is refused unless it is ticked."""

    name: Annotated[str, Meta(min_length=1, max_length=80)]
    notice: NoticeText
    version: Annotated[str, Meta(min_length=1, max_length=40)] = "1"
    required: bool = False


class FormTask(Struct, forbid_unknown_fields=True, kw_only=True):
    """A follow-up task on the contact's timeline for each submission."""

    summary: Annotated[str, Meta(min_length=1, max_length=500)]
    due_minutes: Annotated[int, Meta(ge=0, le=60 * 24 * 365)] = 60


class FormCreate(Struct, forbid_unknown_fields=True, kw_only=True):
    """A form to create (API, ``kith forms add`` and ``[[webforms.forms]]``)."""

    id: FormId
    title: Annotated[str, Meta(min_length=1, max_length=200)]
    fields: Annotated[list[FormField], Meta(min_length=1, max_length=50)]
    purposes: Annotated[list[FormPurpose], Meta(max_length=10)] = []
    allowed_origins: Annotated[list[Origin], Meta(max_length=50)] = []
    # Where a browser goes after a successful submission; without one it sees a thank-you page
    # (and scripts get JSON).
    success_redirect: Url | None = None
    success_message: Annotated[str, Meta(max_length=500)] = "Thank you, we will be in touch."
    # An address told of each submission (an owner or a colleague).
    notify_email: Annotated[str, Meta(max_length=320)] | None = None
    double_opt_in: bool = False
    task: FormTask | None = None
    source: Annotated[str, Meta(min_length=1, max_length=100)] = "webform"

    def __post_init__(self) -> None:
        names = [field.name for field in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("two fields have the same name")
        if not any(field.maps_to in ("email", "phone") for field in self.fields):
            raise ValueError("a form needs a field mapped to email or phone")
        purposes = [purpose.name for purpose in self.purposes]
        if len(set(purposes)) != len(purposes):
            raise ValueError("two consent boxes have the same purpose")


class FormOut(FormCreate, kw_only=True):
    active: bool
    origin: Literal["api", "settings"]
    created_at: dt.datetime
    updated_at: dt.datetime


class WebformSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``[webforms]`` section of ``kith.toml``."""

    # A browser may post this long after the form was shown at the earliest (bots post at once)
    # and at the latest.
    min_fill_seconds: Annotated[float, Meta(ge=0, le=600)] = 3.0
    max_fill_seconds: Annotated[float, Meta(gt=0, le=7 * 86400)] = 86400.0
    # Submissions per minute from one client address to one form, and to one form in all.
    rate_per_client: Annotated[int, Meta(ge=1, le=1_000_000)] = 10
    rate_per_form: Annotated[int, Meta(ge=1, le=1_000_000)] = 600
    # How long a double opt-in link works; the consent it would confirm expires with it.
    opt_in_hours: Annotated[float, Meta(gt=0, le=24 * 90)] = 48.0
    forms: list[FormCreate] = []


class FormStats(Struct, kw_only=True):
    """Submissions of one form, and counts by lead source."""

    form_id: str
    submissions: int
    new_contacts: int
    dropped_suppressed: int
    by_source: dict[str, int]
    by_medium: dict[str, int]
    by_campaign: dict[str, int]


class SubmissionOut(Struct, kw_only=True):
    """What a script is told after a submission."""

    ok: bool
    message: str
    redirect: str | None = None
    confirm_by_email: bool = False


def form_from(value: object) -> FormCreate:
    return msgspec.convert(value, FormCreate)
