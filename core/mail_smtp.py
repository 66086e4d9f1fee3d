"""The SMTP transport of outgoing email, configured by ``[mail]`` of ``kith.toml``."""

from __future__ import annotations

import asyncio
import email.message
import smtplib
import ssl

from kith.mail import MailSettings


class MailNotConfigured(RuntimeError):
    """``[mail] host`` is not set: there is no server to send through."""


class SmtpTransport:
    """Sends through one SMTP server: STARTTLS (refusing a server that does not offer it),
    TLS from the first byte, or plain for a relay on the same machine; login when a username
    is set. :mod:`smtplib` runs in a worker thread so the event loop keeps serving."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    async def send(self, message: email.message.EmailMessage) -> None:
        if not self.settings.host:
            raise MailNotConfigured("[mail] host is not set")
        await asyncio.to_thread(self._send, message)

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.settings.ca_file:
            context.load_verify_locations(cafile=self.settings.ca_file)
        return context

    def _send(self, message: email.message.EmailMessage) -> None:
        settings = self.settings
        port = settings.effective_port
        client: smtplib.SMTP
        if settings.security == "tls":
            client = smtplib.SMTP_SSL(
                settings.host, port, timeout=settings.timeout_seconds, context=self._context()
            )
        else:
            client = smtplib.SMTP(settings.host, port, timeout=settings.timeout_seconds)
        with client:
            if settings.security == "starttls":
                # Raises SMTPNotSupportedError when the server does not offer it: the password
                # and the message never go out in the clear.
                client.starttls(context=self._context())
            if settings.username:
                client.login(settings.username, settings.password)
            client.send_message(message)
