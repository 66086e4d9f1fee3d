"""The translation catalogs: extract the messages of the pages and views into
``locale/messages.pot`` and bring every language's ``messages.po`` up to date with it.

    python -m kith.web.catalog      # after changing a message; then translate the new ones
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po
from kith.web.i18n import DEFAULT, DOMAIN, LANGUAGES, LOCALE_DIR

PACKAGE = Path(__file__).parent
# The built-in plugins' pages are translated in the same catalogs as core's: their templates,
# the modules their page handlers are in (``pages.py``) and their contact card sections
# (``card.py``).
# Found, not imported: core imports no plugin.
PLUGIN_SOURCES = tuple(
    Path(spec.origin).parent
    for spec in map(importlib.util.find_spec, ("kith.privacy", "kith.plugins"))
    if spec is not None and spec.origin is not None
)
PLUGIN_METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**/pages.py", "python"),
    ("**/card.py", "python"),
]
# gettext's names, and the views' own: t(request, "...") and N_("...").
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "t": (2,), "N_": None}
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def extract() -> Catalog:
    """Every message the web UI shows, as the source says it."""
    catalog = Catalog(project="Kith", version="", domain=DOMAIN, charset="utf-8", fuzzy=False)
    sources = [(PACKAGE, METHODS), *((source, PLUGIN_METHODS) for source in PLUGIN_SOURCES)]
    for source, methods in sources:
        found = extract_from_dir(str(source), methods, OPTIONS, KEYWORDS, strip_comment_tags=True)
        for filename, lineno, message, comments, context in found:
            catalog.add(
                message, locations=[(filename, lineno)], auto_comments=comments, context=context
            )
    return catalog


def language_catalog(language: str) -> Catalog:
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as source:
        return read_po(source, locale=language, domain=DOMAIN)


def update() -> None:
    template = extract()
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("wb") as target:
        write_po(target, template, omit_header=True, sort_output=True, no_location=True)
    for language in LANGUAGES:
        if language == DEFAULT:
            continue
        path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        catalog = language_catalog(language) if path.exists() else Catalog(locale=language)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.project, catalog.version, catalog.fuzzy = "Kith", "", False
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as target:
            write_po(target, catalog, sort_output=True, no_location=True, ignore_obsolete=True)


if __name__ == "__main__":
    update()
