"""CommerceML 2.03-2.10 and 3.1 as 1C writes it: counterparties and documents, read as a
stream of small objects (flat memory however large the file), and written back.

The reader is expat through defusedxml: a DTD, an entity or an external reference is refused
before anything is expanded or fetched. Element names are compared without their namespace,
so ``urn:1C.ru:commerceml_2``, ``urn:1C.ru:commerceml_3`` and files without one read alike.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Literal
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesImpl

import msgspec
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

PointKind = Literal["email", "phone"]


class MalformedExchange(Exception):
    """A file 1C sent that Kith will not read: the reason, with line and column when known."""


class ContactPoint(msgspec.Struct, frozen=True):
    kind: PointKind
    value: str
    label: str = ""


class Counterparty(msgspec.Struct, kw_only=True):
    """A Контрагент (or a Представитель of one)."""

    onec_id: str
    kind: Literal["person", "organization"] = "person"
    name: str = ""
    full_name: str = ""
    family_name: str = ""
    given_name: str = ""
    middle_name: str = ""
    inn: str = ""
    kpp: str = ""
    legal_address: str = ""
    actual_address: str = ""
    role: str = ""
    relation: str = ""
    points: list[ContactPoint] = []
    # Контакты whose Тип is neither an email nor a phone (a website, Skype...): skipped.
    other_points: int = 0
    representatives: list[Counterparty] = []
    deleted: bool = False


class OrderLine(msgspec.Struct, kw_only=True):
    onec_id: str = ""
    name: str = ""
    quantity: str = ""
    price: str = ""
    amount: str = ""
    unit: str = ""


class Document(msgspec.Struct, kw_only=True):
    """A Документ: an order, a shipment (Отпуск товара) or a payment (Оплата)."""

    onec_id: str
    number: str = ""
    date: str = ""
    time: str = ""
    operation: str = ""
    role: str = ""
    currency: str = ""
    rate: str = ""
    amount: str = ""
    comment: str = ""
    deleted: bool = False
    counterparties: list[Counterparty] = []
    lines: list[OrderLine] = []
    # ЗначенияРеквизитов: name → value, in the order given.
    requisites: dict[str, str] = {}


Item = Counterparty | Document

# Elements whose whole subtree is turned into one item.
ITEMS = ("Документ", "Контрагент")
# Names of the root element's attributes that say which version wrote the file.
VERSION_ATTRIBUTE = "ВерсияСхемы"


def local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def _children(element: Element, name: str) -> Iterator[Element]:
    return (child for child in element if local(child.tag) == name)


def _child(element: Element, *path: str) -> Element | None:
    current: Element | None = element
    for name in path:
        if current is None:
            return None
        current = next(_children(current, name), None)
    return current


def _text(element: Element | None, *path: str) -> str:
    found = _child(element, *path) if element is not None and path else element
    if found is None:
        return ""
    return " ".join((found.text or "").split())


def _flag(value: str) -> bool:
    return value.strip().lower() in ("true", "истина", "да", "1", "yes")


def _address(element: Element, *names: str) -> str:
    for name in names:
        found = _child(element, name)
        if found is not None:
            text = _text(found, "Представление") or _text(found)
            if text:
                return text
    return ""


def point_kind(kind: str) -> tuple[PointKind, str] | None:
    """What a Контакт's Тип means: ("email" | "phone", label), or None for anything else.
    1C writes these in many ways ("Почта", "Электронная почта", "Телефон рабочий",
    "ТелефонРабочий", "Телефон мобильный", "Факс"...)."""
    squashed = re.sub(r"[\s_\-]+", "", kind.lower())
    if any(word in squashed for word in ("почт", "mail")):
        return "email", ""
    labels = (("мобил", "mobile"), ("сотов", "mobile"), ("рабоч", "work"), ("домаш", "home"))
    if "факс" in squashed or "fax" in squashed:
        return "phone", "fax"
    if "телефон" in squashed or "phone" in squashed or squashed == "тел":
        label = next((english for word, english in labels if word in squashed), "")
        return "phone", label
    return None


def _points(element: Element) -> tuple[list[ContactPoint], int]:
    points: list[ContactPoint] = []
    other = 0
    holders = [c for c in element if local(c.tag) in ("Контакты", "КонтактнаяИнформация")]
    for holder in holders:
        for contact in holder:
            if local(contact.tag) not in ("Контакт", "КонтактнаяИнформация"):
                continue
            kind = _text(contact, "Тип") or contact.get("Тип", "")
            value = _text(contact, "Значение") or contact.get("Значение", "")
            meaning = point_kind(kind)
            if not value:
                continue
            if meaning is None:
                other += 1
                continue
            points.append(ContactPoint(kind=meaning[0], value=value, label=meaning[1]))
    return points, other


def _split_name(full: str) -> tuple[str, str, str]:
    """Фамилия Имя Отчество, as Russian names are written in 1C."""
    parts = full.split()
    parts += [""] * (3 - len(parts))
    return parts[0], parts[1], " ".join(parts[2:])


def read_counterparty(element: Element) -> Counterparty:
    """A Контрагент element (2.0x, with its data directly inside or in ЮрЛицо/ФизЛицо; 3.1,
    in ЮридическоеЛицо/ФизическоеЛицо) as a :class:`Counterparty`."""
    person = _child(element, "ФизЛицо") or _child(element, "ФизическоеЛицо")
    company = _child(element, "ЮрЛицо") or _child(element, "ЮридическоеЛицо")
    details = [element, *(part for part in (person, company) if part is not None)]

    def first(*names: str) -> str:
        for holder in details:
            for name in names:
                text = _text(holder, name)
                if text:
                    return text
        return ""

    family, given, middle = first("Фамилия"), first("Имя"), first("Отчество")
    inn, kpp = first("ИНН"), first("КПП")
    official = first("ОфициальноеНаименование")
    legal = ""
    actual = ""
    for holder in details:
        legal = legal or _address(holder, "ЮридическийАдрес", "АдресРегистрации")
        actual = actual or _address(holder, "ФактическийАдрес", "Адрес")
    kind: Literal["person", "organization"] = "person"
    if company is not None or official or kpp or len(inn) == 10:
        kind = "organization"
    if person is not None or family or given:
        kind = "person"
    full_name = first("ПолноеНаименование") or official
    name = _text(element, "Наименование") or full_name
    if kind == "person" and not (family or given) and name:
        family, given, middle = _split_name(name)
    points: list[ContactPoint] = []
    other = 0
    for holder in details:
        found, skipped = _points(holder)
        points += found
        other += skipped
    representatives = []
    for holder in _children(element, "Представители"):
        for rep in _children(holder, "Представитель"):
            inner = _child(rep, "Контрагент")
            target = inner if inner is not None else rep
            read = read_counterparty(target)
            read.kind = "person"
            read.relation = _text(target, "Отношение") or _text(rep, "Отношение")
            representatives.append(read)
    return Counterparty(
        onec_id=_text(element, "Ид"),
        kind=kind,
        name=name,
        full_name=full_name,
        family_name=family,
        given_name=given,
        middle_name=middle,
        inn=inn,
        kpp=kpp,
        legal_address=legal,
        actual_address=actual,
        role=_text(element, "Роль"),
        points=points,
        other_points=other,
        representatives=representatives,
        deleted=_flag(_text(element, "ПометкаУдаления")),
    )


def read_document(element: Element) -> Document:
    requisites: dict[str, str] = {}
    for holder in _children(element, "ЗначенияРеквизитов"):
        for pair in _children(holder, "ЗначениеРеквизита"):
            name = _text(pair, "Наименование")
            if name:
                requisites[name] = _text(pair, "Значение")
    counterparties = [
        read_counterparty(found)
        for holder in _children(element, "Контрагенты")
        for found in _children(holder, "Контрагент")
    ]
    lines = [
        OrderLine(
            onec_id=_text(item, "Ид"),
            name=_text(item, "Наименование"),
            quantity=_text(item, "Количество"),
            price=_text(item, "ЦенаЗаЕдиницу"),
            amount=_text(item, "Сумма"),
            unit=_text(item, "БазоваяЕдиница"),
        )
        for holder in _children(element, "Товары")
        for item in _children(holder, "Товар")
    ]
    deleted = _flag(_text(element, "ПометкаУдаления")) or _flag(
        requisites.get("ПометкаУдаления", "")
    )
    return Document(
        onec_id=_text(element, "Ид"),
        number=_text(element, "Номер"),
        date=_text(element, "Дата"),
        time=_text(element, "Время"),
        operation=_text(element, "ХозОперация"),
        role=_text(element, "Роль"),
        currency=_text(element, "Валюта"),
        rate=_text(element, "Курс"),
        amount=_text(element, "Сумма"),
        comment=_text(element, "Комментарий"),
        deleted=deleted,
        counterparties=counterparties,
        lines=lines,
        requisites=requisites,
    )


class ExchangeFile(msgspec.Struct, kw_only=True):
    """What a first pass over a file found: its schema version and how many items."""

    version: str = ""
    documents: int = 0
    counterparties: int = 0


def _iterparse(source: Path | IO[bytes]) -> Iterator[tuple[str, Element]]:
    """(event, element) of a file, with Kith's refusals and errors in readable words."""
    try:
        yield from iterparse(
            source,
            events=("start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )
    except ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":")[0]
        raise MalformedExchange(
            f"the XML is malformed at line {line}, column {column} ({reason})"
        ) from None
    except DefusedXmlException:
        raise MalformedExchange(
            "the XML declares a DTD or entities, which Kith does not read"
        ) from None


def read_items(source: Path | IO[bytes], skip: int = 0) -> Iterator[Item]:
    """The counterparties and documents of a file in order, each subtree dropped once read
    (counterparties inside a document come with it). ``skip``: leave out the first ones (a
    resumed import)."""
    stack: list[Element] = []
    seen = 0
    for event, element in _iterparse(source):
        if event == "start":
            stack.append(element)
            continue
        stack.pop()
        name = local(element.tag)
        inside = any(local(e.tag) in ITEMS or local(e.tag) == "Представители" for e in stack)
        if name in ITEMS and not inside:
            seen += 1
            if seen > skip:
                yield read_document(element) if name == "Документ" else read_counterparty(element)
        if not inside and stack:
            # Done with it: nothing outside an item is kept, so memory stays flat.
            stack[-1].remove(element)


def survey(source: Path | IO[bytes]) -> ExchangeFile:
    """Read a whole file once, keeping nothing: raises :class:`MalformedExchange` for a file
    that is not well-formed XML (so nothing of it is applied), else its version and counts."""
    found = ExchangeFile()
    stack: list[Element] = []
    for event, element in _iterparse(source):
        if event == "start":
            if not stack:
                found.version = element.get(VERSION_ATTRIBUTE, "")
            stack.append(element)
            continue
        stack.pop()
        name = local(element.tag)
        if name in ITEMS and not any(local(e.tag) in ITEMS for e in stack):
            if name == "Документ":
                found.documents += 1
            else:
                found.counterparties += 1
        element.clear()
        if stack:
            stack[-1].remove(element)
    return found


# -- values -----------------------------------------------------------------------------------

CURRENCIES = {
    "руб": "RUB",
    "рубль": "RUB",
    "643": "RUB",
    "rur": "RUB",
    "usd": "USD",
    "долл": "USD",
    "840": "USD",
    "eur": "EUR",
    "евро": "EUR",
    "978": "EUR",
    "kzt": "KZT",
    "тенге": "KZT",
    "byn": "BYN",
    "uah": "UAH",
    "грн": "UAH",
}


def currency_code(value: str, default: str) -> str:
    """An ISO 4217 code for what 1C writes ("руб", "руб.", "643", "RUB")."""
    cleaned = value.strip().rstrip(".").lower()
    if cleaned in CURRENCIES:
        return CURRENCIES[cleaned]
    if re.fullmatch(r"[a-z]{3}", cleaned):
        return cleaned.upper()
    return default


def money(value: str) -> decimal.Decimal | None:
    """A sum as 1C writes it ("14380.5800", "1 200,50"), or None when there is none."""
    cleaned = re.sub(r"[\s\u00a0]", "", value).replace(",", ".")
    if not cleaned:
        return None
    try:
        return decimal.Decimal(cleaned).quantize(decimal.Decimal("0.01"))
    except decimal.InvalidOperation:
        return None


def document_time(document: Document) -> dt.datetime | None:
    """Дата and Время as a naive datetime (the installation's time zone), or None."""
    try:
        day = dt.date.fromisoformat(document.date[:10])
    except ValueError:
        return None
    moment = dt.time()
    if document.time:
        with contextlib.suppress(ValueError):
            moment = dt.time.fromisoformat(document.time[:8])
    return dt.datetime.combine(day, moment)


# -- writing ----------------------------------------------------------------------------------

NAMESPACE_3 = "urn:1C.ru:commerceml_3"
_NONE: AttributesImpl[str] = AttributesImpl({})


class Writer:
    """Writes a CommerceML file for 1C (a ``mode=query`` reply) to a binary stream, in
    windows-1251 by default as 1C expects; characters outside it become references."""

    def __init__(self, out: IO[bytes], version: str = "2.10", encoding: str = "windows-1251"):
        self.out = out
        self.version = version
        self.xml = XMLGenerator(out, encoding=encoding, short_empty_elements=True)
        self.container = version.startswith("3")

    def start(self, formed: dt.datetime) -> None:
        self.xml.startDocument()
        attributes = {VERSION_ATTRIBUTE: self.version, "ДатаФормирования": formed.isoformat()}
        if self.container:
            attributes["xmlns"] = NAMESPACE_3
        self.xml.startElement("КоммерческаяИнформация", AttributesImpl(attributes))
        if self.container:
            self.xml.startElement("Контейнер", _NONE)

    def end(self) -> None:
        if self.container:
            self.xml.endElement("Контейнер")
        self.xml.endElement("КоммерческаяИнформация")
        self.xml.endDocument()

    def _value(self, name: str, value: str, always: bool = False) -> None:
        if value or always:
            self.xml.startElement(name, _NONE)
            self.xml.characters(value)
            self.xml.endElement(name)

    def counterparty(self, item: Counterparty, *, wrapper: str = "Контрагент") -> None:
        xml = self.xml
        xml.startElement(wrapper, _NONE)
        self._value("Ид", item.onec_id, always=True)
        self._value("Наименование", item.name, always=True)
        self._value("ПолноеНаименование", item.full_name)
        if item.kind == "organization":
            self._value("ОфициальноеНаименование", item.full_name or item.name)
        else:
            self._value("Фамилия", item.family_name)
            self._value("Имя", item.given_name)
            self._value("Отчество", item.middle_name)
        self._value("ИНН", item.inn)
        self._value("КПП", item.kpp)
        for name, address in (
            (
                "ЮридическийАдрес" if item.kind == "organization" else "АдресРегистрации",
                item.legal_address,
            ),
            ("ФактическийАдрес", item.actual_address),
        ):
            if address:
                xml.startElement(name, _NONE)
                self._value("Представление", address)
                xml.endElement(name)
        if item.points:
            xml.startElement("Контакты", _NONE)
            for point in item.points:
                xml.startElement("Контакт", _NONE)
                self._value("Тип", _point_type(point))
                self._value("Значение", point.value)
                xml.endElement("Контакт")
            xml.endElement("Контакты")
        if item.representatives:
            xml.startElement("Представители", _NONE)
            for rep in item.representatives:
                xml.startElement("Представитель", _NONE)
                xml.startElement("Контрагент", _NONE)
                self._value("Отношение", rep.relation or "Контактное лицо")
                self._value("Ид", rep.onec_id)
                self._value("Наименование", rep.name)
                xml.endElement("Контрагент")
                xml.endElement("Представитель")
            xml.endElement("Представители")
        self._value("Роль", item.role)
        if item.deleted:
            self._value("ПометкаУдаления", "true")
        xml.endElement(wrapper)

    def document(self, item: Document) -> None:
        xml = self.xml
        xml.startElement("Документ", _NONE)
        for name, value in (
            ("Ид", item.onec_id),
            ("Номер", item.number),
            ("Дата", item.date),
            ("ХозОперация", item.operation),
            ("Роль", item.role),
            ("Валюта", item.currency),
            ("Курс", item.rate),
            ("Сумма", item.amount),
        ):
            self._value(name, value)
        if item.counterparties:
            xml.startElement("Контрагенты", _NONE)
            for counterparty in item.counterparties:
                self.counterparty(counterparty)
            xml.endElement("Контрагенты")
        self._value("Время", item.time)
        self._value("Комментарий", item.comment)
        if item.deleted:
            self._value("ПометкаУдаления", "true")
        if item.lines:
            xml.startElement("Товары", _NONE)
            for line in item.lines:
                xml.startElement("Товар", _NONE)
                self._value("Ид", line.onec_id)
                self._value("Наименование", line.name)
                self._value("БазоваяЕдиница", line.unit)
                self._value("ЦенаЗаЕдиницу", line.price)
                self._value("Количество", line.quantity)
                self._value("Сумма", line.amount)
                xml.endElement("Товар")
            xml.endElement("Товары")
        if item.requisites:
            xml.startElement("ЗначенияРеквизитов", _NONE)
            for name, value in item.requisites.items():
                xml.startElement("ЗначениеРеквизита", _NONE)
                self._value("Наименование", name)
                self._value("Значение", value, always=True)
                xml.endElement("ЗначениеРеквизита")
            xml.endElement("ЗначенияРеквизитов")
        xml.endElement("Документ")

    def counterparties(self, items: Iterable[Counterparty]) -> None:
        """Counterparties outside documents, in one Контрагенты list."""
        started = False
        for item in items:
            if not started:
                self.xml.startElement("Контрагенты", _NONE)
                started = True
            self.counterparty(item)
        if started:
            self.xml.endElement("Контрагенты")


def _point_type(point: ContactPoint) -> str:
    if point.kind == "email":
        return "Почта"
    return {
        "mobile": "Телефон мобильный",
        "work": "Телефон рабочий",
        "home": "Телефон домашний",
        "fax": "Факс",
    }.get(point.label, "Телефон")
