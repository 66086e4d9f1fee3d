"""A plugin's own pages in the web UI: its templates inside the layout, its link in the
navigation for the roles it names, and the same session, role and language handling as
core's pages (``kith_register_pages``, ``kith_register_templates``,
``kith_register_navigation``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kith import NavLink, Role, hookimpl, http
from kith.plugin_manager import PluginError, load_plugin_manager
from kith.web import N_, render
from litestar import Request, get
from litestar.response import Template
from test_web_sessions import add, browser_like, sign_in

TEMPLATES = Path(__file__).parent / "plugin_pages_templates"


@get("/visits", opt=http.roles(Role.AGENT))
async def visits_page(request: Request[Any, Any, Any]) -> Template:
    return render(request, "visits/list.html", count=3)


class Visits:
    @hookimpl
    def kith_register_pages(self, register: Callable[[Any], None]) -> None:
        register(visits_page)

    @hookimpl
    def kith_register_templates(self, register: Callable[[Path], None]) -> None:
        register(TEMPLATES)

    @hookimpl
    def kith_register_navigation(self, register: Callable[[NavLink], None]) -> None:
        register(NavLink(path="/visits", label=N_("Contacts"), roles=frozenset({Role.AGENT})))


@pytest.mark.kith_plugins(("visits", Visits()))
async def test_a_plugin_page_renders_in_the_layout_with_its_navigation_link(kith) -> None:
    agent = await add(kith, "agent")
    compliance = await add(kith, "compliance")
    async with browser_like(kith) as client:
        await sign_in(client, agent)
        page = await client.get("/visits")
        assert page.status_code == 200
        assert '<p id="visits">3 visits</p>' in page.text
        # The layout's navigation, with the plugin's link marked as the current page.
        assert '<a href="/visits" aria-current="page">' in page.text
        assert '<a href="/my-day"' in page.text
        client.cookies.set("kith_lang", "ru", domain="kith.test")
        russian = await client.get("/visits")
        assert "Контакты" in russian.text
    async with browser_like(kith) as client:
        await sign_in(client, compliance)
        assert (await client.get("/visits")).status_code == 403
        assert 'href="/visits"' not in (await client.get("/contacts")).text


def test_a_template_folder_that_is_not_there_is_refused_naming_the_plugin(tmp_path) -> None:
    class Broken:
        @hookimpl
        def kith_register_templates(self, register: Callable[[Path], None]) -> None:
            register(tmp_path / "missing")

    with pytest.raises(PluginError, match=r"broken.*not a folder"):
        load_plugin_manager().register(Broken(), "broken")


def test_a_navigation_link_must_be_a_navlink() -> None:
    class Broken:
        @hookimpl
        def kith_register_navigation(self, register: Callable[[Any], None]) -> None:
            register(("/somewhere", "Somewhere"))

    with pytest.raises(PluginError, match=r"kith\.NavLink"):
        load_plugin_manager().register(Broken(), "broken")
