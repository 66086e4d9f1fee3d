"""Which column of an imported CSV file holds what: recognised from the header (English and
Russian names, and custom fields by name or label), overridden by a mapping file.

A mapping file is TOML or JSON::

    encoding = "cp1251"          # optional: detected otherwise
    delimiter = ";"              # optional: sniffed otherwise
    tags = ["from-old-crm"]      # optional: added to every contact imported
    source = "old-crm"           # interactions: their source (idempotency with external ids)
    match_field = "crm_id"       # interactions: the custom field a contact_key column matches
    [columns]
    "Контактное лицо" = "name"
    "ИНН" = "field.inn"
    "Комментарий" = "ignore"
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
from kith.errors import InvalidInput

FIELD_PREFIX = "field."
IGNORE = "ignore"
CONTACT_TARGETS = frozenset(
    {
        "name",
        "given_name",
        "family_name",
        "middle_name",
        "email",
        "phone",
        "organization",
        "tags",
        "kind",
    }
)
INTERACTION_TARGETS = frozenset(
    {
        "contact_id",
        "contact_key",
        "email",
        "phone",
        "kind",
        "direction",
        "occurred_at",
        "summary",
        "body",
        "channel",
        "duration_s",
        "amount",
        "external_id",
        "source",
    }
)
# Targets that take several columns (a second email, a work phone); the others take one.
REPEATABLE = frozenset({"email", "phone", "tags"})

# Header names as :func:`header_key` folds them.
_COMMON = {
    "email": "email",
    "mail": "email",
    "emailaddress": "email",
    "электроннаяпочта": "email",
    "элпочта": "email",
    "почта": "email",
    "емейл": "email",
    "имейл": "email",
    "phone": "phone",
    "telephone": "phone",
    "tel": "phone",
    "mobile": "phone",
    "mobilephone": "phone",
    "cell": "phone",
    "phonenumber": "phone",
    "телефон": "phone",
    "тел": "phone",
    "мобильный": "phone",
    "мобильныйтелефон": "phone",
    "номертелефона": "phone",
}
_CONTACT_ALIASES = {
    **_COMMON,
    "name": "name",
    "fullname": "name",
    "displayname": "name",
    "contact": "name",
    "contactname": "name",
    "фио": "name",
    "имяфамилия": "name",
    "полноеимя": "name",
    "контакт": "name",
    "контактноелицо": "name",
    "наименование": "name",
    "firstname": "given_name",
    "givenname": "given_name",
    "first": "given_name",
    "имя": "given_name",
    "lastname": "family_name",
    "familyname": "family_name",
    "surname": "family_name",
    "last": "family_name",
    "фамилия": "family_name",
    "middlename": "middle_name",
    "patronymic": "middle_name",
    "отчество": "middle_name",
    "company": "organization",
    "companyname": "organization",
    "organization": "organization",
    "organisation": "organization",
    "account": "organization",
    "организация": "organization",
    "компания": "organization",
    "контрагент": "organization",
    "tags": "tags",
    "tag": "tags",
    "labels": "tags",
    "теги": "tags",
    "тег": "tags",
    "метки": "tags",
    "kind": "kind",
    "contacttype": "kind",
    "типконтакта": "kind",
}
_INTERACTION_ALIASES = {
    **_COMMON,
    "contactid": "contact_id",
    "contactemail": "email",
    "contactphone": "phone",
    "contactkey": "contact_key",
    "contactexternalid": "contact_key",
    "clientid": "contact_key",
    "кодклиента": "contact_key",
    "kind": "kind",
    "type": "kind",
    "тип": "kind",
    "direction": "direction",
    "направление": "direction",
    "date": "occurred_at",
    "datetime": "occurred_at",
    "time": "occurred_at",
    "occurredat": "occurred_at",
    "дата": "occurred_at",
    "датаивремя": "occurred_at",
    "время": "occurred_at",
    "summary": "summary",
    "subject": "summary",
    "title": "summary",
    "тема": "summary",
    "заголовок": "summary",
    "body": "body",
    "text": "body",
    "note": "body",
    "notes": "body",
    "comment": "body",
    "description": "body",
    "текст": "body",
    "комментарий": "body",
    "описание": "body",
    "channel": "channel",
    "канал": "channel",
    "duration": "duration_s",
    "durations": "duration_s",
    "длительность": "duration_s",
    "amount": "amount",
    "sum": "amount",
    "total": "amount",
    "сумма": "amount",
    "id": "external_id",
    "externalid": "external_id",
    "source": "source",
    "источник": "source",
}
# A header starting with one of these holds another email or phone ("Email 2", "Телефон рабочий").
_PREFIXES = (
    ("email", "email"),
    ("электроннаяпочта", "email"),
    ("элпочта", "email"),
    ("phone", "phone"),
    ("телефон", "phone"),
    ("mobile", "phone"),
    ("мобильн", "phone"),
)
_NOT_WORD = re.compile(r"[\W_]+")


def header_key(text: str) -> str:
    """A header name folded for matching: case, ``ё``, spaces and punctuation ignored."""
    return _NOT_WORD.sub("", text.casefold().replace("ё", "\u0435"))


class MappingFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What a mapping file may say; every part is optional."""

    columns: dict[str, str] = {}
    encoding: str | None = None
    delimiter: str | None = None
    tags: list[str] = []
    source: str | None = None
    match_field: str | None = None


