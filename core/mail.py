"""Outgoing email: a message is queued in the caller's transaction and sent by the event bus.

``Mailer(kith).send(MailMessage(...), contact_id=...)`` writes the message (its personal parts
sealed under the contact's key) and publishes ``mail.queued`` in the same transaction, so a
rolled-back request sends nothing. The bus hands the event to core's ``kith.mail`` subscriber,
which sends it through the installation's transport (SMTP from ``[mail]``, or a plugin's through
``kith_mail_transport``); a failed send raises, and the bus retries it with backoff. A sent
message is marked sent and its content wiped, so a retry or a restart never sends it again; its
Message-ID is fixed by its id, so a receiver can drop the copy a crash between the server's
acceptance and that mark could cause.
"""

from __future__ import annotations

import datetime as dt
import email.message
import email.utils
import uuid
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec
from kith.errors import InvalidInput, NotFound
from kith.events import Event, utcnow
from kith.ids import new_id
from kith.logs import get_logger
from kith.subjects import Subscriber
from kith.tables import Mail

if TYPE_CHECKING:
    from kith.runtime import Kith
    from kith.settings import Settings

SECTION = "mail"
QUEUED = "mail.queued"
SUBSCRIBER_NAME = "kith.mail"
TABLE = "kith_mail"
PERSONAL_COLUMNS = ("recipient", "subject", "body", "html")

log = get_logger("kith.mail")


class MailSettings(msgspec.Struct, kw_only=True, frozen=True):
    """The ``[mail]`` section of ``kith.toml``: the SMTP server outgoing email goes through."""

    host: str = ""
    # 0: the usual port of the security chosen (587 STARTTLS, 465 TLS, 25 none).
    port: int = 0
    username: str = ""
    password: str = ""
    security: Literal["starttls", "tls", "none"] = "starttls"
    sender: str = msgspec.field(name="from", default="")
    timeout_seconds: float = 30.0
    # A CA bundle to trust besides the system's (a company's own mail server certificate).
    ca_file: str = ""

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


def mail_settings(settings: Settings) -> MailSettings:
    return settings.parsed(SECTION, MailSettings)


class MailMessage(msgspec.Struct, kw_only=True, frozen=True):
    """One email to one recipient: plain text, optionally with an HTML alternative."""

    to: str
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None


class MailTransport(Protocol):
    """Sends a composed message. Raise to have the bus retry it later (with backoff)."""

    async def send(self, message: email.message.EmailMessage) -> None:
        """Hand the message to the mail system; return once it has accepted it."""
        ...


def transport_for(kith: Kith) -> MailTransport:
    """A plugin's transport (``kith_mail_transport``) or SMTP from ``[mail]``."""
    if kith.plugins is not None:
        answer = kith.plugins.call_first("kith_mail_transport", settings=kith.settings)
        if answer is not None and answer.value is not None:
            transport: MailTransport = answer.value
            return transport
    from kith.mail_smtp import SmtpTransport

    return SmtpTransport(mail_settings(kith.settings))


