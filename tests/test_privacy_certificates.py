"""Signed certificates: issued when a request is done, verifiable with the public key by Kith,
by the CLI, and by the plain-Python snippet of the docs; tampering is caught."""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from _privacy_workflow import cli_env, make_contact, make_user, run_services
from _threaded_http import QuietHandler, base_url, close, serve
from click.testing import CliRunner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kith.actor import Role
from kith.cli import main
from kith.privacy.requests.certificates import (
    SIGNING_KEY_FILE,
    CertificateService,
    SignedCertificate,
    canonical,
    installation_public_key,
    key_id,
    load_signing_key,
    public_key_from,
    public_key_pem,
    sign,
    verify,
)
from kith.privacy.requests.executors import EXECUTORS, RequestJob
from kith.privacy.requests.service import RequestCreate, RequestService
from kith.privacy.requests.tables import Certificate
from kith.privacy.rights.outcomes import CertificateEntry, PlannedAction
from kith.runtime import Kith

DOC = Path(__file__).parent.parent / "docs" / "compliance-certificates.md"


class ShreddingExecutor:
    async def preview(self, job: RequestJob) -> list[PlannedAction]:
        return [PlannedAction(source="kith", location="kith_contact", method="crypto_shredded")]

    async def execute(self, job: RequestJob) -> list[CertificateEntry]:
        return [
            CertificateEntry(
                source="kith", location="kith_contact", method="crypto_shredded", count=1
            ),
            CertificateEntry(
                source="kith",
                location="kith_interaction",
                method="legal_hold",
                count=2,
                ground="invoices kept for 10 years (tax law)",
            ),
            CertificateEntry(
                source="example",
                location="crm.example.net",
                method="notified",
                outcome="failed",
                detail="timeout after 3 attempts",
            ),
        ]


@pytest.fixture(autouse=True)
def executor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXECUTORS, "erasure", ShreddingExecutor())


async def finished_request(kith: Kith, email: str = "ada@example.com") -> tuple:
    contact = await make_contact(kith, "Ada Lovelace", email=email)
    officer = await make_user(kith)
    service = RequestService(kith)
    request = await service.create(RequestCreate(kind="erasure", email=email), officer)
    await service.verify(request.id, "replied from the address on file", officer)
    await service.preview(request.id, officer)
    await service.approve(request.id, officer)
    done = await service.run(request.id, officer)
    return contact, done


async def test_a_finished_request_has_a_valid_certificate(kith: Kith) -> None:
    contact, done = await finished_request(kith)
    signed = await CertificateService(kith).for_request(done.id)
    document = signed.certificate
    assert document["request"]["id"] == str(done.id)
    assert document["request"]["type"] == "erasure"
    assert document["request"]["due_on"] == done.due_on.isoformat()
    assert document["subject"] == {"type": "contact_id", "value": str(contact)}
    assert [e["method"] for e in document["entries"]] == [
        "crypto_shredded",
        "legal_hold",
        "notified",
    ]
    assert document["entries"][1]["ground"] == "invoices kept for 10 years (tax law)"
    assert document["entries"][2]["outcome"] == "failed"
    assert document["key_id"] == key_id(installation_public_key(kith.settings))

    result = verify(signed.to_json(), installation_public_key(kith.settings))
    assert result.valid and result.request_id == str(done.id)

    text = signed.to_json().decode()
    for personal in ("Ada", "Lovelace", "ada@example.com", "address on file"):
        assert personal not in text
    stored = await Certificate.select().where(Certificate.request == done.id).first()
    assert stored["document"].encode() == canonical(document)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c["entries"][0].update(count=2),
        lambda c: c["entries"][1].update(method="deleted"),
        lambda c: c["entries"].pop(2),
        lambda c: c["request"].update(due_on="2099-01-01"),
        lambda c: c["subject"].update(value="someone-else"),
        lambda c: c.update(extra="added"),
    ],
)
async def test_a_tampered_certificate_fails(kith: Kith, tamper) -> None:
    _, done = await finished_request(kith)
    signed = await CertificateService(kith).for_request(done.id)
    data = json.loads(signed.to_json())
    tamper(data["certificate"])
    result = verify(json.dumps(data).encode(), installation_public_key(kith.settings))
    assert not result.valid
    assert "does not match" in result.reason


