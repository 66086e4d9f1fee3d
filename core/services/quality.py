"""The data quality report: contacts nobody can reach, values that will not work, contacts
nobody has touched for months, and required custom fields left empty. Counts with a few
example contact ids; never a value."""

from __future__ import annotations

import datetime as dt
import functools
import operator
import uuid
from typing import Annotated, Any

import email_validator
import msgspec
import phonenumbers
from kith.actor import SYSTEM, Actor
from kith.errors import InvalidInput
from kith.events import utcnow
from kith.runtime import Kith
from kith.services.contacts import POINT_TABLE, ContactService, preload_keys
from kith.services.fields import VALUE_TABLE, FieldService
from kith.settings import Settings
from kith.subject_checks import refused_among
from kith.tables import Contact, ContactPoint, CustomFieldValue, DuplicatePair, Interaction
from rapidfuzz.distance import DamerauLevenshtein

SECTION = "quality"
# Contact ids shown per finding: enough to open a few and see what is wrong.
EXAMPLES = 5
# Contacts whose emails and phones are read (and checked) at a time.
PAGE = 500
# The access the audit log records for each contact whose emails, phones or personal custom
# field values the report read to check them.
CHECK_ACTION = "quality_check"
# What plugins are asked before a contact's values are read to check them.
CHECK_ACTIVITY = "contact.quality_check"
# Domains that never receive mail (RFC 2606, RFC 6761).
RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org"})
RESERVED_TOP_LEVEL = frozenset({"example", "test", "invalid", "localhost", "local"})
# Mail domains many people have: one typing slip away from one of these is most likely a slip.
# Only long names: among short ones, real domains are that close to each other.
COMMON_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "icloud.com",
        "yandex.ru",
        "protonmail.com",
        "t-online.de",
        "btinternet.com",
    }
)

KINDS = ("person", "organization")
MAX_MONTHS = 600
Months = Annotated[int, msgspec.Meta(ge=1, le=MAX_MONTHS)]


class QualitySettings(msgspec.Struct, frozen=True, kw_only=True):
    """The ``[quality]`` table of ``kith.toml`` (``KITH_QUALITY_<KEY>`` overrides)."""

    stale_months: Months = 12
    """A contact with no interaction and no change for this many months is stale."""

    @classmethod
    def from_settings(cls, settings: Settings) -> QualitySettings:
        return settings.parsed(SECTION, cls)


class Finding(msgspec.Struct, kw_only=True):
    """One kind of problem: how many contacts have it, and a few of them."""

    name: str
    count: int
    examples: list[uuid.UUID]


class QualitySection(msgspec.Struct, kw_only=True):
    """One section of the report: contacts with any of its problems (``count``, a few
    ``examples``) and each problem on its own (``findings``)."""

    name: str
    description: str
    count: int
    examples: list[uuid.UUID]
    findings: list[Finding] = []


class QualityReport(msgspec.Struct, kw_only=True):
    generated_at: dt.datetime
    # Archived contacts are left out of every section.
    contacts: int
    stale_months: int
    sections: list[QualitySection]


class _Tally:
    """Contacts per finding, with the first few of each, added a page of contacts at a time
    (a contact is in one page only, so counting each page's distinct contacts counts each
    contact once, holding no more than a page's ids)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[uuid.UUID]] = {}
        self.contacts = 0
        self.first: list[uuid.UUID] = []

    def add_page(self, found: list[tuple[uuid.UUID, str]]) -> None:
        for finding, contact_id in sorted({(f, c) for c, f in found}):
            self.counts[finding] = self.counts.get(finding, 0) + 1
            shown = self.examples.setdefault(finding, [])
            if len(shown) < EXAMPLES:
                shown.append(contact_id)
        contacts = sorted({contact_id for contact_id, _ in found})
        self.contacts += len(contacts)
        self.first += contacts[: EXAMPLES - len(self.first)]

    def findings(self) -> list[Finding]:
        return [
            Finding(name=name, count=self.counts[name], examples=self.examples[name])
            for name in sorted(self.counts)
        ]


def email_problem(address: str) -> str | None:
    """Why mail to a stored address would not arrive, as far as can be told without the
    network: ``email_invalid``, ``email_reserved_domain`` or ``email_domain_typo``."""
    try:
        email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError:
        return "email_invalid"
    domain = address.rpartition("@")[2].lower()
    if domain in RESERVED_DOMAINS or domain.rpartition(".")[2] in RESERVED_TOP_LEVEL:
        return "email_reserved_domain"
    if domain not in COMMON_MAIL_DOMAINS and any(
        DamerauLevenshtein.distance(domain, common, score_cutoff=1) == 1
        for common in COMMON_MAIL_DOMAINS
    ):
        return "email_domain_typo"
    return None


def phone_problem(number: str) -> str | None:
    """``phone_invalid`` for a number that is possible (it was accepted) but that no
    numbering plan assigns, going by the phone number metadata Kith has."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return "phone_invalid"
    return None if phonenumbers.is_valid_number(parsed) else "phone_invalid"


