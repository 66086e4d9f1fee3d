"""Forms defined in ``[[webforms.forms]]`` of kith.toml exist once Kith starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from kith import Kith
from kith.plugins.webforms.service import FormService
from kith.settings import Settings, SettingsError
from kith.testing import settings_for

TOML = """
[webforms]
min_fill_seconds = 1

[[webforms.forms]]
id = "from-file"
title = "From the file"
allowed_origins = ["https://www.example.com"]
fields = [{ name = "email", maps_to = "email", required = true }]
purposes = [{ name = "marketing", notice = "News by email.", version = "3" }]
"""


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path) -> Settings:
    home = tmp_path / "kith-home"
    home.mkdir(exist_ok=True)
    (home / "kith.toml").write_text(TOML, encoding="utf-8")
    return settings_for(home, kith_database_url)


async def test_forms_of_the_settings_file_are_written_at_start(kith: Kith):
    form = await FormService(kith).get("from-file")
    assert form.origin == "settings" and form.active
    assert form.allowed_origins == ["https://www.example.com"]
    assert form.purposes[0].version == "3"


def test_a_bad_form_in_the_file_stops_start_up_naming_it(tmp_path: Path):
    from kith.plugin_manager import load_plugin_manager

    home = tmp_path / "home"
    home.mkdir()
    (home / "kith.toml").write_text(
        '[[webforms.forms]]\nid = "x"\ntitle = "X"\nfields = [{ name = "a", maps_to = "name" }]\n',
        encoding="utf-8",
    )
    with pytest.raises(SettingsError, match="webforms"):
        load_plugin_manager().check_settings(settings_for(home))