class Mailer:
    """Queue email for sending; the bus sends it (see the module's docstring)."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    async def send(self, message: MailMessage, *, contact_id: uuid.UUID | None = None) -> uuid.UUID:
        """Queue ``message`` in the current unit of work (or a new one) and return its id.
        ``contact_id``: the data subject the message is about or addressed to; its content
        is then sealed under that person's key and erased with them."""
        from kith.normalize import normalize_email

        try:
            recipient = normalize_email(message.to)
        except ValueError as error:
            raise InvalidInput(f"not an email address: {error}", field="to") from None
        settings = mail_settings(self.kith.settings)
        if not settings.sender:
            raise InvalidInput("[mail] from is not set: Kith has no address to send from")
        mail_id = new_id()
        values: dict[str, str | None] = {
            "recipient": recipient,
            "subject": message.subject,
            "body": message.text,
            "html": message.html,
        }
        if contact_id is not None:
            values = await self.kith.protector.protect(contact_id, TABLE, mail_id, values)
        async with self.kith.unit_of_work() as uow:
            await Mail.insert(
                Mail(
                    id=mail_id,
                    contact_id=contact_id,
                    recipient=values["recipient"] or "",
                    subject=values["subject"] or "",
                    body=values["body"] or "",
                    html=values["html"],
                    reply_to=message.reply_to,
                    state="pending",
                    created_at=utcnow(),
                )
            ).run()
            uow.publish(QUEUED, contact_id, mail_id=str(mail_id))
        return mail_id

    async def state(self, mail_id: uuid.UUID) -> dict[str, object]:
        """A message's sending state: ``state``, ``attempts``, ``error``, ``sent_at``."""
        row = (
            await Mail.select(Mail.state, Mail.attempts, Mail.error, Mail.sent_at)
            .where(Mail.id == mail_id)
            .first()
            .run()
        )
        if row is None:
            raise NotFound(f"no mail {mail_id}")
        return dict(row)

    async def deliver(self, mail_id: uuid.UUID) -> bool:
        """Send one queued message unless it was sent already; True when it was sent now."""
        row = await Mail.select().where(Mail.id == mail_id).first().run()
        if row is None or row["state"] == "sent":
            # Erased with its person, or sent by an earlier attempt: nothing to do.
            return False
        values: dict[str, str | None] = {c: row[c] for c in PERSONAL_COLUMNS}
        contact_id = row["contact_id"]
        if contact_id is not None:
            values = await self.kith.protector.reveal(contact_id, TABLE, mail_id, values)
        settings = mail_settings(self.kith.settings)
        composed = compose(mail_id, settings, values, row["reply_to"])
        try:
            await transport_for(self.kith).send(composed)
        except Exception as error:
            await (
                Mail.update(
                    {
                        Mail.attempts: Mail.attempts + 1,
                        # The class and Kith's words only: a server's reply may quote the address.
                        Mail.error: f"sending failed ({type(error).__name__})",
                    }
                )
                .where(Mail.id == mail_id)
                .run()
            )
            log.warning("mail.send_failed", mail_id=str(mail_id), error=type(error).__name__)
            raise
        # Sent: the content is no longer needed, and the state keeps a retry from resending.
        await (
            Mail.update(
                {
                    Mail.state: "sent",
                    Mail.attempts: Mail.attempts + 1,
                    Mail.error: None,
                    Mail.sent_at: dt.datetime.now(dt.UTC),
                    Mail.recipient: "",
                    Mail.subject: "",
                    Mail.body: "",
                    Mail.html: None,
                }
            )
            .where(Mail.id == mail_id)
            .run()
        )
        log.info("mail.sent", mail_id=str(mail_id))
        return True


def compose(
    mail_id: uuid.UUID,
    settings: MailSettings,
    values: dict[str, str | None],
    reply_to: str | None,
) -> email.message.EmailMessage:
    """The message as it goes out; its Message-ID is derived from its id."""
    message = email.message.EmailMessage()
    message["From"] = settings.sender
    message["To"] = values["recipient"] or ""
    message["Subject"] = values["subject"] or ""
    message["Date"] = email.utils.formatdate(usegmt=True)
    domain = settings.sender.rpartition("@")[2].strip("> ") or "kith.invalid"
    message["Message-ID"] = f"<{mail_id}@{domain}>"
    if reply_to:
        message["Reply-To"] = reply_to
    message.set_content(values["body"] or "")
    if values["html"]:
        message.add_alternative(values["html"], subtype="html")
    return message


async def on_queued(kith: Kith, event: Event) -> None:
    await Mailer(kith).deliver(uuid.UUID(str(event.payload["mail_id"])))


MAIL_SUBSCRIBER = Subscriber(name=SUBSCRIBER_NAME, events=(QUEUED,), handler=on_queued)


__all__ = [
    "MAIL_SUBSCRIBER",
    "MailMessage",
    "MailSettings",
    "MailTransport",
    "Mailer",
]
