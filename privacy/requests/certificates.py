"""Signed certificates of what a subject request did, verifiable by anyone with the public key.

A certificate file is JSON with three members::

    {"certificate": {...}, "signature": "<base64 Ed25519 signature>", "algorithm": "Ed25519"}

The signature covers the canonical form of ``certificate``: from format
``kith-certificate/2`` on, its RFC 8785 (JSON Canonicalization Scheme) serialisation; a
``kith-certificate/1`` certificate was signed over ``json.dumps(certificate, sort_keys=True,
separators=(",", ":"), ensure_ascii=True)`` encoded as UTF-8, and still verifies. A file whose
JSON repeats a member name is refused: which of the two a reader keeps would depend on the
library, so the signed content would not be what everyone reads.

A certificate names the subject by contact id (or, for a subject Kith never held, by a keyed
hash of the address) and holds no readable personal data.
``docs/compliance-certificates.md`` shows how to verify one with plain Python.

The signing key is an Ed25519 key in ``KITH_HOME`` (mode 0600), created when Kith starts.
Verifying needs only a certificate and a public key (a PEM file, or a URL serving one): it never
creates a home or a key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from kith import __version__
from kith.errors import NotFound
from kith.events import utcnow
from kith.ids import new_id
from kith.privacy.encryption.secret_files import read_existing, read_or_create
from kith.privacy.requests.tables import Certificate
from kith.privacy.rights.outcomes import CertificateEntry
from kith.runtime import Kith

if TYPE_CHECKING:
    from kith.privacy.requests.service import SubjectRequestOut
from kith.settings import Settings

SIGNING_KEY_FILE = "certificate-signing-key.pem"
FORMAT = "kith-certificate/2"
FORMAT_V1 = "kith-certificate/1"
ALGORITHM = "Ed25519"
# A PEM public key is a few hundred bytes; a URL answering more is not serving one.
PUBLIC_KEY_MAX_BYTES = 64 * 1024
PUBLIC_KEY_FETCH_TIMEOUT_S = 10.0


class CertificateError(ValueError):
    """A certificate file that cannot be read or does not verify; the message says why."""


class SignedCertificate(msgspec.Struct, kw_only=True):
    """A certificate as it is stored and handed out."""

    certificate: dict[str, Any]
    signature: str
    algorithm: str = ALGORITHM

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2) + b"\n"


class Verification(msgspec.Struct, kw_only=True):
    valid: bool
    key_id: str | None
    request_id: str | None
    reason: str | None = None


def canonical(document: dict[str, Any]) -> bytes:
    """The exact bytes a signature covers, by the document's format (see the module doc)."""
    form = document.get("format", FORMAT)
    if form == FORMAT_V1:
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ).encode("utf-8")
    if form != FORMAT:
        raise CertificateError(f"certificate format {form!r} is not one this Kith knows")
    try:
        return rfc8785.dumps(document)
    except rfc8785.CanonicalizationError as exc:
        raise CertificateError(f"the certificate cannot be canonicalised ({exc})") from None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise CertificateError(f"the member {name!r} appears twice in one object")
        document[name] = value
    return document


def parse(data: bytes | str) -> dict[str, Any]:
    """A certificate file's JSON, refusing an object that names a member twice."""
    parsed = json.loads(data, object_pairs_hook=_unique_members)
    if not isinstance(parsed, dict):
        raise CertificateError("not a JSON object")
    return parsed


def _new_private_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def signing_key_path(settings: Settings) -> Path:
    return settings.home / SIGNING_KEY_FILE


def _private_key(pem: bytes, settings: Settings) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise CertificateError(f"{signing_key_path(settings)} does not hold an Ed25519 key")
    return key


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The installation's signing key, created (mode 0600) the first time it is needed."""
    return _private_key(read_or_create(signing_key_path(settings), _new_private_key_pem), settings)


