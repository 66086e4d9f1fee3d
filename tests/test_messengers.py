"""The messengers plugin on SQLite and PostgreSQL, through the real app, against a stand-in
of the Telegram Bot API and the WhatsApp Cloud API: inbound messages, contact sharing,
attachments, status callbacks, replies (the 24-hour window, retries, dead letters),
verification, idempotence, concurrent senders, consent, restriction and erasure."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from _messengers import (
    BOT_TOKEN,
    TG_SECRET,
    VERIFY_TOKEN,
    StandIn,
    tg_post,
    tg_update,
    wa_post,
    wa_status,
    wa_text,
    write_settings,
)
from kith import SYSTEM, ContactCreate, ContactService, PhoneIn
from kith.plugins.messengers.schemas import MessageIn
from kith.plugins.messengers.services import SEND_ATTEMPTS, MessageService
from kith.plugins.messengers.tables import MessengerConversation, MessengerMessage
from kith.privacy.rights.erasure import ErasureService
from kith.privacy.rights.restriction import RestrictionService
from kith.runtime import Kith
from kith.settings import Settings
from kith.tables import Contact, Interaction, OutboxEvent
from kith.testing import settings_for

TG = "/api/messengers/telegram"
WA = "/api/messengers/whatsapp"
WA_ID = "447700900123"


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path, stand_in: StandIn) -> Settings:
    home = tmp_path / "kith-home"
    write_settings(home, stand_in.url)
    return settings_for(home, kith_database_url)


class Clock:
    """The bus's clock, moved on by hand to reach retries."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def events(name: str) -> list[dict[str, Any]]:
    rows = await OutboxEvent.select(OutboxEvent.payload).where(OutboxEvent.name == name)
    return [json.loads(row["payload"]) for row in rows]


async def messages_of(contact_id: uuid.UUID) -> list[dict[str, Any]]:
    return await Interaction.select().where(
        (Interaction.contact == contact_id) & (Interaction.kind == "message")
    )


async def grace(kith: Kith, number: str = "+" + WA_ID) -> uuid.UUID:
    made = await ContactService(kith).create(
        ContactCreate(name="Grace Hopper", phones=[PhoneIn(number=number, primary=True)])
    )
    return made.id


async def test_a_telegram_text_twice_is_one_lead_one_message_and_one_interaction(kith, kith_client):
    update = tg_update(1, 5550001, 7, text="Hello, do you ship to Leeds?")
    for _ in range(2):
        answer = await kith_client.post(TG, **tg_post(update))
        assert answer.status_code == 200, answer.text
    assert answer.json() == {"messages": 1, "statuses": 0, "new": 0}

    [stored] = await MessengerMessage.select()
    assert stored["text"] is not None and "Leeds" not in stored["text"]  # sealed
    lead = await ContactService(kith).get(stored["contact_id"])
    assert lead.name == "Ada Byron" and lead.source == "messengers.telegram"
    assert "lead" in lead.tags
    [logged] = await messages_of(lead.id)
    # The provider's id carries the chat: only its blind index is kept.
    assert logged["direction"] == "inbound" and "5550001" not in logged["external_id"]
    assert logged["external_id"] == MessageService(kith).message_key("telegram", "5550001:7")
    [received] = await events("message.received")
    assert received["new_lead"] is True and received["channel"] == "telegram"
    assert received["interaction_id"] == str(logged["id"])
    assert "Leeds" not in json.dumps(received)
    [read] = await MessageService(kith).messages(lead.id, SYSTEM)
    assert read.text == "Hello, do you ship to Leeds?"


@pytest.mark.parametrize("secret", [None, "wrong-secret"])
async def test_telegram_updates_without_the_secret_token_are_refused(kith, kith_client, secret):
    update = tg_update(1, 5550001, 7, text="Hello")
    answer = await kith_client.post(TG, **tg_post(update, secret=secret))
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert await MessengerMessage.count() == 0
    assert await MessengerConversation.count() == 0
    assert await Contact.count() == 0


