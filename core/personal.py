"""The registry of personal data: every personal field is declared once, here or by a plugin.

Encryption, blind indexes, export, erasure, log redaction and the record of processing are all
driven from these declarations.
"""

from __future__ import annotations

import msgspec
from kith.subjects import Purpose
from piccolo.columns import UUID, Column, ForeignKey
from piccolo.table import Table

# The table whose rows are the data subjects: a personal row names its subject by a foreign key
# to it (or, for rows that must outlive the contact, a column of its own).
SUBJECT_TABLE = "kith_contact"


class PersonalField(msgspec.Struct, frozen=True, kw_only=True):
    """One column that holds personal data about a data subject (a contact).

    ``searchable`` fields get a blind index for exact lookup; ``name_search`` fields are found
    by a name search (``q=``) through a keyed index of their words' prefixes
    (:mod:`kith.name_index`); ``retention`` names a retention class (``contact``,
    ``call_recordings``...) that retention rules refer to.
    """

    table: str
    column: str
    category: str
    purposes: tuple[str, ...]
    description: str = ""
    searchable: bool = False
    name_search: bool = False
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
        name_search=True,
        description="The contact's name as shown",
    ),
    PersonalField(
        table=SUBJECT_TABLE,
        column="given_name",
        category="identity",
        purposes=("customer_relationship",),
        name_search=True,
        description="Given name",
    ),
    PersonalField(
        table=SUBJECT_TABLE,
        column="family_name",
        category="identity",
        purposes=("customer_relationship",),
        name_search=True,
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
    PersonalField(
        table="kith_merge",
        column="snapshot",
        category="merge_records",
        purposes=("customer_relationship",),
        retention="merge_undo",
        description="What undoing a merge of duplicate contacts needs: the merged contacts as "
        "they were (kept until the merge's undo window closes)",
    ),
)


CORE_PERSONAL_FIELDS += tuple(
    PersonalField(
        table="kith_mail",
        column=column,
        category="communications",
        purposes=("customer_relationship",),
        description=f"Outgoing email waiting to be sent: its {column} (wiped once sent)",
    )
    for column in ("recipient", "subject", "body", "html")
)

CORE_PURPOSES: tuple[Purpose, ...] = (
    Purpose(
        name="customer_relationship",
        description="Keeping track of customers, leads and their conversations with the firm",
        lawful_basis="legitimate_interests",
    ),
)


def column_named(table: type[Table], name: str) -> Column | None:
    """The column of ``table`` called ``name`` (in Python or in the database)."""
    for column in table._meta.columns:
        if name in (column._meta.name, column._meta.db_column_name):
            return column
    return None


def subject_column(table: type[Table]) -> str | None:
    """The column naming the data subject of a row, or None when it cannot be told."""
    if table._meta.tablename == SUBJECT_TABLE:
        return "id"
    # A table with no foreign key to contacts (a subject request outlives its contact) names
    # its subject column itself.
    declared = getattr(table, "kith_subject_column", None)
    if isinstance(declared, str):
        return declared
    links = [
        column._meta.name
        for column in table._meta.foreign_key_columns
        if isinstance(column, ForeignKey)
        and column._foreign_key_meta.resolved_references._meta.tablename == SUBJECT_TABLE
    ]
    if len(links) == 1:
        return links[0]
    if links:
        return "contact" if "contact" in links else None
    # A plugin's table that names the contact without a foreign key to core's table.
    named = column_named(table, "contact_id")
    return "contact_id" if isinstance(named, UUID) else None
