"""No plaintext personal data anywhere: the SQLite file and its write-ahead log, a pg_dump of
the PostgreSQL database, and the logs. Plus the log redaction processor on its own."""

from __future__ import annotations

import io
import json
import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import structlog
from _privacy_storage import pg_dump_binary
from kith.logs import configure_logging, get_logger
from kith.privacy.encryption.redaction import EMAIL_MASK, PHONE_MASK, Redactor, mask_text, redactor
from kith.runtime import Kith

NAME_GIVEN = "Quintessa"
NAME_FAMILY = "Vandermolen-Ptak"
EMAIL = "Quintessa.Vandermolen@Residue-Probe.example"
EMAIL_2 = "QV.Work@Zebrafish-Labs.example"
PHONE_TYPED = "+44 (20) 7946-0321"
PHONE_E164 = "+442079460321"
PHONE_2_TYPED = "020 7946 0987"
PHONE_2_E164 = "+442079460987"
NOTE = "Zebrafish aquarium renewal discussed"
BODY = "Quintessa prefers calls after the Ptolemaic lunar almanac meeting"

NEEDLES = [
    NAME_GIVEN,
    NAME_FAMILY,
    EMAIL,
    EMAIL.lower(),
    EMAIL_2,
    EMAIL_2.lower(),
    PHONE_TYPED,
    PHONE_E164,
    PHONE_2_TYPED,
    PHONE_2_E164,
    PHONE_E164[1:],
    NOTE,
    "Ptolemaic lunar almanac",
]


@pytest.fixture
def captured_logs():
    """Kith's structured logs as JSON lines in a buffer (the processors Kith really uses)."""
    saved = structlog.get_config()
    buffer = io.StringIO()

    def configure(settings) -> io.StringIO:
        configure_logging(settings, stream=buffer)
        return buffer

    yield configure
    structlog.configure(**saved)


def _found(haystack: bytes) -> list[str]:
    lowered = haystack.lower()
    return [needle for needle in NEEDLES if needle.lower().encode() in lowered]


