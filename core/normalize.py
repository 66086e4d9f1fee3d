"""Normalisation of the values people type: emails lower-cased and validated, phones to E.164."""

from __future__ import annotations

import email_validator
import phonenumbers
from kith.errors import InvalidInput


def normalize_email(value: str, field: str = "email") -> str:
    """A validated, lower-cased address; raises :class:`InvalidInput` with the reason."""
    text = value.strip()
    if not text:
        raise InvalidInput("an email address cannot be empty", field=field)
    try:
        result = email_validator.validate_email(text, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise InvalidInput(f"{text!r} is not a valid email address: {exc}", field=field) from None
    return result.normalized.lower()


def normalize_phone(value: str, region: str, field: str = "phone") -> str:
    """The E.164 form of a phone number typed in any common way (spaces, dashes, 00 or +)."""
    text = value.strip()
    if not text:
        raise InvalidInput("a phone number cannot be empty", field=field)
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(f"{value!r} is not a phone number: {exc}", field=field) from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput(
            f"{value!r} is not a possible phone number in region {region} "
            "(add the country code, like +44)",
            field=field,
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def looks_like_email(text: str) -> bool:
    return "@" in text


def looks_like_phone(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    return digits >= 5 and all(ch.isdigit() or ch in " +-().\u00a0/" for ch in text.strip())
