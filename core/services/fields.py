"""Custom fields of contacts: their declarations, and the validation, storage and reading of
the values contacts hold. The contacts service calls in here; nothing here knows of HTTP."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import msgspec
from kith.actor import SYSTEM, Actor
from kith.errors import Conflict, InvalidInput, NotFound
from kith.events import utcnow
from kith.ids import new_id
from kith.normalize import normalize_email, normalize_phone
from kith.personal import CORE_PURPOSES
from kith.runtime import Kith
from kith.schemas import FieldCreate, FieldOut, FieldPatch, PurgeOutcome, unset_to_dict
from kith.services import is_unique_violation
from kith.storage.bulk import insert_rows
from kith.storage.prepared import Prepared
from kith.subject_checks import record_access
from kith.tables import CustomField, CustomFieldValue

VALUE_TABLE = CustomFieldValue._meta.tablename
CHOICE_TYPES = frozenset({"choice", "multi_choice"})
NUMERIC_TYPES = frozenset({"number", "decimal"})
# Stored dates and UTC times sort as text in the order of the moments they name.
RANGE_TYPES = NUMERIC_TYPES | {"date", "datetime"}
TEXT_LIMITS = {"text": 500, "long_text": 100_000, "url": 2000}
# The category a personal field is listed under in the record of processing unless its
# declaration names one.
DEFAULT_CATEGORY = "custom"
DEFAULT_PURPOSE = "customer_relationship"
MONEY_PLACES = decimal.Decimal("0.01")
# Who declared a field through the API or the command line.
ADMIN = "admin"
# How many values a refused type change shows.
EXAMPLES = 5
TRUE_WORDS = frozenset({"true", "yes", "1", "on"})
FALSE_WORDS = frozenset({"false", "no", "0", "off"})


# -- values --------------------------------------------------------------------------------


def normalize_value(definition: FieldOut, raw: Any, region: str, where: str) -> str | None:
    """The stored text of a value of this field, or None for "no value"; raises
    :class:`InvalidInput` naming ``where`` when the value does not fit the field."""
    try:
        return _normalize(definition, raw, region, where)
    except InvalidInput as exc:
        # The field's name leads, so the CLI's one line says which value was refused.
        raise InvalidInput(f"{where}: {exc.detail}", field=where) from None


def _normalize(definition: FieldOut, raw: Any, region: str, where: str) -> str | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    kind = definition.type
    if kind in ("text", "long_text"):
        text = _string(raw, where).strip()
        if len(text) > TEXT_LIMITS[kind]:
            raise InvalidInput(f"is longer than {TEXT_LIMITS[kind]} characters", field=where)
        return text
    if kind == "number":
        return _number(raw, where)
    if kind == "decimal":
        return _money(raw, where)
    if kind == "date":
        try:
            return dt.date.fromisoformat(_string(raw, where).strip()).isoformat()
        except ValueError:
            raise InvalidInput(f"{raw!r} is not a date like 2026-12-31", field=where) from None
    if kind == "datetime":
        return _datetime(raw, where)
    if kind == "boolean":
        return _boolean(raw, where)
    if kind == "choice":
        text = _string(raw, where).strip()
        _check_choices([text], definition, where)
        return text
    if kind == "multi_choice":
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise InvalidInput("must be a list of choices", field=where)
        picked = {item.strip() for item in items if item.strip()}
        _check_choices(picked, definition, where)
        # In the order of the declaration, so equal sets are stored alike.
        ordered = [choice for choice in definition.choices if choice in picked]
        return msgspec.json.encode(ordered).decode() if ordered else None
    if kind == "email":
        return normalize_email(_string(raw, where), field=where)
    if kind == "phone":
        return normalize_phone(_string(raw, where), region, field=where)
    if kind == "url":
        return _url(raw, where)
    raise AssertionError(f"unknown field type {kind}")


def present_value(kind: str, stored: str) -> Any:
    """The JSON value of stored text (the inverse of :func:`normalize_value`)."""
    if kind == "number":
        return int(stored) if stored.lstrip("-").isdigit() else float(stored)
    if kind == "boolean":
        return stored == "true"
    if kind == "multi_choice":
        return list(msgspec.json.decode(stored))
    return stored


def _string(raw: Any, where: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidInput("must be text", field=where)
    return str(raw)


def _number(raw: Any, where: str) -> str:
    if isinstance(raw, bool):
        raise InvalidInput("must be a number", field=where)
    if isinstance(raw, int):
        return str(raw)
    try:
        value = decimal.Decimal(raw.strip() if isinstance(raw, str) else repr(raw))
    except (decimal.InvalidOperation, AttributeError, TypeError):
        raise InvalidInput(f"{raw!r} is not a number", field=where) from None
    if not value.is_finite():
        raise InvalidInput(f"{raw!r} is not a finite number", field=where)
    if value == value.to_integral_value():
        return str(int(value))
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"{raw!r} is too large", field=where)
    return repr(number)


def _money(raw: Any, where: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidInput("must be an amount like 12.50", field=where)
    try:
        value = decimal.Decimal(raw.strip().replace(" ", "") if isinstance(raw, str) else str(raw))
    except decimal.InvalidOperation:
        raise InvalidInput(f"{raw!r} is not an amount like 12.50", field=where) from None
    if not value.is_finite() or abs(value) >= 10**15:
        raise InvalidInput(f"{raw!r} is not an amount like 12.50", field=where)
    if value != value.quantize(MONEY_PLACES, rounding=decimal.ROUND_DOWN):
        raise InvalidInput(f"{raw!r} has more than two decimal places", field=where)
    return str(value.quantize(MONEY_PLACES))


def _datetime(raw: Any, where: str) -> str:
    text = _string(raw, where).strip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{raw!r} is not a time like 2026-12-31T09:30:00+01:00", field=where
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{raw!r} needs a time zone, like Z or +01:00", field=where)
    # One fixed-width UTC form: stored values sort as the moments do.
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _boolean(raw: Any, where: str) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str) and raw.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return "true" if raw.strip().lower() in TRUE_WORDS else "false"
    raise InvalidInput(f"{raw!r} is not true or false", field=where)


def _url(raw: Any, where: str) -> str:
    text = _string(raw, where).strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = parts.hostname or ""
    if (
        parts.scheme.lower() not in ("http", "https")
        or "." not in host
        or any(ch.isspace() for ch in text)
        or len(text) > TEXT_LIMITS["url"]
    ):
        raise InvalidInput(f"{raw!r} is not a web address like https://example.com", field=where)
    # Host names are case-insensitive; what comes before an @ is not.
    user, at, place = parts.netloc.rpartition("@")
    netloc = user + at + place.lower()
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))


def _check_choices(picked: Iterable[str], definition: FieldOut, where: str) -> None:
    unknown = sorted(set(picked) - set(definition.choices))
    if unknown:
        raise InvalidInput(
            f"{', '.join(map(repr, unknown))} is not one of the choices "
            f"({', '.join(definition.choices)})",
            field=where,
        )


# Every create, change and read of a contact runs these: built once (kith.storage.prepared).
_ALL_FIELDS = Prepared(lambda: CustomField.select().order_by(CustomField.name))
_ACTIVE_FIELDS = Prepared(
    lambda: (
        CustomField.select()
        .where(CustomField.archived == False)  # noqa: E712 - piccolo builds SQL from this
        .order_by(CustomField.name)
    )
)
# The declarations' version: a value the database sets anew, at random, with every statement
# that adds, changes or deletes a declaration (triggers made by the migration, so every writer
# in every process counts). Random rather than counted: a change rolled back must not leave
# a number that the next change, made elsewhere, reuses for other declarations.
VERSION_SQL = "(SELECT version FROM kith_custom_field_version)"
_REMEMBERED = "kith.custom_fields.declared"
_VALUE_COLUMNS = ("id", "contact", "field", "value", "protected", "number", "kind", "lookup")
_VALUES_OF = Prepared(
    lambda ids: (
        CustomFieldValue.select(
            CustomFieldValue.id,
            CustomFieldValue.contact,
            CustomFieldValue.value,
            CustomFieldValue.protected,
            CustomFieldValue.field.name,
            CustomFieldValue.field.type,
            CustomFieldValue.field.archived,
        )
        .where(CustomFieldValue.contact.is_in(ids))
        .order_by(CustomFieldValue.field.name)
    )
)


def _index_kind(definition: FieldOut) -> str:
    # Its own blind-index key per field: equal values of two fields do not match.
    return f"field.{definition.name}"


# -- declarations --------------------------------------------------------------------------


def _out(row: Mapping[str, Any]) -> FieldOut:
    choices = row["choices"]
    if isinstance(choices, str):
        choices = msgspec.json.decode(choices)
    default = row["default"]
    return FieldOut(
        id=row["id"],
        name=row["name"],
        label=row["label"],
        type=row["type"],
        required=bool(row["required"]),
        default=None if default is None else present_value(row["type"], default),
        choices=list(choices or []),
        currency=row["currency"],
        personal=bool(row["personal"]),
        searchable=bool(row["searchable"]),
        category=row["category"],
        purpose=row["purpose"],
        retention=row["retention"],
        archived=bool(row["archived"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        declared_by=row["declared_by"],
    )


class ValueRow(NamedTuple):
    """One stored value of a custom field, with what its field says of it."""

    id: uuid.UUID
    contact: uuid.UUID
    field: str
    type: str
    archived: bool
    value: str | None
    protected: str | None


@dataclass(frozen=True)
class _Remembered:
    """The declarations a process read, and the version they were read at."""

    version: int
    fields: list[FieldOut]


@dataclass
class PreparedValues:
    """Values checked against the declarations, ready to be stored for one contact:
    ``set`` by field (stored text), ``cleared`` fields, and ``shown`` as returned."""

    set: dict[uuid.UUID, tuple[FieldOut, str]] = field(default_factory=dict)
    cleared: list[uuid.UUID] = field(default_factory=list)

    @property
    def shown(self) -> dict[str, Any]:
        return {
            definition.name: present_value(definition.type, text)
            for definition, text in self.set.values()
        }


class FieldService:
    """Declaring custom fields (admins, through the API and the CLI) and the values contacts
    hold; the contacts service calls :meth:`prepare`, :meth:`store` and :meth:`values_of`."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    # -- declaring -----------------------------------------------------------------------------

    async def add(self, data: FieldCreate, declared_by: str = ADMIN) -> FieldOut:
        """Declare a field; ``declared_by`` is ``admin`` (the API and the command line),
        ``kith.toml`` or a plugin's name (see :mod:`kith.services.field_seeds`)."""
        row = self._row(data, declared_by)
        try:
            await CustomField.insert(CustomField(**row)).run()
        except Exception as exc:
            if is_unique_violation(exc):
                raise self._taken(data.name) from None
            raise
        return _out(row)

    def checked(self, data: FieldCreate, declared_by: str = ADMIN) -> FieldOut:
        """The field ``data`` declares, as :meth:`add` would store it (nothing is stored);
        :class:`InvalidInput` when it does not hold together."""
        return _out(self._row(data, declared_by))

    def _row(self, data: FieldCreate, declared_by: str) -> dict[str, Any]:
        now = utcnow()
        row: dict[str, Any] = {
            "id": new_id(),
            "name": data.name,
            "label": data.label.strip(),
            "type": data.type,
            "required": data.required,
            "default": None,
            "choices": data.choices,
            "currency": data.currency,
            "personal": data.personal,
            "searchable": data.searchable,
            "category": data.category,
            "purpose": data.purpose,
            "retention": data.retention,
            "archived": False,
            "created_at": now,
            "updated_at": now,
            "declared_by": declared_by,
        }
        return self._checked(row, data.default)

    @staticmethod
    def _taken(name: str) -> Conflict:
        return Conflict(
            f"a custom field named {name!r} exists already (archived fields keep their name)",
            field="name",
        )

    def _checked(self, row: dict[str, Any], default: Any) -> dict[str, Any]:
        """``row`` with its rules checked and its default normalised into it."""
        kind = row["type"]
        choices = [choice.strip() for choice in row["choices"]]
        if kind in CHOICE_TYPES:
            if not choices:
                raise InvalidInput(f"a {kind} field needs at least one choice", field="choices")
            if len(set(choices)) != len(choices):
                raise InvalidInput("a choice is listed twice", field="choices")
        elif choices:
            raise InvalidInput(
                f"only choice and multi_choice fields have choices, not {kind}", field="choices"
            )
        row["choices"] = choices
        if kind == "decimal" and not row["currency"]:
            raise InvalidInput(
                "a decimal (money) field needs a currency, like EUR", field="currency"
            )
        if kind != "decimal" and row["currency"]:
            raise InvalidInput("only decimal (money) fields have a currency", field="currency")
        if row["personal"]:
            row["category"] = row["category"] or DEFAULT_CATEGORY
            row["purpose"] = row["purpose"] or DEFAULT_PURPOSE
            if row["purpose"] not in self._purposes():
                raise InvalidInput(
                    f"{row['purpose']!r} is not a declared purpose "
                    f"({', '.join(sorted(self._purposes()))})",
                    field="purpose",
                )
        elif row["category"] or row["purpose"] or row["retention"]:
            at_fault = next(k for k in ("category", "purpose", "retention") if row[k])
            raise InvalidInput(
                "only personal fields have a data category, a purpose and a retention class",
                field=at_fault,
            )
        if row["searchable"] and kind in ("long_text", "multi_choice"):
            raise InvalidInput(f"a {kind} field cannot be searchable", field="searchable")
        probe = _out({**row, "default": None})
        row["default"] = normalize_value(
            probe, default, self.kith.settings.default_region, "default"
        )
        return row

    def _purposes(self) -> set[str]:
        declared = self.kith.plugins.purposes() if self.kith.plugins is not None else []
        names = {purpose.name for purpose in [*CORE_PURPOSES, *declared]}
        # The operator may declare more in kith.toml ([privacy.purposes.<name>]).
        configured = self.kith.settings.section("privacy").get("purposes", {})
        return names | set(configured if isinstance(configured, dict) else ())

    async def declared(self, include_archived: bool = False) -> list[FieldOut]:
        rows = await (_ALL_FIELDS if include_archived else _ACTIVE_FIELDS).run()
        return [_out(row) for row in rows]

    async def declared_at(self, version: int) -> list[FieldOut]:
        """Every declaration, archived ones included, as :meth:`declared` reads them, for a
        caller that read their ``version`` (:data:`VERSION_SQL`) just before, in a statement
        it makes anyway: the process remembers them until it reads another version, so that a
        contact's create does not read them all. A change made by any process changes the
        version, so the next create reads them again. (Read after the version, declarations
        are never older than it; a newer read costs one more read later, nothing else.)"""
        held = self.kith.state.get(_REMEMBERED)
        if isinstance(held, _Remembered) and held.version == version:
            return held.fields
        fields = await self.declared(include_archived=True)
        self.kith.state[_REMEMBERED] = _Remembered(version, fields)
        return fields

    async def get(self, name: str) -> FieldOut:
        row = await CustomField.select().where(CustomField.name == name).first().run()
        if row is None:
            raise NotFound(f"there is no custom field named {name!r}")
        return _out(row)

    async def change(
        self, name: str, patch: FieldPatch, actor: Actor = SYSTEM, channel: str = "system"
    ) -> FieldOut:
        """Change a declaration. A new ``type`` converts every stored value, or refuses
        (changing nothing) with the count and examples of those that would not convert;
        reading a personal value to convert it is reported as an access."""
        current = await self.get(name)
        changes = unset_to_dict(patch)
        row: dict[str, Any] = {
            column: getattr(current, column) for column in FieldOut.__struct_fields__
        }
        default = changes.pop("default", current.default)
        row.update(changes)
        if "label" in changes:
            row["label"] = str(changes["label"]).strip()
        # What only the old type had goes with it, unless the change says otherwise.
        if row["type"] != "decimal" and "currency" not in changes:
            row["currency"] = None
        if row["type"] not in CHOICE_TYPES and "choices" not in changes:
            row["choices"] = []
        row = self._checked(row, default)
        converted: list[tuple[dict[str, Any], str]] = []
        target = _out(row)
        # A personal field made searchable (or no longer) gets its blind indexes made (or
        # dropped): its values are written again, as on a type change.
        reindex = current.personal and target.searchable != current.searchable
        if target.type != current.type or reindex:
            converted = await self._converted(current, target, actor, channel)
        else:
            removed = sorted(set(current.choices) - set(row["choices"]))
            if removed:
                await self._check_unused_choices(current, removed)
        row["updated_at"] = utcnow()
        stored = {
            column: row[column]
            for column in (
                "type",
                "label",
                "required",
                "default",
                "choices",
                "currency",
                "searchable",
                "category",
                "purpose",
                "retention",
                "updated_at",
            )
        }
        async with self.kith.unit_of_work(actor):
            await (
                CustomField.update({getattr(CustomField, k): v for k, v in stored.items()})
                .where(CustomField.id == current.id)
                .run()
            )
            for value_row, text in converted:
                await self._rewrite(target, value_row, text)
        return await self.get(name)

    async def _converted(
        self, current: FieldOut, target: FieldOut, actor: Actor, channel: str
    ) -> list[tuple[dict[str, Any], str]]:
        """Every stored value of ``current`` in the form of ``target`` (its new type); a
        :class:`Conflict` with the count and examples when any would not convert."""
        rows = await CustomFieldValue.select().where(CustomFieldValue.field == current.id)
        region = self.kith.settings.default_region
        converted: list[tuple[dict[str, Any], str]] = []
        failed: list[str] = []
        for row in rows:
            text = await self._plain(current, row)
            if current.personal:
                await record_access(
                    self.kith, row["contact"], "field.convert", actor, channel, field=current.name
                )
            given: Any = text
            if current.type == "multi_choice":
                given = ", ".join(present_value(current.type, text))
            try:
                new = normalize_value(target, given, region, f"fields.{current.name}")
            except InvalidInput:
                new = None
            if new is None:
                # A personal value is not shown back; its contact is.
                failed.append(f"contact {row['contact']}" if current.personal else f"{given!r}")
            else:
                converted.append((row, new))
        if failed:
            examples = ", ".join(failed[:EXAMPLES])
            raise Conflict(
                f"{len(failed)} of {len(rows)} values of {current.name!r} would not convert "
                f"from {current.type} to {target.type} (for example {examples}); nothing was "
                "changed",
                field="type",
                count=len(failed),
            )
        return converted

    async def _plain(self, definition: FieldOut, row: Mapping[str, Any]) -> str:
        if not definition.personal:
            return str(row["value"])
        revealed = await self.kith.protector.reveal(
            row["contact"], VALUE_TABLE, row["id"], {"protected": row["protected"]}
        )
        return str(revealed["protected"])

    async def _columns(
        self, definition: FieldOut, contact_id: uuid.UUID, row_id: uuid.UUID, text: str
    ) -> dict[str, Any]:
        """The stored columns of one value of a field."""
        if not definition.personal:
            number = float(text) if definition.type in NUMERIC_TYPES else None
            return {
                "value": text,
                "protected": None,
                "number": number,
                "kind": None,
                "lookup": None,
            }
        stored = await self.kith.protector.protect(
            contact_id, VALUE_TABLE, row_id, {"protected": text}
        )
        index_kind = lookup = None
        if definition.searchable:
            index_kind = _index_kind(definition)
            lookup = self.kith.protector.lookup_key(index_kind, text)
        return {
            "value": None,
            "protected": stored["protected"],
            "number": None,
            "kind": index_kind,
            "lookup": lookup,
        }

    async def _rewrite(self, definition: FieldOut, row: Mapping[str, Any], text: str) -> None:
        columns = await self._columns(definition, row["contact"], row["id"], text)
        await (
            CustomFieldValue.update(
                {getattr(CustomFieldValue, name): value for name, value in columns.items()}
            )
            .where(CustomFieldValue.id == row["id"])
            .run()
        )

    async def _check_unused_choices(self, current: FieldOut, removed: list[str]) -> None:
        rows = await CustomFieldValue.select(
            CustomFieldValue.value, CustomFieldValue.protected
        ).where(CustomFieldValue.field == current.id)
        if current.personal and rows:
            raise Conflict(
                f"choices of personal field {current.name!r} can only be removed while no "
                f"contact has a value ({len(rows)} have)",
                field="choices",
            )
        using = 0
        used: set[str] = set()
        for row in rows:
            held = present_value(current.type, row["value"])
            hit = set(held if isinstance(held, list) else [held]) & set(removed)
            if hit:
                using += 1
                used |= hit
        if using:
            raise Conflict(
                f"{using} contact(s) hold {', '.join(map(repr, sorted(used)))}: change their "
                "value first",
                field="choices",
            )

    async def archive(self, name: str) -> FieldOut:
        """Hide a field: its values stay stored but are no longer shown or accepted."""
        current = await self.get(name)
        if not current.archived:
            await (
                CustomField.update({CustomField.archived: True, CustomField.updated_at: utcnow()})
                .where(CustomField.id == current.id)
                .run()
            )
        return await self.get(name)

    async def purge(
        self, name: str, actor: Actor = SYSTEM, channel: str = "system"
    ) -> PurgeOutcome:
        """Delete an archived field and every value contacts hold of it; the name is free
        again. A field in use must be archived first (:class:`Conflict` otherwise), so that
        nobody loses values in one step. For a personal field, each contact whose value was
        deleted is reported (``field.purge``)."""
        current = await self.get(name)
        if not current.archived:
            raise Conflict(
                f"custom field {name!r} is in use: archive it first (its values are kept "
                "until it is purged)",
                field="name",
            )
        async with self.kith.unit_of_work(actor):
            deleted = await (
                CustomFieldValue.delete()
                .where(CustomFieldValue.field == current.id)
                .returning(CustomFieldValue.contact)
            )
            await CustomField.delete().where(CustomField.id == current.id).run()
            if current.personal:
                for contact_id in sorted({row["contact"] for row in deleted}):
                    await record_access(
                        self.kith, contact_id, "field.purge", actor, channel, field=name
                    )
        return PurgeOutcome(field=name, values_deleted=len(deleted))

    async def clear_set_before(
        self, field_ids: list[uuid.UUID], moment: dt.datetime, *, dry_run: bool = False
    ) -> int:
        """Delete the values of these fields given before ``moment`` (a retention rule's
        cutoff); how many (would) go."""
        if not field_ids:
            return 0
        where = CustomFieldValue.field.is_in(field_ids) & (CustomFieldValue.set_at < moment)
        if dry_run:
            return int(await CustomFieldValue.count().where(where))
        deleted = await CustomFieldValue.delete().where(where).returning(CustomFieldValue.id)
        return len(deleted)

    # -- filtering -----------------------------------------------------------------------------

    async def conditions(self, given: Mapping[str, str]) -> list[Any]:
        """Conditions on contact ids for a list: ``{"industry": "retail"}`` is an exact value
        (a multi_choice field's value holds it), ``{"employees.min": "10"}`` and
        ``{"employees.max": "50"}`` are inclusive bounds of numbers, money, dates and times."""
        definitions = {d.name: d for d in await self.declared(include_archived=True)}
        region = self.kith.settings.default_region
        found = []
        for key, raw in given.items():
            where = f"field.{key}"
            name, _, bound = key.partition(".")
            definition = definitions.get(name)
            if definition is None or definition.archived:
                active = sorted(n for n, d in definitions.items() if not d.archived)
                raise InvalidInput(
                    f"there is no custom field named {name!r} to filter on (declared: "
                    f"{', '.join(active) or 'none'})",
                    field=where,
                )
            if definition.personal and (bound or not definition.searchable):
                raise InvalidInput(
                    f"custom field {name!r} is personal: its values are encrypted, so lists "
                    "find them only by an exact value, and only when the field is searchable",
                    field=where,
                )
            if bound not in ("", "min", "max"):
                raise InvalidInput(
                    f"{key!r}: filter on field.{name}, field.{name}.min or field.{name}.max",
                    field=where,
                )
            if bound and definition.type not in RANGE_TYPES:
                raise InvalidInput(
                    f"a {definition.type} field has no range; filter on field.{name}=VALUE",
                    field=where,
                )
            probe = definition
            if definition.type == "multi_choice":
                # One choice is asked for: the contact's list holds it.
                probe = msgspec.structs.replace(definition, type="choice")
            text = normalize_value(probe, raw, region, where)
            if text is None:
                raise InvalidInput(f"{where}: give a value to filter on", field=where)
            column: Any = CustomFieldValue.value
            value: Any = text
            if definition.type in NUMERIC_TYPES:
                column, value = CustomFieldValue.number, float(text)
            condition = CustomFieldValue.field == definition.id
            if bound == "min":
                condition &= column >= value
            elif bound == "max":
                condition &= column <= value
            elif definition.personal:
                condition &= CustomFieldValue.lookup == self.kith.protector.lookup_key(
                    _index_kind(definition), text
                )
            elif definition.type == "multi_choice":
                condition &= CustomFieldValue.value.like(
                    "%" + msgspec.json.encode(text).decode() + "%"
                )
            else:
                condition &= column == value
            found.append(CustomFieldValue.select(CustomFieldValue.contact).where(condition))
        return found

    # -- values ------------------------------------------------------------------------------

    async def prepare(
        self,
        given: Mapping[str, Any],
        *,
        creating: bool,
        declared: list[FieldOut] | None = None,
    ) -> PreparedValues:
        """Check ``given`` values (by field name) against the declarations. ``creating``: a new
        contact, so defaults apply and every required field needs a value. ``declared``: every
        declaration, archived ones included, when the caller read them already (a batch)."""
        if declared is None:
            declared = await self.declared(include_archived=True)
        definitions = {d.name: d for d in declared}
        region = self.kith.settings.default_region
        prepared = PreparedValues()
        for name, raw in given.items():
            where = f"fields.{name}"
            definition = definitions.get(name)
            if definition is None:
                active = sorted(n for n, d in definitions.items() if not d.archived)
                raise InvalidInput(
                    f"there is no custom field named {name!r} (declared: "
                    f"{', '.join(active) or 'none'})",
                    field=where,
                )
            if definition.archived:
                raise InvalidInput(
                    f"custom field {name!r} is archived and takes no values", field=where
                )
            text = normalize_value(definition, raw, region, where)
            if text is None:
                if definition.required:
                    raise InvalidInput(f"custom field {name!r} is required", field=where)
                prepared.cleared.append(definition.id)
            else:
                prepared.set[definition.id] = (definition, text)
        if creating:
            for definition in definitions.values():
                if definition.archived or definition.name in given:
                    continue
                if definition.default is not None:
                    text = normalize_value(definition, definition.default, region, "default")
                    assert text is not None
                    prepared.set[definition.id] = (definition, text)
                elif definition.required:
                    raise InvalidInput(
                        f"custom field {definition.name!r} is required",
                        field=f"fields.{definition.name}",
                    )
        return prepared

    async def checked_change(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` values (by field name) of a change to a contact, checked now against the
        declarations as :meth:`prepare` checks them when the change is made, and as that change
        will store them (None: the value is removed). For a change that is made later."""
        prepared = await self.prepare(given, creating=False)
        shown = prepared.shown
        return {name: shown.get(name) for name in given}

    async def store(self, contact_id: uuid.UUID, prepared: PreparedValues) -> None:
        """Write prepared values of one contact (in the caller's transaction)."""
        touched = [*prepared.set, *prepared.cleared]
        if touched:
            await (
                CustomFieldValue.delete()
                .where(
                    (CustomFieldValue.contact == contact_id) & CustomFieldValue.field.is_in(touched)
                )
                .run()
            )
        rows = []
        now = utcnow()
        for field_id, (definition, text) in prepared.set.items():
            row_id = new_id()
            rows.append(
                CustomFieldValue(
                    id=row_id,
                    contact=contact_id,
                    field=field_id,
                    set_at=now,
                    **await self._columns(definition, contact_id, row_id, text),
                )
            )
        if rows:
            await CustomFieldValue.insert(*rows).run()

    async def store_new(self, prepared: Iterable[tuple[uuid.UUID, PreparedValues]]) -> None:
        """Write the prepared values of contacts created just now (they hold none yet), in
        multi-row statements: a batch of an import."""
        rows: list[tuple[Any, ...]] = []
        for contact_id, values in prepared:
            for field_id, (definition, text) in values.set.items():
                row_id = new_id()
                stored = await self._columns(definition, contact_id, row_id, text)
                rows.append(
                    (row_id, contact_id, field_id, *(stored[name] for name in _VALUE_COLUMNS[3:]))
                )
        await insert_rows(CustomFieldValue, _VALUE_COLUMNS, rows)

    async def values_of(self, contact_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """The custom field values of these contacts, by contact and field name (values of
        archived fields are hidden)."""
        if not contact_ids:
            return {}
        rows = await _VALUES_OF.run(ids=contact_ids)
        return await self.present(
            ValueRow(
                row["id"],
                row["contact"],
                row["field.name"],
                row["field.type"],
                bool(row["field.archived"]),
                row["value"],
                row["protected"],
            )
            for row in rows
        )

    async def present(self, rows: Iterable[ValueRow]) -> dict[uuid.UUID, dict[str, Any]]:
        """Stored values as shown, by contact and field name (values of archived fields are
        hidden; personal ones are decrypted)."""
        found: dict[uuid.UUID, dict[str, Any]] = {}
        for row in rows:
            if row.archived:
                continue
            text = row.value
            if row.protected is not None:
                text = (
                    await self.kith.protector.reveal(
                        row.contact, VALUE_TABLE, row.id, {"protected": row.protected}
                    )
                )["protected"]
            if text is None:
                continue
            found.setdefault(row.contact, {})[row.field] = present_value(row.type, text)
        return found