class QualityService:
    """Builds the data quality report. Checking emails and phones (and custom fields that
    hold them) means reading them: each contact whose values were read is in the audit log
    (``quality_check``)."""

    def __init__(
        self, kith: Kith, channel: str | None = None, context: dict[str, Any] | None = None
    ) -> None:
        self.kith = kith
        self.contacts = ContactService(kith, channel, context)

    async def report(self, stale_months: int | None = None, actor: Actor = SYSTEM) -> QualityReport:
        if stale_months is None:
            stale_months = QualitySettings.from_settings(self.kith.settings).stale_months
        elif not 1 <= stale_months <= MAX_MONTHS:
            raise InvalidInput(
                f"stale_months must be 1 to {MAX_MONTHS}, got {stale_months}", field="stale_months"
            )
        now = utcnow()
        live = Contact.archived == False  # noqa: E712 - piccolo builds SQL from this
        return QualityReport(
            generated_at=now,
            contacts=await Contact.count().where(live),
            stale_months=stale_months,
            sections=[
                await self._unreachable(),
                await self._invalid_values(actor),
                await self._stale(stale_months, now),
                await self._required_empty(),
                await self._pending_duplicates(),
            ],
        )

    async def _unreachable(self) -> QualitySection:
        reachable = ContactPoint.select(ContactPoint.contact)
        return await _counted(
            "unreachable",
            "Contacts with no email address and no phone number",
            [(kind, (Contact.kind == kind) & Contact.id.not_in(reachable)) for kind in KINDS],
        )

    async def _stale(self, months: int, now: dt.datetime) -> QualitySection:
        cutoff = _months_before(now, months)
        recent = Interaction.select(Interaction.contact).where(
            (Interaction.occurred_at >= cutoff) | (Interaction.updated_at >= cutoff)
        )
        untouched = (Contact.updated_at < cutoff) & Contact.id.not_in(recent)
        return await _counted(
            "stale",
            f"Contacts with no interaction and no change for {months} months",
            [(f"untouched_{months}_months", untouched)],
        )

    async def _required_empty(self) -> QualitySection:
        empty = []
        for declared in await FieldService(self.kith).declared():
            if declared.required:
                holding = CustomFieldValue.select(CustomFieldValue.contact).where(
                    CustomFieldValue.field == declared.id
                )
                empty.append((declared.name, Contact.id.not_in(holding)))
        return await _counted(
            "required_fields_empty",
            "Contacts without a value of a required custom field (they existed before it "
            "became required); one finding per field",
            empty,
        )

    async def _pending_duplicates(self) -> QualitySection:
        pending = DuplicatePair.status == "pending"
        in_a_pair = Contact.id.is_in(
            DuplicatePair.select(DuplicatePair.contact_a).where(pending)
        ) | Contact.id.is_in(DuplicatePair.select(DuplicatePair.contact_b).where(pending))
        return await _counted(
            "duplicates",
            "Contacts in a pair the last duplicate scan proposed and nobody has merged or "
            "dismissed yet (see kith contacts duplicates)",
            [("pending_duplicate_pair", in_a_pair)],
        )

    async def _invalid_values(self, actor: Actor) -> QualitySection:
        checked_fields = {
            declared.id: declared
            for declared in await FieldService(self.kith).declared()
            if declared.type in ("email", "phone")
        }
        tally = _Tally()
        after: uuid.UUID | None = None
        while True:
            query = (
                Contact.select(Contact.id)
                .where(Contact.archived == False)  # noqa: E712 - piccolo builds SQL from this
                .order_by(Contact.id)
                .limit(PAGE)
            )
            if after is not None:
                query = query.where(Contact.id > after)
            ids = [row["id"] for row in await query.run()]
            if not ids:
                break
            after = ids[-1]
            # Restricted contacts' data may only be stored: not read to check it.
            refused = await refused_among(self.kith, ids, CHECK_ACTIVITY)
            ids = [contact_id for contact_id in ids if contact_id not in refused]
            await preload_keys(self.kith, ids)
            read: set[uuid.UUID] = set()
            found = await self._point_problems(ids, read)
            if checked_fields:
                found += await self._field_problems(ids, checked_fields, read)
            tally.add_page(found)
            await self.contacts.report_each(sorted(read), CHECK_ACTION, actor)
        return _section(
            "invalid_values",
            "Contacts with an email address or phone number (their own, or in a custom "
            "field) that looks unusable: not valid, a reserved domain, or a likely typo of a "
            "common mail domain",
            tally,
        )

    async def _point_problems(
        self, ids: list[uuid.UUID], read: set[uuid.UUID]
    ) -> list[tuple[uuid.UUID, str]]:
        rows = await ContactPoint.select(
            ContactPoint.id, ContactPoint.contact, ContactPoint.kind, ContactPoint.value
        ).where(ContactPoint.contact.is_in(ids))
        found = []
        for row in rows:
            value = (
                await self.kith.protector.reveal(
                    row["contact"], POINT_TABLE, row["id"], {"value": row["value"]}
                )
            )["value"]
            read.add(row["contact"])
            problem = _problem(row["kind"], value)
            if problem is not None:
                found.append((row["contact"], problem))
        return found

    async def _field_problems(
        self, ids: list[uuid.UUID], fields: dict[uuid.UUID, Any], read: set[uuid.UUID]
    ) -> list[tuple[uuid.UUID, str]]:
        rows = await CustomFieldValue.select(
            CustomFieldValue.id,
            CustomFieldValue.contact,
            CustomFieldValue.field,
            CustomFieldValue.value,
            CustomFieldValue.protected,
        ).where(CustomFieldValue.contact.is_in(ids) & CustomFieldValue.field.is_in(list(fields)))
        found = []
        for row in rows:
            value = row["value"]
            if row["protected"] is not None:
                value = (
                    await self.kith.protector.reveal(
                        row["contact"], VALUE_TABLE, row["id"], {"protected": row["protected"]}
                    )
                )["protected"]
                read.add(row["contact"])
            declared = fields[row["field"]]
            problem = _problem(declared.type, value)
            if problem is not None:
                found.append((row["contact"], f"field.{declared.name}: {problem}"))
        return found