def existing_public_key(settings: Settings) -> Ed25519PublicKey:
    """The installation's public key, read from its signing key; :class:`CertificateError`
    when ``KITH_HOME`` holds none (a read never creates one)."""
    path = signing_key_path(settings)
    pem = read_existing(path)
    if pem is None:
        raise CertificateError(
            f"{settings.home} holds no certificate signing key ({SIGNING_KEY_FILE}): it is not "
            "a Kith installation, or Kith has not started there yet"
        )
    return _private_key(pem, settings).public_key()


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint: the first 16 bytes of SHA-256 over the raw public key, in hex."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def installation_public_key(settings: Settings) -> Ed25519PublicKey:
    return load_signing_key(settings).public_key()


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise CertificateError(f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CertificateError("the public key is not an Ed25519 key")
    return key


def fetch_public_key(url: str) -> Ed25519PublicKey:
    """The public key served at ``url`` (an installation's ``/api/privacy/public-key``, or
    wherever its operator published the PEM file)."""
    try:
        with (
            httpx.Client(timeout=PUBLIC_KEY_FETCH_TIMEOUT_S, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise CertificateError(f"{url} answered HTTP {response.status_code}, not a key")
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > PUBLIC_KEY_MAX_BYTES:
                    raise CertificateError(f"{url} answered more than a public key")
    except httpx.HTTPError as exc:
        raise CertificateError(f"could not fetch {url}: {type(exc).__name__}: {exc}") from None
    try:
        return load_public_key(body)
    except CertificateError as exc:
        raise CertificateError(f"{url}: {exc}") from None


def public_key_from(source: str) -> Ed25519PublicKey:
    """A public key from a PEM file or from an ``http(s)://`` URL serving one."""
    if source.lower().startswith(("http://", "https://")):
        return fetch_public_key(source)
    path = Path(source)
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(f"{source}: no such file") from None
    except OSError as exc:
        raise CertificateError(f"{source}: cannot be read ({exc.strerror})") from None
    try:
        return load_public_key(pem)
    except CertificateError as exc:
        raise CertificateError(f"{source}: {exc}") from None


def _time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _entry(entry: CertificateEntry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "source": entry.source,
        "location": entry.location,
        "method": entry.method,
        "outcome": entry.outcome,
        "count": int(entry.count),
        "time": _time(entry.at),
    }
    if entry.ground:
        item["ground"] = entry.ground
    if entry.detail:
        item["detail"] = entry.detail
    return item


def subject_reference(request: SubjectRequestOut, lookup: str | None) -> dict[str, str]:
    """How a certificate names its subject: the contact id, never a name or an address."""
    if request.contact_id is not None:
        return {"type": "contact_id", "value": str(request.contact_id)}
    return {"type": f"keyed_hash_of_{request.subject_kind}", "value": lookup or ""}


def build_document(
    request: SubjectRequestOut,
    entries: list[CertificateEntry],
    *,
    lookup: str | None,
    signing_key_id: str,
    issued_at: dt.datetime,
    certificate_id: uuid.UUID,
) -> dict[str, Any]:
    """The certificate's content (unsigned)."""
    return {
        "format": FORMAT,
        "certificate_id": str(certificate_id),
        "issuer": f"Kith {__version__}",
        "key_id": signing_key_id,
        "issued_at": _time(issued_at),
        "request": {
            "id": str(request.id),
            "type": request.kind,
            "received_on": request.received_on.isoformat(),
            "due_on": request.due_on.isoformat(),
            "extension_months": request.extension_months,
            "identity_verified_by": request.identity_verified_by,
            "previewed_by": request.previewed_by,
            "approved_by": request.approved_by,
            "completed_at": _time(request.closed_at),
        },
        "subject": subject_reference(request, lookup),
        "entries": [_entry(entry) for entry in entries],
    }


def sign(document: dict[str, Any], key: Ed25519PrivateKey) -> SignedCertificate:
    signature = key.sign(canonical(document))
    return SignedCertificate(
        certificate=document, signature=base64.b64encode(signature).decode("ascii")
    )


def verify(signed: bytes | dict[str, Any], public_key: Ed25519PublicKey) -> Verification:
    """Check a certificate file's signature against ``public_key``; never raises for a bad
    certificate, it says why in ``reason``."""
    not_kith = "not a Kith certificate (expected certificate and signature members)"
    try:
        data = parse(signed) if isinstance(signed, bytes | str) else signed
        document = data["certificate"]
        signature = base64.b64decode(data["signature"], validate=True)
    except CertificateError as exc:
        return Verification(valid=False, key_id=None, request_id=None, reason=f"{not_kith}: {exc}")
    except (ValueError, KeyError, TypeError):
        return Verification(valid=False, key_id=None, request_id=None, reason=not_kith)
    if not isinstance(document, dict):
        return Verification(valid=False, key_id=None, request_id=None, reason="no certificate")
    stated_key = document.get("key_id")
    request_id = (document.get("request") or {}).get("id")
    try:
        public_key.verify(signature, canonical(document))
    except CertificateError as exc:
        return Verification(valid=False, key_id=stated_key, request_id=request_id, reason=str(exc))
    except InvalidSignature:
        reason = "the signature does not match: the certificate was changed or signed by "
        reason += "another key"
        if stated_key and stated_key != key_id(public_key):
            reason = (
                f"it was signed by key {stated_key}, not by this public key ({key_id(public_key)})"
            )
        return Verification(valid=False, key_id=stated_key, request_id=request_id, reason=reason)
    return Verification(valid=True, key_id=stated_key, request_id=request_id)


class CertificateService:
    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    async def issue(
        self, request: SubjectRequestOut, entries: list[CertificateEntry]
    ) -> SignedCertificate:
        """Sign and store the certificate of a finished request (inside its unit of work)."""
        from kith.privacy.requests.tables import SubjectRequest

        key = load_signing_key(self.kith.settings)
        signing_key_id = key_id(key.public_key())
        row = (
            await SubjectRequest.select(SubjectRequest.subject_lookup)
            .where(SubjectRequest.id == request.id)
            .first()
        )
        certificate_id = new_id()
        issued_at = utcnow()
        document = build_document(
            request,
            entries,
            lookup=row["subject_lookup"] if row else None,
            signing_key_id=signing_key_id,
            issued_at=issued_at,
            certificate_id=certificate_id,
        )
        signed = sign(document, key)
        await Certificate.insert(
            Certificate(
                id=certificate_id,
                request=request.id,
                document=canonical(document).decode("utf-8"),
                signature=signed.signature,
                key_id=signing_key_id,
                issued_at=issued_at,
            )
        ).run()
        return signed

    async def for_request(self, request_id: uuid.UUID) -> SignedCertificate:
        row = (
            await Certificate.select()
            .where(Certificate.request == request_id)
            .order_by(Certificate.issued_at, ascending=False)
            .first()
        )
        if row is None:
            raise NotFound(
                f"request {request_id} has no certificate; one is issued when a request is done"
            )
        return SignedCertificate(certificate=parse(row["document"]), signature=row["signature"])

    def public_key_pem(self) -> str:
        return public_key_pem(installation_public_key(self.kith.settings))

    def verify(self, signed: bytes, public_key: bytes | None = None) -> Verification:
        key = (
            load_public_key(public_key)
            if public_key is not None
            else installation_public_key(self.kith.settings)
        )
        return verify(signed, key)
