"""Helpers shared by the data-subject-rights tests (export, erasure, suppression, restriction,
audit, retention): a person with distinctive data, requests run to the end, residue scans."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kith.actor import Actor
from kith.ids import new_id
from kith.privacy.requests.service import RequestCreate, RequestService, SubjectRequestOut
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, InteractionCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.tables import Interaction

GIVEN = "Philomena"
FAMILY = "Quackenbush-Ortolan"
EMAIL = "Philomena.Quackenbush@Erasure-Probe.example"
EMAIL_2 = "pq.backup@Ortolan-Mail.example"
PHONE = "+44 20 7946 0777"
PHONE_E164 = "+442079460777"
NOTE = "Ortolan greenhouse irrigation consultation"
BODY = "Philomena asked about the xylophone-shaped trellis"
ORDER_SUMMARY = "Invoice 2026-0042: trellis kit"

NEEDLES = [
    GIVEN,
    FAMILY,
    EMAIL,
    EMAIL.lower(),
    EMAIL_2.lower(),
    PHONE,
    PHONE_E164,
    PHONE_E164[1:],
    NOTE,
    "xylophone-shaped trellis",
]


def found_needles(haystack: bytes, needles: list[str] | None = None) -> list[str]:
    lowered = haystack.lower()
    return [n for n in (needles or NEEDLES) if n.lower().encode() in lowered]


async def make_person(
    kith: Kith, *, notes: int = 2, orders: int = 1, name_suffix: str = ""
) -> uuid.UUID:
    """A contact with the distinctive name, emails, phone, notes and orders above."""
    contact = await ContactService(kith).create(
        ContactCreate(
            name=f"{GIVEN} {FAMILY}{name_suffix}",
            given_name=GIVEN,
            family_name=FAMILY,
            emails=[EmailIn(address=EMAIL), EmailIn(address=EMAIL_2, label="backup")]
            if not name_suffix
            else [],
            phones=[PhoneIn(number=PHONE)] if not name_suffix else [],
        )
    )
    interactions = InteractionService(kith)
    for index in range(notes):
        await interactions.log(
            contact.id, InteractionCreate(kind="note", summary=f"{NOTE} {index}", body=BODY)
        )
    for index in range(orders):
        await interactions.log(
            contact.id,
            InteractionCreate(
                kind="order",
                summary=f"{ORDER_SUMMARY} #{index}",
                amount=decimal.Decimal("129.90"),
                source="onec",
                external_id=f"order-{contact.id.hex}-{index}",
            ),
        )
    return contact.id


async def bulk_interactions(
    kith: Kith, contact_id: uuid.UUID, count: int, kind: str = "call"
) -> None:
    """Many interactions fast: encrypted like the service does, inserted in batches."""
    table = Interaction._meta.tablename
    now = dt.datetime.now(dt.UTC)
    batch: list[Interaction] = []
    for index in range(count):
        row_id = new_id()
        stored = await kith.protector.protect(
            contact_id, table, row_id, {"summary": f"call {index}", "body": f"{BODY} {index}"}
        )
        batch.append(
            Interaction(
                id=row_id,
                contact=contact_id,
                kind=kind,
                occurred_at=now - dt.timedelta(minutes=index),
                source="bench",
                created_at=now,
                updated_at=now,
                **stored,
            )
        )
        if len(batch) == 500:
            await Interaction.insert(*batch).run()
            batch = []
    if batch:
        await Interaction.insert(*batch).run()


async def run_request(
    kith: Kith,
    kind: str,
    contact_id: uuid.UUID,
    officer: Actor,
    *,
    parameters: dict[str, Any] | None = None,
    before_preview: Any = None,
) -> tuple[SubjectRequestOut, SubjectRequestOut]:
    """Record, verify, preview, approve and run a request; (previewed, done)."""
    service = RequestService(kith)
    request = await service.create(
        RequestCreate(kind=kind, contact_id=contact_id, parameters=parameters or {}), officer
    )
    await service.verify(request.id, "passport checked at the desk", officer)
    if before_preview is not None:
        await before_preview(request.id)
    previewed = await service.preview(request.id, officer)
    await service.approve(request.id, officer)
    done = await service.run(request.id, officer)
    return previewed, done


def pg_dump_path() -> str:
    """pg_dump, found at run time: PATH first, then the bin folder pg_config names."""
    found = shutil.which("pg_dump")
    if found:
        return found
    config = shutil.which("pg_config")
    if config:
        bindir = subprocess.run([config, "--bindir"], capture_output=True, text=True).stdout
        candidate = Path(bindir.strip()) / "pg_dump"
        if candidate.exists():
            return str(candidate)
    raise AssertionError("pg_dump is needed to scan the PostgreSQL database and was not found")


def stored_bytes(kith: Kith, engine: str) -> bytes:
    """The whole database as stored: the SQLite file with its WAL, or a plain pg_dump."""
    if engine == "sqlite":
        path = kith.settings.sqlite_path
        return b"".join(
            Path(f"{path}{suffix}").read_bytes()
            for suffix in ("", "-wal", "-shm", "-journal")
            if Path(f"{path}{suffix}").exists()
        )
    url = urlsplit(kith.settings.database_url)
    dump = subprocess.run(
        [
            pg_dump_path(),
            "--host",
            url.hostname or "127.0.0.1",
            "--port",
            str(url.port or 5432),
            "--username",
            url.username or "postgres",
            "--no-password",
            "--format",
            "plain",
            url.path.lstrip("/"),
        ],
        capture_output=True,
        timeout=120,
        env={**os.environ, "PGPASSWORD": url.password or ""},
    )
    assert dump.returncode == 0, dump.stderr.decode()
    return dump.stdout