async def test_a_shared_phone_links_the_telegram_chat_to_the_contact_holding_it(kith, kith_client):
    known = await grace(kith)
    first = tg_update(1, 5550002, 1, text="Hi")
    assert (await kith_client.post(TG, **tg_post(first))).status_code == 200
    [lead] = await Contact.select(Contact.id).where(Contact.source == "messengers.telegram")
    share = tg_update(
        2,
        5550002,
        2,
        contact={"phone_number": WA_ID, "first_name": "Ada", "user_id": 5550002},
    )
    assert (await kith_client.post(TG, **tg_post(share))).status_code == 200
    then = tg_update(3, 5550002, 3, text="It is me")
    assert (await kith_client.post(TG, **tg_post(then))).status_code == 200

    [conversation] = await MessengerConversation.select()
    assert conversation["contact_id"] == known
    rows = await MessengerMessage.select(MessengerMessage.contact_id)
    assert {row["contact_id"] for row in rows} == {known}
    texts = [m.text for m in await MessageService(kith).messages(known, SYSTEM)]
    assert sorted(texts) == ["", "Hi", "It is me"]  # re-sealed under Grace's key: readable
    assert lead["id"] != known

    # A number nobody holds becomes the lead's: WhatsApp messages from it find them.
    hello = tg_update(4, 5550005, 1, text="Hello")
    assert (await kith_client.post(TG, **tg_post(hello))).status_code == 200
    share = tg_update(
        5,
        5550005,
        2,
        contact={"phone_number": "+447700900999", "first_name": "Bo", "user_id": 5550005},
    )
    assert (await kith_client.post(TG, **tg_post(share))).status_code == 200
    [bo] = await ContactService(kith).find_ids_by("phone", "+447700900999")
    chats = await MessengerConversation.select(MessengerConversation.contact_id)
    assert bo in {row["contact_id"] for row in chats} and bo != known


async def test_photos_and_documents_are_kept_as_references(kith, kith_client):
    photo = tg_update(
        1,
        5550003,
        1,
        caption="The broken part",
        photo=[
            {"file_id": "small-id", "file_unique_id": "s", "width": 90, "height": 90},
            {"file_id": "large-id", "file_unique_id": "l", "width": 1280, "height": 960},
        ],
    )
    document = tg_update(
        2,
        5550003,
        2,
        document={"file_id": "doc-id", "file_name": "invoice.pdf", "mime_type": "application/pdf"},
    )
    for update in (photo, document):
        assert (await kith_client.post(TG, **tg_post(update))).status_code == 200
    [contact] = await Contact.select(Contact.id)
    found = await MessageService(kith).messages(contact["id"], SYSTEM)
    files = {(a.kind, a.ref, a.name) for m in found for a in m.attachments or []}
    assert files == {("photo", "large-id", None), ("document", "doc-id", "invoice.pdf")}
    assert {m.text for m in found} == {"The broken part", ""}
    stored = await MessengerMessage.select(MessengerMessage.attachments)
    assert all("large-id" not in row["attachments"] for row in stored)


async def test_whatsapp_checks_the_verify_token_and_the_signature(kith, kith_client):
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158"}
    answer = await kith_client.get(WA, params=query)
    assert answer.status_code == 200 and answer.text == "1158"
    wrong = await kith_client.get(WA, params={**query, "hub.verify_token": "guess"})
    assert wrong.status_code == 403

    payload = wa_text(WA_ID, "wamid.in1", "Hello")
    forged = await kith_client.post(WA, **wa_post(payload, secret="not-the-app-secret"))
    assert forged.status_code == 403
    unsigned = wa_post(payload)
    del unsigned["headers"]["X-Hub-Signature-256"]
    assert (await kith_client.post(WA, **unsigned)).status_code == 403
    assert await MessengerMessage.count() == 0 and await Contact.count() == 0

    garbage = wa_post({"object": "page"})
    assert (await kith_client.post(WA, **garbage)).status_code == 422
    assert (await kith_client.post("/api/messengers/viber", **garbage)).status_code == 404


async def test_twenty_concurrent_whatsapp_messages_from_one_new_number_make_one_lead(
    kith, kith_client
):
    async def write(n: int) -> int:
        answer = await kith_client.post(WA, **wa_post(wa_text(WA_ID, f"wamid.c{n}", f"#{n}")))
        return answer.status_code

    assert await asyncio.gather(*(write(n) for n in range(20))) == [200] * 20
    holders = await ContactService(kith).find_ids_by("phone", "+" + WA_ID)
    assert len(holders) == 1
    assert await MessengerConversation.count() == 1
    assert await MessengerMessage.count().where(MessengerMessage.contact_id == holders[0]) == 20
    assert len(await messages_of(holders[0])) == 20
    assert sum(e["new_lead"] for e in await events("message.received")) == 1


