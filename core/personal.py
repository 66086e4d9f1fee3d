"""The registry of personal data: every personal field is declared once, here or by a plugin.

Encryption, blind indexes, export, erasure, log redaction and the record of processing are all
driven from these declarations.
"""

from __future__ import annotations

import msgspec
from kith.subjects import Purpose

# The table whose rows are the data subjects: a personal row names its subject by a foreign key
# to it (or, for rows that must outlive the contact, a column of its own).
SUBJECT_TABLE = "kith_contact"


class PersonalField(msgspec.Struct, frozen=True, kw_only=True):
    """One column that holds personal data about a data subject (a contact).

    ``searchable`` fields get a blind index for exact lookup; ``retention`` names a retention
    class (``contact``, ``call_recordings``...) that retention rules refer to.
    """

    table: str
    column: str
    category: str
    purposes: tuple[str, ...]
    description: str = ""
    searchable: bool = False
    retention: str = "contact"
    owner: str = "kith"

    @property
    def key(self) -> str:
        return f"{self.table}.{self.column}"


CORE_PERSONAL_FIELDS: tuple[PersonalField, ...] = (
    PersonalField(
        table=SUBJECT_TABLE,
        column="display_name",
        category="identity",
        purposes=("customer_relationship",),
        description="The contact's name as shown",
    ),
    PersonalField(
        table=SUBJECT_TABLE,
        column="given_name",
        category="identity",
        purposes=("customer_relationship",),
        description="Given name",
    ),
    PersonalField(
        table=SUBJECT_TABLE,
        column="family_name",
        category="identity",
        purposes=("customer_relationship",),
        description="Family name",
    ),
    PersonalField(
        table="kith_contact_point",
        column="value",
        category="contact_details",
        purposes=("customer_relationship",),
        searchable=True,
        description="Email addresses and phone numbers (normalised)",
    ),
    PersonalField(
        table="kith_custom_field_value",
        column="protected",
        category="custom",
        purposes=("customer_relationship",),
        # Only the values of fields declared searchable get a blind index (kind and lookup).
        searchable=True,
        description="Values of the custom fields an admin declared personal",
    ),
    PersonalField(
        table="kith_interaction",
        column="summary",
        category="communications",
        purposes=("customer_relationship",),
        description="Short summary of a call, email, meeting, note or task",
    ),
    PersonalField(
        table="kith_interaction",
        column="body",
        category="communications",
        purposes=("customer_relationship",),
        description="Free text of an interaction (note text, email body...)",
    ),
)


CORE_PURPOSES: tuple[Purpose, ...] = (
    Purpose(
        name="customer_relationship",
        description="Keeping track of customers, leads and their conversations with the firm",
        lawful_basis="legitimate_interests",
    ),
)
