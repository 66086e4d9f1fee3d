"""A real local SMTP server for tests (aiosmtpd): STARTTLS with a throw-away certificate, an
optional login, and the messages it accepted."""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.policy
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kith test mail")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    """What the server accepted, and whether each session had switched to TLS."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    over_tls: list[bool] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append(message)
        self.over_tls.append(session.ssl is not None)
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and data.password == b"mail-secret":
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def text_of(self, index: int = -1) -> str:
        body = self.messages[index].get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())


@dataclass
class SmtpServer:
    controller: Controller
    mailbox: Mailbox
    port: int
    ca_file: Path

    def env(self, **more: str) -> dict[str, str]:
        """``settings_for`` keywords that point ``[mail]`` at this server."""
        values = {
            "mail_host": HOST,
            "mail_port": str(self.port),
            "mail_security": "starttls",
            "mail_from": "Kith <crm@firm.example>",
            "mail_ca_file": str(self.ca_file),
            "mail_username": "crm",
            "mail_password": "mail-secret",
        }
        values.update(more)
        return values

    def stop(self) -> None:
        self.controller.stop()


def start_server(folder: Path, *, starttls: bool = True) -> SmtpServer:
    """Start a server on a free port; STARTTLS offered (and required before login) when asked."""
    cert, key = self_signed(folder)
    mailbox = Mailbox()
    port = free_port()
    options: dict[str, Any] = {}
    if starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        options = {
            "tls_context": context,
            "require_starttls": True,
            "authenticator": mailbox.authenticate,
            "auth_require_tls": True,
        }
    controller = Controller(mailbox, hostname=HOST, port=port, **options)
    controller.start()
    return SmtpServer(controller=controller, mailbox=mailbox, port=port, ca_file=cert)