def test_a_certificate_signed_by_another_key_fails() -> None:
    ours = Ed25519PrivateKey.generate()
    theirs = Ed25519PrivateKey.generate()
    document = {"key_id": key_id(theirs.public_key()), "request": {"id": "r1"}, "entries": []}
    result = verify(sign(document, theirs).to_json(), ours.public_key())
    assert not result.valid
    assert f"signed by key {key_id(theirs.public_key())}" in result.reason
    assert verify(b"{not json", ours.public_key()).reason.startswith("not a Kith certificate")
    bad_signature = {"certificate": document, "signature": "***"}
    assert not verify(json.dumps(bad_signature).encode(), ours.public_key()).valid


def test_the_signing_key_is_private_and_stable(tmp_path: Path) -> None:
    from kith.testing import settings_for

    settings = settings_for(tmp_path / "home")
    first = load_signing_key(settings)
    path = settings.home / SIGNING_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_signing_key(settings)
    assert key_id(first.public_key()) == key_id(again.public_key())
    os.chmod(path, 0o644)
    with pytest.raises(Exception, match="chmod 600"):
        load_signing_key(settings)


async def test_the_key_exists_after_startup(kith: Kith) -> None:
    assert (kith.settings.home / SIGNING_KEY_FILE).exists()


async def test_certificates_cannot_be_changed_in_sql(kith: Kith) -> None:
    await finished_request(kith)
    with pytest.raises(Exception, match="append-only"):
        await Certificate.raw("UPDATE kith_subject_certificate SET signature = 'x'").run()
    with pytest.raises(Exception, match="append-only"):
        await Certificate.raw("DELETE FROM kith_subject_certificate").run()


async def test_public_key_is_public_and_certificate_needs_compliance(
    kith: Kith, kith_client, kith_auth
) -> None:
    _, done = await finished_request(kith)
    key = await kith_client.get("/api/privacy/public-key")
    assert key.status_code == 200
    assert key.text.startswith("-----BEGIN PUBLIC KEY-----")
    assert key.text == public_key_pem(installation_public_key(kith.settings))

    url = f"/api/privacy/requests/{done.id}/certificate"
    assert (await kith_client.get(url, headers=await kith_auth(Role.AGENT))).status_code == 403
    officer = await kith_auth(Role.COMPLIANCE)
    fetched = await kith_client.get(url, headers=officer)
    assert fetched.status_code == 200
    checked = await kith_client.post(
        "/api/privacy/certificates/verify", json=fetched.json(), headers=officer
    )
    assert checked.json()["valid"] is True
    tampered = fetched.json()
    tampered["certificate"]["entries"][0]["count"] = 7
    checked = await kith_client.post(
        "/api/privacy/certificates/verify", json=tampered, headers=officer
    )
    assert checked.json()["valid"] is False


FIXTURE = Path(__file__).parent / "fixtures" / "certificate-v1"


def test_certificates_of_the_first_format_still_verify(tmp_path: Path) -> None:
    key = public_key_from(str(FIXTURE / "public-key.pem"))
    text = (FIXTURE / "certificate.json").read_bytes()
    assert json.loads(text)["certificate"]["format"] == "kith-certificate/1"
    assert verify(text, key).valid
    data = json.loads(text)
    data["certificate"]["entries"][1]["ground"] = "kept for 1 year"
    assert not verify(json.dumps(data).encode(), key).valid

    runner = CliRunner()
    env = {"KITH_HOME": str(tmp_path / "nowhere")}
    args = ["privacy", "certificate", "verify", str(FIXTURE / "certificate.json")]
    ok = runner.invoke(main, [*args, "--public-key", str(FIXTURE / "public-key.pem")], env=env)
    assert ok.exit_code == 0, ok.output


