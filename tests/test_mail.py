"""Outgoing email: queued in the caller's transaction, sent by the event bus through a real
local SMTP server (STARTTLS, login), retried after a failure, never sent twice."""

from __future__ import annotations

import datetime as dt
import email.message
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _smtp import SmtpServer, free_port, start_server
from kith import ContactCreate, ContactService, EmailIn, Kith, Mailer, MailMessage, hookimpl
from kith.settings import Settings
from kith.tables import Mail
from kith.testing import settings_for


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_server(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path, smtp: SmtpServer) -> Settings:
    return settings_for(tmp_path / "kith-home", kith_database_url, **smtp.env())


async def new_contact(kith: Kith) -> uuid.UUID:
    data = ContactCreate(name="Ada Lovelace", emails=[EmailIn(address="ada@example.com")])
    return (await ContactService(kith).create(data)).id


async def test_a_queued_message_is_sent_over_starttls_once(kith: Kith, smtp: SmtpServer):
    contact_id = await new_contact(kith)
    message = MailMessage(to="Ada@Example.com", subject="Welcome", text="Hello Ada")
    mail_id = await Mailer(kith).send(message, contact_id=contact_id)

    stored = await Mail.select().where(Mail.id == mail_id).first().run()
    assert stored is not None and stored["state"] == "pending"
    await kith.bus.drain()

    assert len(smtp.mailbox.messages) == 1
    sent = smtp.mailbox.messages[0]
    assert sent["To"] == "ada@example.com"
    assert sent["Subject"] == "Welcome"
    assert sent["Message-ID"] == f"<{mail_id}@firm.example>"
    assert smtp.mailbox.text_of().strip() == "Hello Ada"
    assert smtp.mailbox.over_tls == [True]
    assert smtp.mailbox.logins == ["crm"]
    row = await Mail.select().where(Mail.id == mail_id).first().run()
    assert row is not None and row["state"] == "sent"
    # Sent: nothing of the person is kept in the queue.
    assert row["recipient"] == row["body"] == row["subject"] == ""

    # Delivering the same message again (a restart replaying the event) sends nothing.
    assert await Mailer(kith).deliver(mail_id) is False
    await kith.bus.drain()
    assert len(smtp.mailbox.messages) == 1


async def test_personal_content_is_sealed_while_queued(kith: Kith, smtp: SmtpServer):
    contact_id = await new_contact(kith)
    mail_id = await Mailer(kith).send(
        MailMessage(to="ada@example.com", subject="Your quote", text="Secret offer"),
        contact_id=contact_id,
    )
    row = await Mail.select().where(Mail.id == mail_id).first().run()
    assert row is not None
    assert "ada@example.com" not in row["recipient"]
    assert "Secret offer" not in row["body"]


async def test_a_rolled_back_transaction_sends_nothing(kith: Kith, smtp: SmtpServer):
    with pytest.raises(RuntimeError):
        async with kith.unit_of_work():
            await Mailer(kith).send(MailMessage(to="a@example.com", subject="x", text="y"))
            raise RuntimeError("the request failed")
    await kith.bus.drain()
    assert smtp.mailbox.messages == []
    assert await Mail.count().run() == 0


async def test_an_address_that_is_not_one_is_refused(kith: Kith):
    from kith import InvalidInput

    with pytest.raises(InvalidInput):
        await Mailer(kith).send(MailMessage(to="not an address", subject="x", text="y"))


class FlakyTransport:
    """A plugin's transport that fails its first send, then records what it sends."""

    def __init__(self) -> None:
        self.calls = 0
        self.sent: list[email.message.EmailMessage] = []

    async def send(self, message: email.message.EmailMessage) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("provider unavailable")
        self.sent.append(message)


class TransportPlugin:
    def __init__(self) -> None:
        self.transport = FlakyTransport()

    @hookimpl
    def kith_mail_transport(self, settings: Settings) -> FlakyTransport:
        return self.transport


PLUGIN = TransportPlugin()


@pytest.mark.kith_plugins(("flaky-mail", PLUGIN))
async def test_a_plugin_transport_wins_and_a_failed_send_is_retried(kith: Kith, smtp: SmtpServer):
    PLUGIN.transport = FlakyTransport()
    mail_id = await Mailer(kith).send(MailMessage(to="b@example.com", subject="Hi", text="t"))
    await kith.bus.drain()
    state = await Mailer(kith).state(mail_id)
    assert state["state"] == "pending" and state["attempts"] == 1
    assert state["error"] == "sending failed (ConnectionError)"

    # The bus retries after its backoff.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    kith.bus.clock = lambda: later
    await kith.bus.drain()
    assert [m["To"] for m in PLUGIN.transport.sent] == ["b@example.com"]
    assert smtp.mailbox.messages == []  # the plugin's transport, not SMTP
    assert (await Mailer(kith).state(mail_id))["state"] == "sent"
    await kith.bus.drain()
    assert len(PLUGIN.transport.sent) == 1


async def test_starttls_is_required_when_asked(tmp_path: Path, kith_database_url: str):
    from kith.bootstrap import open_kith
    from kith.plugin_manager import load_plugin_manager

    plain = start_server(tmp_path, starttls=False)
    try:
        settings = settings_for(
            tmp_path / "kith-home", kith_database_url, **plain.env(mail_username="")
        )
        kith = open_kith(settings, plugin_manager=load_plugin_manager())
        await kith.start()
        try:
            mail_id = await Mailer(kith).send(
                MailMessage(to="c@example.com", subject="s", text="t")
            )
            await kith.bus.drain()
            state = await Mailer(kith).state(mail_id)
        finally:
            await kith.close()
    finally:
        plain.stop()
    # Not sent in the clear: the server did not offer STARTTLS.
    assert plain.mailbox.messages == []
    assert state["state"] == "pending"
    assert state["error"] == "sending failed (SMTPNotSupportedError)"


def test_nothing_listens_on_a_free_port():
    assert free_port() > 0
