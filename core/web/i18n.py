"""Translations: gettext catalogs (``locale/<lang>/LC_MESSAGES/messages.po``) compiled in
memory with Babel when first used, so the repository holds no compiled files and a changed
catalog needs no build step. The language is the one the person chose (a cookie), else the
best match of the browser's Accept-Language, else English."""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from litestar.connection import ASGIConnection

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
LANGUAGES = {"en": "English", "ru": "Русский"}
DEFAULT = "en"
LANGUAGE_COOKIE = "kith_lang"


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language`` (English: the messages as written)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == DEFAULT or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def _accepted(header: str) -> list[str]:
    """The languages of an Accept-Language header, most wanted first. Babel negotiates
    between lists of locales but does not read the header itself."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, index, tag.strip().lower()))
    return [tag for _, _, tag in sorted(weighted)]


def choose_language(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    chosen = connection.cookies.get(LANGUAGE_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    for tag in _accepted(connection.headers.get("accept-language", "")):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT


def N_(message: str) -> str:
    """Marks a message for extraction where it is translated later (``t(request, ...)``)."""
    return message


def translator(language: str) -> Callable[[str], str]:
    """gettext of ``language`` (a code of ``LANGUAGES``), where no request is at hand."""
    return translations(language).gettext


def t(connection: ASGIConnection[Any, Any, Any, Any], message: str, **values: Any) -> str:
    """``message`` in the language of this request, with ``%(name)s`` values filled in."""
    text = translations(choose_language(connection)).gettext(message)
    return text % values if values else text
