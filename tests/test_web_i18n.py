"""The web UI's languages: every message the pages show is in the catalogs and translated,
and the language is the person's choice, else the browser's."""

from __future__ import annotations

import pytest
from kith.web.catalog import extract, language_catalog
from kith.web.i18n import LANGUAGES, choose_language, translations
from litestar.connection import ASGIConnection


def test_the_catalogs_hold_every_message_and_russian_translates_each() -> None:
    source = {message.id for message in extract() if message.id}
    assert len(source) > 100
    russian = language_catalog("ru")
    listed = {message.id for message in russian if message.id}
    assert source - listed == set(), "run `python -m kith.web.catalog` and translate"
    assert listed - source == set(), "run `python -m kith.web.catalog` to drop old messages"
    untranslated = sorted(str(m.id) for m in russian if m.id and not m.string)
    assert untranslated == []
    for message in russian:
        if message.id and "%(" in str(message.id):
            # A translation that loses a placeholder fails at render time.
            for name in (
                "%(email)s",
                "%(role)s",
                "%(task)s",
                "%(file)s",
                "%(when)s",
                "%(name)s",
                "%(found)s",
                "%(score)s",
            ):
                assert (name in str(message.id)) == (name in str(message.string)), message.id


def test_a_translation_is_read_from_the_shipped_catalog() -> None:
    assert translations("ru").gettext("Sign in") == "Вход"
    assert translations("en").gettext("Sign in") == "Sign in"


def _connection(headers: dict[str, str]) -> ASGIConnection[object, object, object, object]:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return ASGIConnection({"type": "http", "headers": raw, "path": "/", "query_string": b""})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "en"),
        ({"accept-language": "ru-RU,ru;q=0.9,en;q=0.8"}, "ru"),
        ({"accept-language": "de-DE, en;q=0.5, ru;q=0.7"}, "ru"),
        ({"accept-language": "ru;q=0, en"}, "en"),
        ({"accept-language": "fr"}, "en"),
        ({"accept-language": "ru", "cookie": "kith_lang=en"}, "en"),
        ({"cookie": "kith_lang=ru"}, "ru"),
        ({"accept-language": "ru", "cookie": "kith_lang=xx"}, "ru"),
    ],
)
def test_the_language_is_the_persons_choice_then_the_browsers(
    headers: dict[str, str], expected: str
) -> None:
    assert choose_language(_connection(headers)) == expected
    assert expected in LANGUAGES