def _problem(kind: str, value: str | None) -> str | None:
    if not value:
        # Unreadable: the person was erased and only a nameless record is kept.
        return None
    return email_problem(value) if kind == "email" else phone_problem(value)


async def _count_and_examples(where: Any) -> tuple[int, list[uuid.UUID]]:
    where = (Contact.archived == False) & where  # noqa: E712 - piccolo builds SQL from this
    count = await Contact.count().where(where)
    if not count:
        return 0, []
    rows = await Contact.select(Contact.id).where(where).order_by(Contact.id).limit(EXAMPLES)
    return count, [row["id"] for row in rows]


async def _counted(name: str, description: str, findings: list[tuple[str, Any]]) -> QualitySection:
    """A section counted in the database: one finding per (name, condition on contacts),
    and the contacts that meet any of the conditions, each once."""
    found = []
    for finding, where in findings:
        count, examples = await _count_and_examples(where)
        if count:
            found.append(Finding(name=finding, count=count, examples=examples))
    count, examples = 0, []
    if found:
        count, examples = await _count_and_examples(
            functools.reduce(operator.or_, (where for _, where in findings))
        )
    return QualitySection(
        name=name, description=description, count=count, examples=examples, findings=found
    )


def _section(name: str, description: str, tally: _Tally) -> QualitySection:
    return QualitySection(
        name=name,
        description=description,
        count=tally.contacts,
        examples=tally.first,
        findings=tally.findings(),
    )


def _months_before(now: dt.datetime, months: int) -> dt.datetime:
    """The same day ``months`` calendar months earlier (the month's last day when shorter)."""
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = now.day
    while True:
        try:
            return now.replace(year=year, month=month + 1, day=day)
        except ValueError:
            day -= 1