async def test_a_whatsapp_reply_is_sent_by_the_bus_and_follows_status_callbacks(
    kith, kith_client, kith_auth, stand_in
):
    known = await grace(kith)
    assert (
        await kith_client.post(WA, **wa_post(wa_text(WA_ID, "wamid.in1", "Hi")))
    ).status_code == 200
    headers = await kith_auth("agent")
    answer = await kith_client.post(
        f"/api/contacts/{known}/messages", json={"text": "Your order ships today"}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    queued = answer.json()
    assert queued["status"] == "queued" and queued["channel"] == "whatsapp"
    assert stand_in.seen == []  # the bus sends it, not the request

    await kith.bus.drain()
    [request] = stand_in.seen
    assert request.body["to"] == WA_ID and request.body["type"] == "text"
    assert request.body["text"]["body"] == "Your order ships today"
    [sent] = await events("message.sent")
    assert sent["message_id"] == queued["id"]
    assert sent["external_id"] == MessageService(kith).message_key("whatsapp", "wamid.out1")

    for status in ("delivered", "read", "delivered"):
        payload = wa_post(wa_status("wamid.out1", status, WA_ID))
        assert (await kith_client.post(WA, **payload)).status_code == 200
    row = (
        await MessengerMessage.select()
        .where(MessengerMessage.id == uuid.UUID(queued["id"]))
        .first()
    )
    assert row["status"] == "read"  # a late "delivered" does not go back
    assert [e["status"] for e in await events("message.status")] == ["delivered", "read"]
    outbound = [i for i in await messages_of(known) if i["direction"] == "outbound"]
    assert len(outbound) == 1


async def test_outside_the_24_hour_window_only_a_template_is_sent(
    kith, kith_client, kith_auth, stand_in
):
    known = await grace(kith)
    old = wa_text(WA_ID, "wamid.old", "Long ago")
    old["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = "1500000000"
    assert (await kith_client.post(WA, **wa_post(old))).status_code == 200
    headers = await kith_auth("agent")
    path = f"/api/contacts/{known}/messages"
    refused = await kith_client.post(path, json={"text": "Still there?"}, headers=headers)
    assert refused.status_code == 409 and "template" in refused.json()["detail"]
    assert await MessengerMessage.count().where(MessengerMessage.direction == "outbound") == 0

    template = {"name": "order_update", "language": "en_GB", "params": ["A-17"]}
    both = await kith_client.post(path, json={"text": "Hi", "template": template}, headers=headers)
    assert both.status_code == 422
    answer = await kith_client.post(path, json={"template": template}, headers=headers)
    assert answer.status_code == 201, answer.text
    await kith.bus.drain()
    [request] = stand_in.seen
    assert request.body["type"] == "template"
    assert request.body["template"]["name"] == "order_update"
    assert request.body["template"]["language"] == {"code": "en_GB"}
    assert request.body["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "A-17"}
    ]


async def test_a_failing_send_is_retried_then_dead_lettered_and_the_message_fails(
    kith, kith_client, kith_auth, stand_in
):
    clock = Clock()
    kith.bus.clock = clock
    assert (
        await kith_client.post(TG, **tg_post(tg_update(1, 5550004, 1, text="Hi")))
    ).status_code == 200
    [contact] = await Contact.select(Contact.id)
    stand_in.fail_with = [(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})] * (
        SEND_ATTEMPTS
    )
    queued = await MessageService(kith).send(
        contact["id"], msgspec_in(text="Are you there?"), SYSTEM
    )
    for _ in range(SEND_ATTEMPTS):
        await kith.bus.drain()
        clock.now += dt.timedelta(days=1)
    assert len(stand_in.seen) == SEND_ATTEMPTS
    row = await MessengerMessage.select().where(MessengerMessage.id == queued.id).first()
    assert row["status"] == "failed" and "Bad Gateway" in row["error"]
    [failed] = await events("message.status")
    assert failed["status"] == "failed"
    [dead] = await kith.bus.list_events(state="dead")
    assert dead.event.name == "message.queued"

    # A blocked bot fails at once: sending again cannot help.
    stand_in.fail_with = [(403, {"ok": False, "error_code": 403, "description": "Forbidden"})]
    again = await MessageService(kith).send(contact["id"], msgspec_in(text="Hello?"), SYSTEM)
    await kith.bus.drain()
    row = await MessengerMessage.select().where(MessengerMessage.id == again.id).first()
    assert row["status"] == "failed" and row["attempts"] == 1


def msgspec_in(**values: Any) -> MessageIn:
    return msgspec.convert(values, MessageIn)


async def test_marketing_needs_consent_and_a_restricted_contact_gets_nothing(
    kith, kith_client, kith_auth, stand_in
):
    known = await grace(kith)
    assert (
        await kith_client.post(WA, **wa_post(wa_text(WA_ID, "wamid.in1", "Hi")))
    ).status_code == 200
    headers = await kith_auth("agent")
    path = f"/api/contacts/{known}/messages"
    offer = {"text": "20% off this week", "purpose": "marketing"}
    refused = await kith_client.post(path, json=offer, headers=headers)
    assert refused.status_code == 409, refused.text

    queued = await kith_client.post(path, json={"text": "About your order"}, headers=headers)
    assert queued.status_code == 201
    await RestrictionService(kith).restrict(known, "accuracy_contested")
    await kith.bus.drain()
    assert stand_in.seen == []
    row = await MessengerMessage.select().where(MessengerMessage.direction == "outbound").first()
    assert row["status"] == "failed" and "restricted" in row["error"]
    again = await kith_client.post(path, json={"text": "Hello?"}, headers=headers)
    assert again.status_code == 409 and "restricted" in again.json()["detail"]
    # What a restricted contact writes is kept, sealed, and not processed further.
    before = len(await messages_of(known))
    later = await kith_client.post(WA, **wa_post(wa_text(WA_ID, "wamid.in2", "Still me")))
    assert later.status_code == 200
    assert await MessengerMessage.count().where(MessengerMessage.direction == "inbound") == 2
    assert len(await messages_of(known)) == before


async def test_erasing_a_sender_leaves_no_residue(kith, kith_client, kith_engine):
    secret_text = "My passport number is QX81237761"
    update = tg_update(1, 987654321987, 1, text=secret_text)
    assert (await kith_client.post(TG, **tg_post(update))).status_code == 200
    [contact] = await Contact.select(Contact.id)
    [section] = [
        result.value
        for result in await kith.plugins.call_async(
            "kith_subject_export", kith=kith, contact_id=contact["id"]
        )
        if result.value is not None and result.value.source == "messengers"
    ]
    assert section.tables["messages"][0]["text"] == secret_text
    assert section.tables["conversations"][0]["chat"] == "987654321987"

    job = await ErasureService(kith).run(contact["id"], job_id=uuid.uuid4())
    assert job.state == "done"
    assert await MessengerMessage.count() == 0 and await MessengerConversation.count() == 0
    if kith_engine == "sqlite":
        path = kith.settings.sqlite_path
        stored = b"".join(
            Path(f"{path}{suffix}").read_bytes()
            for suffix in ("", "-wal", "-shm", "-journal")
            if Path(f"{path}{suffix}").exists()
        )
        assert b"QX81237761" not in stored
        assert b"987654321987" not in stored


def test_connect_calls_set_webhook_with_the_secret(kith_cli, kith_settings, stand_in):
    env = {"KITH_HOME": str(kith_settings.home), "KITH_DATABASE_URL": kith_settings.database_url}
    result = kith_cli("messengers", "connect", "telegram", env=env)
    assert result.exit_code == 0, result.output
    [request] = stand_in.seen
    assert request.path == f"/bot{BOT_TOKEN}/setWebhook"
    assert request.body["url"] == "https://crm.example.com/api/messengers/telegram"
    assert request.body["secret_token"] == TG_SECRET
    unknown = kith_cli("messengers", "connect", "viber", env=env)
    assert unknown.exit_code == 1 and "not enabled" in unknown.output