def load_mapping(path: Path) -> MappingFile:
    """A mapping file (``.toml``, or JSON), or :class:`InvalidInput` saying what is wrong."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(
            f"cannot read the mapping file: {exc.strerror}", field="mapping"
        ) from None
    return parse_mapping(text, toml=path.suffix.lower() == ".toml")


def parse_mapping(text: str, *, toml: bool | None = None) -> MappingFile:
    """A mapping from its text; ``toml`` None tries JSON first, then TOML."""
    data: Any
    try:
        if toml is None:
            try:
                data = json.loads(text)
            except ValueError:
                data = tomllib.loads(text)
        else:
            data = tomllib.loads(text) if toml else json.loads(text)
    except ValueError as exc:
        raise InvalidInput(
            f"the mapping is neither JSON nor TOML: {exc}", field="mapping"
        ) from None
    try:
        return msgspec.convert(data, MappingFile)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"the mapping is not valid: {exc}", field="mapping") from None


def resolve(
    headers: Sequence[str],
    kind: str,
    fields: Iterable[tuple[str, str]],
    overrides: Mapping[str, str],
) -> dict[int, str]:
    """The target of each mapped column by its index; raises :class:`InvalidInput` for an
    override naming an unknown column or target. ``fields``: (name, label) of the custom fields
    that can take values."""
    targets = CONTACT_TARGETS if kind == "contacts" else INTERACTION_TARGETS
    aliases = _CONTACT_ALIASES if kind == "contacts" else _INTERACTION_ALIASES
    by_field: dict[str, str] = {}
    for name, label in fields:
        by_field.setdefault(header_key(name), name)
        if label:
            by_field.setdefault(header_key(label), name)
    given = {header_key(column): target.strip() for column, target in overrides.items()}
    known = {header_key(h) for h in headers}
    for column in overrides:
        if header_key(column) not in known:
            raise InvalidInput(
                f"the mapping names column {column!r}, which the file does not have "
                f"(its columns: {', '.join(headers)})",
                field="mapping",
            )
    field_names = set(by_field.values())
    mapped: dict[int, str] = {}
    for index, column in enumerate(headers):
        key = header_key(column)
        target = given.get(key)
        if target is None:
            target = _recognise(key, aliases, by_field if kind == "contacts" else {})
        if target is None or target == IGNORE:
            continue
        if target.startswith(FIELD_PREFIX) and kind == "contacts":
            if target.removeprefix(FIELD_PREFIX) not in field_names:
                raise InvalidInput(
                    f"the mapping sends column {column!r} to {target}, but there is no custom "
                    "field of that name",
                    field="mapping",
                )
        elif target not in targets:
            raise InvalidInput(
                f"the mapping sends column {column!r} to {target!r}; a column maps to one of "
                f"{', '.join(sorted(targets))}"
                + (", field.NAME" if kind == "contacts" else "")
                + " or ignore",
                field="mapping",
            )
        if target not in REPEATABLE and target in mapped.values():
            continue
        mapped[index] = target
    return mapped


def _recognise(key: str, aliases: Mapping[str, str], by_field: Mapping[str, str]) -> str | None:
    if key in by_field:
        return FIELD_PREFIX + by_field[key]
    if key in aliases:
        return aliases[key]
    for prefix, target in _PREFIXES:
        if key.startswith(prefix):
            return target
    return None
