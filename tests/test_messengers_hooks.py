"""The messengers plugin's own hook and the contact card's: the reference of
``kith_messenger_adapters`` is generated like core's, a channel another package brings works
through the same webhook and replies, and the card shows a plugin's section
(``kith_contact_card_sections``), its title in the reader's language, whose form posts through
the web UI (both engines)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from _messengers import tg_post, tg_update, write_settings
from kith import InvalidInput, UserService, _hookdoc, hookimpl
from kith.http import create_app
from kith.plugins.messengers import hookspecs
from kith.plugins.messengers.adapters import (
    InboundMessage,
    Incoming,
    MessengerAdapter,
    OutgoingMessage,
)
from kith.plugins.messengers.tables import MessengerMessage
from kith.runtime import Kith
from kith.settings import Settings
from kith.tables import Contact
from kith.testing import settings_for

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "plugins" / "messengers-hooks.md"
HOOKS = _hookdoc.collect(hookspecs)
PASSWORD = "correct horse battery"


def test_the_reference_is_what_the_generator_prints():
    command = [sys.executable, "-m", "kith._hookdoc", hookspecs.__name__]
    printed = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert REFERENCE.read_text(encoding="utf-8") == printed, (
        "docs/plugins/messengers-hooks.md is out of date; run `python -m kith._hookdoc "
        "kith.plugins.messengers.hookspecs > docs/plugins/messengers-hooks.md`"
    )
    assert "## kith_messenger_adapters\n" in printed
    for hook in HOOKS:
        doc = " ".join(hook.doc.lower().split())
        assert ("may be async" in doc) if hook.may_be_async else ("sync only" in doc)
        assert hook.kind == "collecting" and "collecting" in doc


class Pigeon:
    """A channel a third-party package brings: JSON posts with a shared key."""

    channel = "pigeon"
    session_window = None

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        return headers.get("x-pigeon-key") == "coo"

    def challenge(self, query: Mapping[str, str]) -> str | None:
        return None

    def parse(self, body: bytes) -> Incoming:
        data = json.loads(body)
        if "loft" not in data:
            raise InvalidInput("no loft", field="loft")
        return Incoming(
            messages=(
                InboundMessage(
                    message_id=data["id"],
                    chat_id=data["loft"],
                    at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
                    text=data["text"],
                    sender_name="Homing Pete",
                ),
            )
        )

    async def send(self, message: OutgoingMessage) -> str:
        self.sent.append(message)
        return f"p{len(self.sent)}"

    async def connect(self, webhook_url: str) -> str:
        return "nothing to do"


PIGEON = Pigeon()


class PigeonPlugin:
    @hookimpl
    def kith_messenger_adapters(self, kith):
        return [PIGEON]


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path) -> Settings:
    home = tmp_path / "kith-home"
    # The built-in channels are on but never call out here.
    write_settings(home, "http://127.0.0.1:9")
    return settings_for(home, kith_database_url)


@pytest.mark.kith_plugins(("pigeon", PigeonPlugin()))
async def test_a_channel_from_another_plugin_takes_messages_and_sends_replies(
    kith, kith_client, kith_auth
):
    assert isinstance(PIGEON, MessengerAdapter)
    PIGEON.sent.clear()
    body = json.dumps({"id": "m1", "loft": "roof-7", "text": "Coo"}).encode()
    refused = await kith_client.post("/api/messengers/pigeon", content=body)
    assert refused.status_code == 403
    answer = await kith_client.post(
        "/api/messengers/pigeon", content=body, headers={"X-Pigeon-Key": "coo"}
    )
    assert answer.status_code == 200 and answer.json()["new"] == 1
    [lead] = await Contact.select(Contact.id, Contact.source)
    assert lead["source"] == "messengers.pigeon"
    reply = await kith_client.post(
        f"/api/contacts/{lead['id']}/messages",
        json={"text": "Coo coo"},
        headers=await kith_auth("agent"),
    )
    assert reply.status_code == 201, reply.text
    await kith.bus.drain()
    assert [(m.chat_id, m.text) for m in PIGEON.sent] == [("roof-7", "Coo coo")]


CSRF = 'name="_csrf_token" value="'


def _token(page: str) -> str:
    start = page.index(CSRF) + len(CSRF)
    return page[start : page.index('"', start)]


async def test_the_card_shows_the_conversation_and_its_reply_form_sends(kith: Kith, kith_client):
    """The messengers plugin's ``kith_contact_card_sections``: the section on the card, and
    its form through the web UI's session and CSRF check."""
    update = tg_update(1, 5550009, 1, text="Is <b>this</b> escaped?")
    assert (
        await kith_client.post("/api/messengers/telegram", **tg_post(update))
    ).status_code == 200
    [contact] = await Contact.select(Contact.id)
    await UserService(kith).add("ann@firm.example", "agent", "", PASSWORD)
    app = create_app(kith, manage_lifecycle=False)
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://kith.test"
        ) as web,
    ):
        signin = (await web.get("/signin")).text
        await web.post(
            "/signin",
            data={"_csrf_token": _token(signin), "email": "ann@firm.example", "password": PASSWORD},
        )
        card = await web.get(f"/contacts/{contact['id']}")
        assert card.status_code == 200
        assert '<h2 id="card-messages">Messages</h2>' in card.text
        assert "Is &lt;b&gt;this&lt;/b&gt; escaped?" in card.text
        # In Russian the plugin's section heading is translated like the card's own.
        russian = (
            await web.get(f"/contacts/{contact['id']}", headers={"accept-language": "ru"})
        ).text
        assert '<h2 id="card-messages">Сообщения</h2>' in russian
        assert '<h2 id="timeline">История</h2>' in russian
        target = f"/contacts/{contact['id']}/card/messages"
        assert f'action="{target}"' in card.text

        sent = await web.post(target, data={"_csrf_token": _token(card.text), "text": "Yes"})
        assert sent.status_code == 303
        empty = await web.post(target, data={"_csrf_token": _token(card.text), "text": ""})
        assert empty.status_code == 422 and "give the text" in empty.text
        forged = await web.post(target, data={"text": "No token"})
        assert forged.status_code == 403
        missing = await web.post(
            f"/contacts/{contact['id']}/card/nothing", data={"_csrf_token": _token(card.text)}
        )
        assert missing.status_code == 404
    rows = await MessengerMessage.select().where(MessengerMessage.direction == "outbound")
    assert [row["status"] for row in rows] == ["queued"]
