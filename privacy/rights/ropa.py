"""The record of processing activities (Art. 30(1) GDPR), generated from what is declared.

Nothing here is written by hand: the personal fields come from the registry (core's and every
enabled plugin's), purposes from settings and plugins, recipients from the recipients hook,
retention from ``[privacy.retention]``, and the plugin list from the plugin manager. So the
record changes when the code or the settings change, and cannot drift from them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

import msgspec
from kith import __version__
from kith.events import utcnow
from kith.personal import PersonalField
from kith.privacy.rights import registry
from kith.privacy.rights.retention_rules import NAMED_RULES, target_kind, unknown_targets
from kith.privacy.rights.settings import Controller, rights_settings
from kith.runtime import Kith
from kith.services.fields import FieldService
from kith.subjects import Recipient
from kith.tables import CustomField, CustomFieldValue

LAWFUL_BASIS_TEXT = {
    "consent": "consent (Art. 6(1)(a))",
    "contract": "performance of a contract (Art. 6(1)(b))",
    "legal_obligation": "legal obligation (Art. 6(1)(c))",
    "vital_interests": "vital interests (Art. 6(1)(d))",
    "public_task": "public task (Art. 6(1)(e))",
    "legitimate_interests": "legitimate interests (Art. 6(1)(f))",
}

SECURITY_MEASURES = (
    "Personal fields are encrypted at rest with AES-256-GCM under a data key per data subject, "
    "bound to their table, column and row.",
    "Data keys are wrapped by a key-encryption key kept outside the database; erasing a "
    "subject destroys its data key (crypto-shredding), which also reaches backups.",
    "Email addresses and phone numbers are found through keyed blind indexes (HMAC-SHA256), "
    "never through plaintext columns.",
    "Logs name data subjects by id only; registered personal fields are dropped from them.",
    "Every API endpoint declares the role it needs (admin, agent, compliance); API tokens are "
    "stored hashed.",
    "The consent ledger and the history of subject requests are append-only, enforced by "
    "database triggers; request outcomes are certified with Ed25519 signatures.",
)


class FieldEntry(msgspec.Struct, frozen=True, kw_only=True):
    table: str
    column: str
    category: str
    purposes: tuple[str, ...]
    description: str
    searchable: bool
    retention_class: str
    retention: str | None
    declared_by: str


class PurposeEntry(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    lawful_basis: str
    lawful_basis_text: str
    declared_by: str
    categories: tuple[str, ...]
    retention: str | None


class CategoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    fields: tuple[str, ...]
    purposes: tuple[str, ...]
    retention: str | None


class RetentionEntry(msgspec.Struct, frozen=True, kw_only=True):
    target: str
    applies_to: str
    keep: str
    description: str


class PluginEntry(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str | None
    source: str


class RecordOfProcessing(msgspec.Struct, kw_only=True):
    generated_at: dt.datetime
    generator: str
    controller: Controller
    data_subjects: tuple[str, ...]
    purposes: list[PurposeEntry]
    categories: list[CategoryEntry]
    fields: list[FieldEntry]
    recipients: list[Recipient]
    transfers: list[Recipient]
    retention: list[RetentionEntry]
    security_measures: tuple[str, ...]
    plugins: list[PluginEntry]
    warnings: list[str]


async def custom_fields(kith: Kith) -> list[PersonalField]:
    """The personal custom fields admins declared, archived ones too (their values stay until
    the people are erased); none on a database not migrated yet."""
    if not await CustomField.table_exists().run():
        return []
    return [
        PersonalField(
            table=CustomFieldValue._meta.tablename,
            column=declared.name,
            category=declared.category or "custom",
            purposes=(declared.purpose or "customer_relationship",),
            description=f"Custom field {declared.name!r}"
            + (f" ({declared.label})" if declared.label else ""),
            retention=declared.retention or "contact",
            owner=declared.declared_by,
        )
        for declared in await FieldService(kith).declared(include_archived=True)
        if declared.personal
    ]


def build_record(kith: Kith, custom: Sequence[PersonalField] = ()) -> RecordOfProcessing:
    """The Art. 30 record of this installation, as it is configured right now; ``custom``
    adds the personal custom fields (:func:`custom_fields`)."""
    settings = rights_settings(kith.settings)
    retention = settings.retention_rules()
    fields = [*registry.personal_fields(kith), *custom]
    purposes = registry.purposes(kith)
    recipients = registry.recipients(kith)
    rules = {rule.target: rule for rule in retention}
    warnings: list[str] = []

    categories = {field.category for field in fields}
    classes = {field.retention for field in fields}
    warnings += unknown_targets(retention, categories, classes, set(purposes))

    def rule_for(*targets: str) -> str | None:
        for target in targets:
            if target in rules:
                return str(rules[target].keep)
        return None

    field_entries = [
        FieldEntry(
            table=field.table,
            column=field.column,
            category=field.category,
            purposes=field.purposes,
            description=field.description,
            searchable=field.searchable,
            retention_class=field.retention,
            retention=rule_for(field.retention, field.category),
            declared_by=field.owner,
        )
        for field in fields
    ]
    by_category: dict[str, list[PersonalField]] = defaultdict(list)
    by_purpose: dict[str, set[str]] = defaultdict(set)
    for field in fields:
        by_category[field.category].append(field)
        for name in field.purposes:
            by_purpose[name].add(field.category)
            if name not in purposes:
                warnings.append(
                    f"{field.key} (declared by {field.owner}) names the purpose {name!r}, "
                    "which nobody declares; add [privacy.purposes." + name + "] to kith.toml"
                )
    for recipient in recipients:
        for name in recipient.purposes:
            if name not in purposes:
                warnings.append(f"recipient {recipient.name} names the undeclared purpose {name!r}")
    category_entries = [
        CategoryEntry(
            name=name,
            fields=tuple(field.key for field in members),
            purposes=tuple(sorted({p for field in members for p in field.purposes})),
            retention=rule_for(name),
        )
        for name, members in sorted(by_category.items())
    ]
    purpose_entries = [
        PurposeEntry(
            name=info.name,
            description=info.description,
            lawful_basis=info.lawful_basis,
            lawful_basis_text=LAWFUL_BASIS_TEXT.get(info.lawful_basis, info.lawful_basis),
            declared_by=info.declared_by,
            categories=tuple(sorted(by_purpose.get(info.name, set()))),
            retention=rule_for(info.name),
        )
        for info in purposes.values()
    ]
    retention_entries = [
        RetentionEntry(
            target=rule.target,
            applies_to=target_kind(rule.target, categories, classes, set(purposes)),
            keep=str(rule.keep),
            description=rule.description or NAMED_RULES.get(rule.target, ""),
        )
        for rule in retention
    ]
    for klass in sorted(classes):
        if klass not in rules:
            warnings.append(
                f"no retention rule for the retention class {klass!r}; data in it is kept "
                "until erased (add it to [privacy.retention])"
            )
    if not settings.controller.name:
        warnings.append("no controller named; add [privacy.controller] name and contact")
    return RecordOfProcessing(
        generated_at=utcnow().replace(microsecond=0),
        generator=f"Kith {__version__}",
        controller=settings.controller,
        data_subjects=(
            "Customers, leads and other contacts of the firm, and people at organisations "
            "it deals with",
        ),
        purposes=purpose_entries,
        categories=category_entries,
        fields=field_entries,
        recipients=recipients,
        transfers=[r for r in recipients if r.country],
        retention=retention_entries,
        security_measures=SECURITY_MEASURES,
        plugins=[
            PluginEntry(name=p.name, version=p.version, source=p.source)
            for p in registry.enabled_plugins(kith)
        ],
        warnings=warnings,
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def to_markdown(record: RecordOfProcessing) -> str:
    """The record as a Markdown document for people (and for the supervisory authority)."""
    c = record.controller
    out = [
        "# Record of processing activities (Art. 30 GDPR)",
        "",
        f"Generated by {record.generator} on {record.generated_at.isoformat()} from the "
        "installation's declared personal fields, purposes, recipients, retention rules and "
        "plugins.",
        "",
        "## Controller",
        "",
        f"- Name: {c.name or '(not set: [privacy.controller] name)'}",
        f"- Contact: {c.contact or '(not set: [privacy.controller] contact)'}",
    ]
    if c.dpo:
        out.append(f"- Data protection officer: {c.dpo}")
    if c.representative:
        out.append(f"- Representative: {c.representative}")
    out += ["", "## Categories of data subjects", ""]
    out += [f"- {subject}" for subject in record.data_subjects]
    out += ["", "## Purposes and lawful bases", ""]
    out += _table(
        ["Purpose", "Description", "Lawful basis", "Data categories", "Retention", "Declared by"],
        [
            [
                p.name,
                p.description,
                p.lawful_basis_text,
                ", ".join(p.categories) or "-",
                p.retention or "-",
                p.declared_by,
            ]
            for p in record.purposes
        ],
    )
    out += ["", "## Categories of personal data", ""]
    out += _table(
        ["Category", "Fields", "Purposes", "Retention"],
        [
            [cat.name, ", ".join(cat.fields), ", ".join(cat.purposes), cat.retention or "-"]
            for cat in record.categories
        ],
    )
    out += ["", "## Personal fields", ""]
    out += _table(
        [
            "Table",
            "Column",
            "Category",
            "Purposes",
            "Searchable",
            "Retention class",
            "Retention",
            "Declared by",
            "Description",
        ],
        [
            [
                f.table,
                f.column,
                f.category,
                ", ".join(f.purposes),
                "yes" if f.searchable else "no",
                f.retention_class,
                f.retention or "-",
                f.declared_by,
                f.description,
            ]
            for f in record.fields
        ],
    )
    out += ["", "## Recipients", ""]
    if record.recipients:
        out += _table(
            ["Recipient", "Description", "Data categories", "Purposes", "Country", "Declared by"],
            [
                [
                    r.name,
                    r.description,
                    ", ".join(r.categories) or "-",
                    ", ".join(r.purposes) or "-",
                    r.country or "-",
                    r.owner,
                ]
                for r in record.recipients
            ],
        )
    else:
        out.append("No enabled plugin declares a recipient of personal data.")
    out += ["", "## Transfers to third countries", ""]
    if record.transfers:
        out += [
            f"- {r.name} ({r.country}): {r.safeguards or 'safeguards not stated'}"
            for r in record.transfers
        ]
    else:
        out.append("None declared.")
    out += ["", "## Retention", ""]
    if record.retention:
        out += _table(
            ["Rule", "Applies to", "Kept for", "Description"],
            [[r.target, r.applies_to, r.keep, r.description or "-"] for r in record.retention],
        )
    else:
        out.append("No retention rules are set ([privacy.retention] in kith.toml).")
    out += ["", "## Technical and organisational security measures", ""]
    out += [f"- {measure}" for measure in record.security_measures]
    out += ["", "## Enabled plugins", ""]
    if record.plugins:
        out += [
            f"- {p.name} {p.version or ''} ({p.source})".replace("  ", " ") for p in record.plugins
        ]
    else:
        out.append("None.")
    if record.warnings:
        out += ["", "## Gaps to close", ""]
        out += [f"- {warning}" for warning in record.warnings]
    return "\n".join(out) + "\n"


def to_json(record: RecordOfProcessing) -> bytes:
    return msgspec.json.format(msgspec.json.encode(record), indent=2) + b"\n"
