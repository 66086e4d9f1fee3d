"""Kith: a self-hostable, plugin-based CRM with privacy engineering built in.

This module is Kith's public API: what a plugin (Kith's own included) builds on. Everything a
plugin needs is importable from here, from :mod:`kith.http` (routes), :mod:`kith.console`
(commands) and :mod:`kith.testing` (the pytest fixtures); the other modules are Kith's inside
and may change without notice.
"""

from __future__ import annotations

__version__ = "0.1.0"

from kith.actor import SYSTEM, Actor, Role
from kith.cards import CardSection
from kith.errors import (
    Conflict,
    InvalidInput,
    KithError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from kith.events import Event, EventType, utcnow
from kith.hookspecs import hookimpl, may_be_async
from kith.ids import new_id
from kith.logs import add_processor, get_logger
from kith.mail import Mailer, MailMessage, MailSettings, MailTransport
from kith.navigation import NavLink
from kith.normalize import normalize_email, normalize_phone
from kith.notices import UserNotice
from kith.pagination import MAX_LIMIT, check_limit, decode_cursor, encode_cursor
from kith.personal import SUBJECT_TABLE, PersonalField
from kith.protection import FieldProtector, KeyProvider, protect_bytes, reveal_bytes
from kith.runtime import Kith
from kith.schemas import (
    CONTACT_PATCH_DIRECTIVES,
    ContactCreate,
    ContactKind,
    ContactOut,
    ContactPatch,
    EmailIn,
    FieldCreate,
    FieldOut,
    FieldPatch,
    FieldType,
    InteractionCreate,
    InteractionKind,
    InteractionOut,
    InteractionPatch,
    Page,
    PhoneIn,
    unset_to_dict,
)
from kith.services.contacts import ContactService
from kith.services.fields import FieldService
from kith.services.intake import ContactIntake, Intake
from kith.services.interactions import InteractionService
from kith.services.users import UserService
from kith.settings import Settings, SettingsError, load_settings
from kith.storage.prepared import Prepared, run_deferred
from kith.subject_checks import (
    ProcessingRefused,
    change_consent,
    check_processing,
    processing_refusals,
    record_access,
    record_consent,
    subject_consents,
)
from kith.subject_moves import move_subject_rows
from kith.subjects import (
    LAWFUL_BASES,
    Access,
    ConsentGiven,
    ConsentLine,
    ConsentReceipt,
    ErasureMethod,
    ErasureOutcome,
    ExportSection,
    LawfulBasis,
    Purpose,
    Recipient,
    RecipientAction,
    RecipientNotice,
    Row,
    RowPages,
    SubjectHold,
    Subscriber,
)

INTERACTION_KINDS: tuple[str, ...] = InteractionKind.__args__  # type: ignore[attr-defined]

__all__ = [
    "CONTACT_PATCH_DIRECTIVES",
    "INTERACTION_KINDS",
    "LAWFUL_BASES",
    "MAX_LIMIT",
    "SUBJECT_TABLE",
    "SYSTEM",
    "Access",
    "Actor",
    "CardSection",
    "Conflict",
    "ConsentGiven",
    "ConsentLine",
    "ConsentReceipt",
    "ContactCreate",
    "ContactIntake",
    "ContactKind",
    "ContactOut",
    "ContactPatch",
    "ContactService",
    "EmailIn",
    "ErasureMethod",
    "ErasureOutcome",
    "Event",
    "EventType",
    "ExportSection",
    "FieldCreate",
    "FieldOut",
    "FieldPatch",
    "FieldProtector",
    "FieldService",
    "FieldType",
    "Intake",
    "InteractionCreate",
    "InteractionKind",
    "InteractionOut",
    "InteractionPatch",
    "InteractionService",
    "InvalidInput",
    "KeyProvider",
    "Kith",
    "KithError",
    "LawfulBasis",
    "MailMessage",
    "MailSettings",
    "MailTransport",
    "Mailer",
    "NavLink",
    "NotAuthenticated",
    "NotFound",
    "Page",
    "PermissionDenied",
    "PersonalField",
    "PhoneIn",
    "Prepared",
    "ProcessingRefused",
    "Purpose",
    "Recipient",
    "RecipientAction",
    "RecipientNotice",
    "Role",
    "Row",
    "RowPages",
    "Settings",
    "SettingsError",
    "SubjectHold",
    "Subscriber",
    "UserNotice",
    "UserService",
    "__version__",
    "add_processor",
    "change_consent",
    "check_limit",
    "check_processing",
    "decode_cursor",
    "encode_cursor",
    "get_logger",
    "hookimpl",
    "load_settings",
    "may_be_async",
    "move_subject_rows",
    "new_id",
    "normalize_email",
    "normalize_phone",
    "processing_refusals",
    "protect_bytes",
    "record_access",
    "record_consent",
    "reveal_bytes",
    "run_deferred",
    "subject_consents",
    "unset_to_dict",
    "utcnow",
]
