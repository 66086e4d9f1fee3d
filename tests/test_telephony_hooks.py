"""The telephony plugin's own hook: its reference is generated like core's, every hook is
documented as the project requires, and a provider another package brings through
``kith_telephony_providers`` places calls and shows in the status (both engines)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from _telephony import ANN, write_settings
from kith import ContactCreate, ContactService, PhoneIn, UserService, _hookdoc, hookimpl
from kith.plugins.telephony import hookspecs
from kith.plugins.telephony.providers import CallProvider
from kith.plugins.telephony.services import CallService
from kith.settings import Settings
from kith.testing import settings_for

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "plugins" / "telephony-hooks.md"
HOOKS = _hookdoc.collect(hookspecs)


def test_the_reference_is_what_the_generator_prints():
    command = [sys.executable, "-m", "kith._hookdoc", hookspecs.__name__]
    printed = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert printed == _hookdoc.render(hookspecs)
    assert REFERENCE.read_text(encoding="utf-8") == printed, (
        "docs/plugins/telephony-hooks.md is out of date; run "
        "`python -m kith._hookdoc kith.plugins.telephony.hookspecs > "
        "docs/plugins/telephony-hooks.md`"
    )
    assert "## kith_telephony_providers\n" in printed
    assert "\n### CallProvider\n" in printed


@pytest.mark.parametrize("hook", HOOKS, ids=[hook.name for hook in HOOKS])
def test_each_hook_says_how_it_is_called(hook):
    doc = " ".join(hook.doc.lower().split())
    assert hook.name.startswith("kith_")
    assert ("may be async" in doc) if hook.may_be_async else ("sync only" in doc)
    assert hook.kind == "collecting" and "collecting" in doc


class OfficePbx:
    """A provider a third-party package brings."""

    name = "office"

    def __init__(self) -> None:
        self.placed: list[tuple[str, str]] = []

    async def originate(self, *, extension: str, number: str) -> str:
        self.placed.append((extension, number))
        return f"office-{len(self.placed)}"


PBX = OfficePbx()


class OfficePlugin:
    @hookimpl
    def kith_telephony_providers(self, kith):
        return [PBX]


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path) -> Settings:
    home = tmp_path / "kith-home"
    write_settings(home, "http://127.0.0.1:9", click_to_call="office")
    return settings_for(home, kith_database_url)


@pytest.mark.kith_plugins(("office-pbx", OfficePlugin()))
async def test_a_provider_from_another_plugin_places_calls(kith, kith_client):
    assert isinstance(PBX, CallProvider)
    PBX.placed.clear()
    await UserService(kith).add(ANN, "agent")
    token = await UserService(kith).create_token(ANN)
    grace = await ContactService(kith).create(
        ContactCreate(name="Grace", phones=[PhoneIn(number="+44 20 7946 0958")])
    )
    headers = {"Authorization": f"Bearer {token.secret}"}
    answer = await kith_client.post(f"/api/contacts/{grace.id}/call", headers=headers)
    assert answer.status_code == 201, answer.text
    assert PBX.placed == [("101", "+442079460958")]
    call = await CallService(kith).find("office", "office-1")
    assert call is not None and call.contact_id == grace.id and call.direction == "outbound"
    statuses = {s.provider: s for s in await CallService(kith).status([PBX])}
    assert statuses["office"].enabled and statuses["office"].events == 1
    missing = await kith_client.post(f"/api/contacts/{uuid.uuid4()}/call", headers=headers)
    assert missing.status_code == 404