async def _fill(kith_client, headers: dict[str, str]) -> str:
    created = await kith_client.post(
        "/api/contacts",
        json={
            "name": f"{NAME_GIVEN} {NAME_FAMILY}",
            "given_name": NAME_GIVEN,
            "family_name": NAME_FAMILY,
            "emails": [{"address": EMAIL}, {"address": EMAIL_2, "label": "work"}],
            "phones": [{"number": PHONE_TYPED}, {"number": PHONE_2_TYPED, "label": "office"}],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    contact_id = created.json()["id"]
    note = await kith_client.post(
        f"/api/contacts/{contact_id}/interactions",
        json={"kind": "note", "summary": NOTE, "body": BODY},
        headers=headers,
    )
    assert note.status_code == 201, note.text
    changed = await kith_client.patch(
        f"/api/contacts/{contact_id}", json={"tags": ["vip"]}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    for q in (EMAIL, PHONE_TYPED, NAME_GIVEN[:5], PHONE_2_E164):
        found = await kith_client.get("/api/contacts", params={"q": q}, headers=headers)
        assert [c["id"] for c in found.json()["items"]] == [contact_id], q
    read = await kith_client.get(f"/api/contacts/{contact_id}", headers=headers)
    assert read.json()["name"] == f"{NAME_GIVEN} {NAME_FAMILY}"
    timeline = await kith_client.get(f"/api/contacts/{contact_id}/timeline", headers=headers)
    assert timeline.json()["items"][0]["body"] == BODY
    # Requests that fail on personal input are logged as well.
    bad = await kith_client.post(
        "/api/contacts",
        json={"name": "x", "emails": [{"address": EMAIL}]},
        headers=headers,
    )
    assert bad.status_code == 409
    invalid = await kith_client.post(
        "/api/contacts",
        json={"name": "y", "emails": [{"address": f"{NAME_GIVEN}.{NAME_FAMILY}@"}]},
        headers=headers,
    )
    assert invalid.status_code == 422
    return contact_id


def _log_personal_data_on_purpose(contact_id: str) -> None:
    """What careless plugin code might log: personal fields by name, addresses in messages,
    an exception whose text holds an address and a number."""
    log = get_logger("kith.test")
    log.info(
        f"mailed {EMAIL} and called {PHONE_TYPED}",
        contact_id=contact_id,
        display_name=f"{NAME_GIVEN} {NAME_FAMILY}",
        given_name=NAME_GIVEN,
        body=BODY,
        summary=NOTE,
        extra={"family_name": NAME_FAMILY, "to": [EMAIL_2.lower(), PHONE_2_E164]},
        url=f"/api/contacts?q={EMAIL.replace('@', '%40')}&p=%2B{PHONE_E164[1:]}",
    )
    try:
        raise ValueError(f"cannot deliver to {EMAIL_2} or {PHONE_2_TYPED}")
    except ValueError:
        log.exception("delivery failed", contact_id=contact_id)
    log.warning("retry", error=RuntimeError(f"{PHONE_E164} busy"))


async def test_no_plaintext_in_the_database_or_the_logs(
    kith: Kith, kith_client, kith_auth, kith_engine, captured_logs, tmp_path: Path
) -> None:
    logs = captured_logs(kith.settings)
    headers = await kith_auth("agent")
    contact_id = await _fill(kith_client, headers)
    _log_personal_data_on_purpose(contact_id)

    if kith_engine == "sqlite":
        path = kith.settings.sqlite_path
        stored = b"".join(
            Path(f"{path}{suffix}").read_bytes()
            for suffix in ("", "-wal", "-shm", "-journal")
            if Path(f"{path}{suffix}").exists()
        )
        assert Path(f"{path}-wal").exists()  # the freshest writes are still in the log
    else:
        binary = pg_dump_binary()
        if binary is None:
            pytest.fail("pg_dump is needed to scan the PostgreSQL database and was not found")
        url = urlsplit(kith.settings.database_url)
        dump = subprocess.run(
            [
                binary,
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
        stored = dump.stdout
        assert b"kith_contact_point" in stored and b"$k1$" in stored
    assert _found(stored) == []
    # The scan would have seen them: the test data is searchable where it should be.
    assert contact_id.encode() in stored

    text = logs.getvalue()
    assert text.count("\n") >= 8
    assert _found(text.encode()) == []
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(line.get("contact_id") == contact_id for line in lines)
    purposeful = next(line for line in lines if line["event"].startswith("mailed"))
    assert purposeful["event"] == f"mailed {EMAIL_MASK} and called {PHONE_MASK}"
    assert not {"display_name", "given_name", "body", "summary"} & purposeful.keys()
    assert "family_name" not in purposeful["extra"]
    failure = next(line for line in lines if line["event"] == "delivery failed")
    assert "ValueError: cannot deliver to [email] or [phone]" in failure["exception"]


# -- the processor on its own -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to Ada.Lovelace@Example.COM today", "write to [email] today"),
        ("q=ada%40example.com", "q=[email]"),
        ("Zoë@bücher.example", "[email]"),
        ("call +44 20 7946 0018 now", "call [phone] now"),
        ("e164 +442079460018.", "e164 [phone]."),
        ("typed 0044 (20) 7946-0018", "typed [phone]"),
        ("ru 8 (495) 123-45-67", "ru [phone]"),
        ("us (212) 555-0143", "us [phone]"),
        ("p=%2B442079460018", "p=[phone]"),
        ("contact 01937384-1234-7abc-8def-0123456789ab shredded", None),
        ("due 2026-11-23T10:00:00+00:00 and 2026-11-23", None),
        ("token 4f1c2a9e8b7d6c5f4e3d2c1b0a998877", None),
        ("200 OK in 12.5 ms", None),
    ],
)
def test_mask_text(text: str, expected: str | None) -> None:
    assert mask_text(text) == (text if expected is None else expected)


def test_processor_drops_personal_keys_and_keeps_ids() -> None:
    processor = Redactor({"display_name", "kith_contact.display_name", "value"})
    contact_id = str(uuid.uuid4())
    event = processor(
        None,
        "info",
        {
            "event": "saved",
            "contact_id": contact_id,
            "display_name": "Ada",
            "kith_contact.display_name": "Ada",
            "nested": {"value": "+442079460018", "kind": "phone"},
            "items": ["ada@example.com", 3],
            "timestamp": "2026-11-23T10:00:00Z",
        },
    )
    assert event == {
        "event": "saved",
        "contact_id": contact_id,
        "nested": {"kind": "phone"},
        "items": [EMAIL_MASK, 3],
        "timestamp": "2026-11-23T10:00:00Z",
    }


def test_registered_fields_are_redacted_by_the_shared_processor() -> None:
    assert {"display_name", "summary", "body", "value"} <= redactor.field_names


def test_redaction_joins_logging_configured_before_the_plugin_started(
    captured_logs, kith_settings, monkeypatch
) -> None:
    from kith import logs
    from kith.privacy.encryption.plugin import install_redaction

    monkeypatch.setattr(logs, "_extra_processors", [])
    buffer = captured_logs(kith_settings)  # as the CLI does, before Kith opens
    assert redactor not in structlog.get_config()["processors"]
    install_redaction()
    assert redactor in structlog.get_config()["processors"]
    get_logger("kith.test").info("sent to ada@example.com", given_name="Ada")
    line = json.loads(buffer.getvalue().splitlines()[-1])
    assert line["event"] == f"sent to {EMAIL_MASK}" and "given_name" not in line
    assert redactor in logs._extra_processors  # and at every later configure_logging
