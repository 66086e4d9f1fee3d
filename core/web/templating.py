"""The Jinja environment of the pages: gettext in the request's language, autoescaping."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from kith.web.i18n import DEFAULT, translations
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig
from markupsafe import Markup

TEMPLATES = Path(__file__).parent / "templates"


@pass_context
def _gettext(context: Context, message: str, **values: Any) -> str:
    text = translations(context.get("lang", DEFAULT)).gettext(message)
    return text % values if values else text


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int, **values: Any) -> str:
    text = translations(context.get("lang", DEFAULT)).ngettext(singular, plural, n)
    return text % {"num": n, **values}


def _configure(engine: JinjaTemplateEngine) -> None:
    environment = engine.engine
    # The templates ship with the package: checking their files for changes on every render
    # costs a page a measurable share of its time.
    environment.auto_reload = False
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True
    )
    environment.filters["when"] = _when


@functools.cache
def page_gettext(language: str) -> Callable[..., Markup]:
    """``_()`` of the pages in ``language``, given to each page's context.

    It answers as the i18n extension's own ``_`` does in autoescaped templates (the message
    marked safe, its values escaped), without that ``_``'s two context lookups per message: a
    page holds dozens of messages."""
    lookup = translations(language).gettext

    def gettext(message: str, **values: Any) -> Markup:
        return Markup(lookup(message)) % values

    return gettext


def local_time(value: dt.datetime | None, timezone: str) -> str:
    """A time in the zone ``timezone``, to the minute."""
    if value is None:
        return ""
    return value.astimezone(zoneinfo.ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


@pass_context
def _when(context: Context, value: dt.datetime | None) -> str:
    """A time in the installation's zone, to the minute."""
    return local_time(value, context.get("timezone", "UTC"))


def template_config(plugin_folders: list[Path]) -> TemplateConfig[JinjaTemplateEngine]:
    """Core's templates, then the plugins' folders (``kith_register_templates``)."""
    return TemplateConfig(
        directory=[TEMPLATES, *plugin_folders],
        engine=JinjaTemplateEngine,
        engine_callback=_configure,
    )
