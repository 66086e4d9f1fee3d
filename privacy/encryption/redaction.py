"""Log redaction: a structlog processor that keeps personal data out of every log line.

It removes keys named like a registered personal field (``display_name``, ``body``,
``kith_contact.display_name``...), and masks email addresses and phone numbers inside every
string it finds: the message, other values, and the text of exceptions (which it formats itself,
so a traceback never reaches the renderer unmasked). Subjects then appear only by id.

Phone numbers are found with a pattern rather than ``phonenumbers.PhoneNumberMatcher``: the
matcher costs about 250 µs per line (every request is logged), and with the leniency needed to
catch numbers as typed it flags nearly any long digit run anyway. The pattern masks every run of
7 to 15 digits with phone-like separators (spaces, dashes, dots, slashes, brackets, pluses),
except inside ids (UUIDs, long hex) and ISO dates, which stay readable: over-masking a number in
a log line is the safe mistake. Text with percent escapes (a URL) is masked in decoded form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import structlog
from kith.personal import CORE_PERSONAL_FIELDS

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"

# The local part leaves out "=", "/" and "?" (legal, but rare) so that "q=ada@..." keeps its "q=".
_EMAIL = re.compile(r"[\w.!#$%&'*+^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_TOKENS = re.compile(
    # Kept as they are: UUIDs, long hex ids, ISO dates and times.
    r"(?P<keep>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b[0-9a-fA-F]{24,}\b"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)"
    # Phone-like: an optional + or 00, digits with spaces, dashes, dots, slashes, brackets, or
    # pluses (a space in a query string: "q=020+7946+0018").
    r"|(?P<phone>(?<![\w+])\+?\(?\d[\d\s\-().\/\u00a0+]{5,}\d(?!\w))"
)
_DIGITS = re.compile(r"\d")
# What the phone alternative of _TOKENS needs at least; most lines (a path with a UUID in it)
# have none, and then the full scan, which is costly, can change nothing.
_PHONE_RUN = re.compile(r"\d[\d\s\-().\/\u00a0+]{5,}\d")
# A URL in a query string is encoded twice; one more round costs nothing when there is none.
_DECODE_ROUNDS = 3
_NOT_SCANNED = frozenset({"timestamp", "level", "logger", "request_id", "duration_ms"})


def _phone_or_keep(match: re.Match[str]) -> str:
    keep = match.group("keep")
    if keep:
        return keep
    digits = len(_DIGITS.findall(match.group("phone")))
    return PHONE_MASK if 7 <= digits <= 15 else match.group(0)


def mask_text(text: str) -> str:
    """``text`` with email addresses and phone numbers masked."""
    if "%" in text:
        # An address or number inside a URL is percent-encoded, twice for a URL inside a query:
        # mask the decoded form, but keep the line as it was when that hides nothing (the digits
        # of "%2054321" are no phone number). Not unquote_plus: a "+" may be part of an address
        # ("ada+crm@..."), and turned into a space it would leave the start of the address
        # outside the mask; as a phone separator, the pattern reads "+" like a space.
        decoded = text
        for _ in range(_DECODE_ROUNDS):
            decoded = unquote(decoded)
        if decoded != text:
            masked = _mask(decoded)
            return text if masked == decoded else masked
    return _mask(text)


def _mask(text: str) -> str:
    if "@" in text:
        text = _EMAIL.sub(EMAIL_MASK, text)
    if _PHONE_RUN.search(text):
        text = _TOKENS.sub(_phone_or_keep, text)
    return text


class Redactor:
    """The processor; one per process, its field names set when Kith starts."""

    def __init__(self, field_names: Iterable[str] = ()) -> None:
        self.field_names: frozenset[str] = frozenset(field_names)

    def set_field_names(self, names: Iterable[str]) -> None:
        self.field_names = frozenset(names) | _core_names()

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return mask_text(value)
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items() if k not in self.field_names}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._clean(item) for item in value]
        if isinstance(value, BaseException):
            return mask_text(f"{type(value).__name__}: {value}")
        return value

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        if event_dict.get("exc_info"):
            # Format the traceback here, so that its text is masked before any renderer.
            event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
        else:
            event_dict.pop("exc_info", None)
        for key in list(event_dict):
            if key in self.field_names:
                del event_dict[key]
            elif key not in _NOT_SCANNED:
                event_dict[key] = self._clean(event_dict[key])
        return event_dict


def _core_names() -> frozenset[str]:
    return frozenset(
        {f.column for f in CORE_PERSONAL_FIELDS} | {f.key for f in CORE_PERSONAL_FIELDS}
    )


redactor = Redactor(_core_names())
