"""From 1C's objects to Kith's shapes: a counterparty's values field by field, and what an
order interaction says."""

from __future__ import annotations

import decimal

import msgspec
from kith import InvalidInput, normalize_email, normalize_phone
from kith.plugins.onec import fields as names
from kith.plugins.onec.commerceml import (
    ContactPoint,
    Counterparty,
    Document,
    currency_code,
    document_time,
    money,
)

# Who wins a conflict: 1C for legal details, Kith for contact details.
LEGAL_FIELDS = (
    "name",
    "given_name",
    "family_name",
    names.MIDDLE_NAME,
    names.INN,
    names.KPP,
    names.LEGAL_ADDRESS,
    names.ACTUAL_ADDRESS,
)
CONTACT_FIELDS = ("emails", "phones")
SYNCED_FIELDS = LEGAL_FIELDS + CONTACT_FIELDS
CUSTOM = (names.MIDDLE_NAME, names.INN, names.KPP, names.LEGAL_ADDRESS, names.ACTUAL_ADDRESS)


def normalised_points(
    points: list[ContactPoint], region: str
) -> tuple[list[tuple[str, str, str]], int]:
    """(kind, normalised value, label) of the emails and phones Kith can use, each once, and
    how many were not valid addresses or numbers."""
    seen: set[tuple[str, str]] = set()
    kept: list[tuple[str, str, str]] = []
    invalid = 0
    for point in points:
        try:
            value = (
                normalize_email(point.value)
                if point.kind == "email"
                else normalize_phone(point.value, region)
            )
        except InvalidInput:
            invalid += 1
            continue
        if (point.kind, value) not in seen:
            seen.add((point.kind, value))
            kept.append((point.kind, value, point.label))
    return kept, invalid


def display_name(item: Counterparty) -> str:
    """The name 1C gives; a counterparty without any (a site's anonymous buyer) is named by
    its 1C id so that it can be found."""
    return (item.name or item.full_name or f"1C counterparty {item.onec_id}")[:200]


def counterparty_values(item: Counterparty, region: str) -> dict[str, str]:
    """The synced fields of a counterparty as text; emails and phones as sorted lists."""
    points, _ = normalised_points(item.points, region)
    if item.kind == "organization":
        given, family = "", ""
    else:
        given, family = item.given_name, item.family_name
    return {
        "name": display_name(item) if item.kind == "organization" or not (given or family) else "",
        "given_name": given[:200],
        "family_name": family[:200],
        names.MIDDLE_NAME: item.middle_name[:200],
        names.INN: item.inn,
        names.KPP: item.kpp if item.kind == "organization" else "",
        names.LEGAL_ADDRESS: item.legal_address,
        names.ACTUAL_ADDRESS: item.actual_address,
        "emails": "\n".join(sorted(v for k, v, _ in points if k == "email")),
        "phones": "\n".join(sorted(v for k, v, _ in points if k == "phone")),
    }


OPERATIONS = (
    ("оплат", "Payment"),
    ("отпуск", "Shipment"),
    ("отгруз", "Shipment"),
    ("возврат", "Return"),
)


class OrderFacts(msgspec.Struct, kw_only=True):
    """What an order interaction and its detail row say, from one Документ."""

    operation: str
    number: str
    amount: decimal.Decimal | None
    currency: str
    status: str
    paid: bool
    shipped: bool
    cancelled: bool
    deleted: bool
    lines: list[dict[str, str]]
    summary: str
    body: str


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "истина", "да", "1", "yes")


def _requisite(document: Document, *keys: str) -> str | None:
    lowered = {name.lower(): value for name, value in document.requisites.items()}
    for key in keys:
        if key.lower() in lowered:
            return lowered[key.lower()]
    return None


def order_facts(document: Document, default_currency: str) -> OrderFacts:
    operation = document.operation or "Заказ товара"
    kind = next((english for word, english in OPERATIONS if word in operation.lower()), "Order")
    amount = money(document.amount)
    currency = currency_code(document.currency, default_currency)
    status = _requisite(document, "Статус заказа", "Статус") or ""
    paid = kind == "Payment" or _yes(_requisite(document, "Заказ оплачен", "Оплачен"))
    paid = paid or bool(_requisite(document, "Дата оплаты", "Дата оплаты по 1С"))
    shipped = kind == "Shipment" or _yes(_requisite(document, "Отгружен", "Заказ отгружен"))
    shipped = shipped or bool(_requisite(document, "Дата отгрузки", "Дата отгрузки по 1С"))
    cancelled = _yes(_requisite(document, "Отменен", "Отменён", "Отмена"))
    when = document_time(document)
    parts = [f"{kind} {document.number or document.onec_id}"]
    if when is not None:
        parts[0] += f" of {when.date().isoformat()}"
    if amount is not None:
        parts.append(f"{amount} {currency}")
    flags = [
        word
        for word, on in (
            ("paid", paid and kind != "Payment"),
            ("shipped", shipped and kind != "Shipment"),
            ("cancelled", cancelled),
            ("deleted in 1C", document.deleted),
        )
        if on
    ]
    if status:
        flags.insert(0, status)
    summary = ": ".join(parts) + (f" ({', '.join(flags)})" if flags else "")
    lines = [
        {
            "id": line.onec_id,
            "name": line.name,
            "quantity": line.quantity,
            "unit": line.unit,
            "price": line.price,
            "amount": line.amount,
        }
        for line in document.lines
    ]
    body = "\n".join(
        f"{line.name} × {line.quantity or '1'} {line.unit}".rstrip()
        + (f" = {line.amount}" if line.amount else "")
        for line in document.lines
    )
    if document.comment:
        body = f"{body}\n\n{document.comment}" if body else document.comment
    return OrderFacts(
        operation=operation[:50],
        number=document.number[:100],
        amount=amount,
        currency=currency,
        status=status[:200],
        paid=paid,
        shipped=shipped,
        cancelled=cancelled,
        deleted=document.deleted,
        lines=lines,
        summary=summary[:500],
        body=body[:100_000],
    )