async def test_a_certificate_naming_a_member_twice_is_refused(
    kith: Kith, kith_client, kith_auth
) -> None:
    _, done = await finished_request(kith)
    text = (await CertificateService(kith).for_request(done.id)).to_json().decode()
    assert verify(text.encode(), installation_public_key(kith.settings)).valid
    # A reader that keeps the first of two members sees another subject; one that keeps the
    # last sees the signed one. Such a file is refused, whichever the signature covers.
    forged = text.replace(
        '"certificate": {', '"certificate": {"subject": {"type": "contact_id", "value": "x"}, ', 1
    )
    assert forged != text
    result = verify(forged.encode(), installation_public_key(kith.settings))
    assert not result.valid
    assert "'subject' appears twice" in result.reason

    checked = await kith_client.post(
        "/api/privacy/certificates/verify",
        content=forged.encode(),
        headers={**await kith_auth(Role.COMPLIANCE), "content-type": "application/json"},
    )
    assert checked.status_code == 200
    assert checked.json()["valid"] is False


async def test_non_ascii_and_markup_characters_are_signed_as_written(
    kith: Kith, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    ground = "Aufbewahrung § 147 AO <Steuer> & HGB, délai 10 ans"
    entry = CertificateEntry(
        source="kith", location="kith_interaction", method="legal_hold", count=2, ground=ground
    )

    class Holding(ShreddingExecutor):
        async def execute(self, job: RequestJob) -> list[CertificateEntry]:
            return [entry]

    monkeypatch.setitem(EXECUTORS, "erasure", Holding())
    _, done = await finished_request(kith)
    signed = await CertificateService(kith).for_request(done.id)
    document = signed.certificate
    assert document["format"] == "kith-certificate/2"
    assert document["entries"][0]["ground"] == ground
    # What is signed is the RFC 8785 form: characters as they are, nothing escaped.
    assert canonical(document) == rfc8785.dumps(document)
    stored = await Certificate.select().where(Certificate.request == done.id).first()
    assert ground in stored["document"]
    assert ground in signed.to_json().decode("utf-8")
    assert verify(signed.to_json(), installation_public_key(kith.settings)).valid

    monkeypatch.chdir(tmp_path)
    Path("certificate.json").write_bytes(signed.to_json())
    Path("kith-public-key.pem").write_text(public_key_pem(installation_public_key(kith.settings)))
    exec(compile(_doc_snippet(), str(DOC), "exec"), {"__name__": "__doc_snippet__"})
    assert f"valid certificate of request {done.id}" in capsys.readouterr().out


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_exports_and_verifies_certificates(kith_database_url: str, tmp_path: Path) -> None:
    home = tmp_path / "kith-home"
    runner, env = cli_env(kith_database_url, home)
    _, done = run_services(env, finished_request)

    key = runner.invoke(main, ["privacy", "public-key"], env=env)
    assert key.exit_code == 0, key.output
    assert key.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    key_file = tmp_path / "kith-public-key.pem"
    key_file.write_text(key.stdout)

    certificate_file = tmp_path / "certificate.json"
    shown = runner.invoke(
        main, ["privacy", "certificate", "show", str(done.id), "-o", str(certificate_file)], env=env
    )
    assert shown.exit_code == 0, shown.output

    ok = runner.invoke(main, ["privacy", "certificate", "verify", str(certificate_file)], env=env)
    assert ok.exit_code == 0, ok.output
    assert "valid" in ok.stdout and str(done.id) in ok.stdout
    ok = runner.invoke(
        main,
        ["privacy", "certificate", "verify", str(certificate_file), "--public-key", str(key_file)],
        env=env,
    )
    assert ok.exit_code == 0, ok.output

    data = json.loads(certificate_file.read_text())
    data["certificate"]["entries"][0]["method"] = "deleted"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(data))
    bad = runner.invoke(main, ["privacy", "certificate", "verify", str(tampered)], env=env)
    assert bad.exit_code == 1
    assert "NOT valid" in bad.stderr

    stranger = tmp_path / "stranger.pem"
    stranger.write_text(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    bad = runner.invoke(
        main,
        ["privacy", "certificate", "verify", str(certificate_file), "--public-key", str(stranger)],
        env=env,
    )
    assert bad.exit_code == 1
    assert "signed by key" in bad.stderr


@contextmanager
def key_served(pem: str) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 publishing ``pem`` at /kith-public-key.pem (404 elsewhere),
    as an installation's operator would; yields its base URL."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            found = self.path == "/kith-public-key.pem"
            body = pem.encode() if found else b"not here"
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = serve(Handler)
    try:
        yield base_url(server)
    finally:
        close(server)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_verifying_outside_an_installation_needs_only_the_certificate_and_a_public_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = Ed25519PrivateKey.generate()
    signer_id = key_id(signer.public_key())
    document = {"key_id": signer_id, "request": {"id": "r-outside"}, "entries": []}
    certificate = tmp_path / "certificate.json"
    certificate.write_bytes(sign(document, signer).to_json())
    key_file = tmp_path / "kith-public-key.pem"
    key_file.write_text(public_key_pem(signer.public_key()))
    # An auditor's machine: no KITH_HOME, a working directory of their own.
    workdir = tmp_path / "auditor"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    runner = CliRunner()
    env: dict[str, str | None] = {"KITH_HOME": None, "KITH_DATABASE_URL": None}

    def check(*args: str) -> Any:
        return runner.invoke(
            main, ["privacy", "certificate", "verify", str(certificate), *args], env=env
        )

    with key_served(key_file.read_text()) as site:
        for source in (str(key_file), f"{site}/kith-public-key.pem"):
            result = check("--public-key", source)
            assert result.exit_code == 0, result.output
            assert f"valid, request r-outside, signed by key {signer_id}" in result.stdout
        missing = check("--public-key", f"{site}/elsewhere.pem")
        assert missing.exit_code == 2, missing.output
        assert missing.stderr.count("\n") == 1
        assert "HTTP 404" in missing.stderr and "elsewhere.pem" in missing.stderr
    unreachable = check("--public-key", f"http://127.0.0.1:{_closed_port()}/key.pem")
    assert unreachable.exit_code == 2, unreachable.output
    assert "could not fetch" in unreachable.stderr and unreachable.stderr.count("\n") == 1
    absent = check("--public-key", str(tmp_path / "no-such-key.pem"))
    assert absent.exit_code == 2, absent.output
    assert "no-such-key.pem" in absent.stderr

    # With no key and no installation there is nothing to check against: said, not guessed.
    bare = check()
    assert bare.exit_code == 2, bare.output
    assert "--public-key" in bare.stderr and bare.stderr.count("\n") == 1
    shown = runner.invoke(main, ["privacy", "public-key"], env=env)
    assert shown.exit_code != 0
    assert "no certificate signing key" in shown.stderr
    elsewhere = tmp_path / "not-an-installation"
    bare = runner.invoke(
        main,
        ["privacy", "certificate", "verify", str(certificate)],
        env={**env, "KITH_HOME": str(elsewhere)},
    )
    assert bare.exit_code == 2, bare.output
    # Read-only commands made no home and no key, here or in the working directory.
    assert not elsewhere.exists()
    assert list(workdir.iterdir()) == []


# -- the documented snippet ----------------------------------------------------------------------


def _doc_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1, "the doc should hold exactly one Python snippet"
    return blocks[0]


def test_the_doc_snippet_needs_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(_doc_snippet())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    assert modules == {"base64", "json", "cryptography"}


async def test_the_doc_snippet_verifies_a_real_certificate_and_rejects_a_tampered_one(
    kith: Kith, tmp_path: Path, monkeypatch, capsys
) -> None:
    _, done = await finished_request(kith)
    signed = await CertificateService(kith).for_request(done.id)
    monkeypatch.chdir(tmp_path)
    Path("certificate.json").write_bytes(signed.to_json())
    Path("kith-public-key.pem").write_text(public_key_pem(installation_public_key(kith.settings)))
    snippet = compile(_doc_snippet(), str(DOC), "exec")

    exec(snippet, {"__name__": "__doc_snippet__"})
    assert f"valid certificate of request {done.id}" in capsys.readouterr().out

    tampered = SignedCertificate(
        certificate={**signed.certificate, "issued_at": "2000-01-01T00:00:00Z"},
        signature=signed.signature,
    )
    Path("certificate.json").write_bytes(tampered.to_json())
    with pytest.raises(InvalidSignature):
        exec(snippet, {"__name__": "__doc_snippet__"})

    forged = sign(signed.certificate, Ed25519PrivateKey.generate())
    Path("certificate.json").write_bytes(forged.to_json())
    with pytest.raises(InvalidSignature):
        exec(snippet, {"__name__": "__doc_snippet__"})
    assert base64.b64decode(signed.signature)  # the real one was base64 all along
