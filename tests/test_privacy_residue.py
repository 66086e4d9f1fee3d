"""No plaintext personal data anywhere: the SQLite file and its write-ahead log, a pg_dump of
the PostgreSQL database, and the logs. Plus the log redaction processor on its own."""

from __future__ import annotations

import io
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import structlog
from _privacy_storage import pg_dump_binary
from kith.bootstrap import open_kith
from kith.hookspecs import hookimpl
from kith.logs import configure_logging, get_logger
from kith.personal import PersonalField
from kith.plugin_manager import load_plugin_manager
from kith.privacy.encryption.redaction import EMAIL_MASK, PHONE_MASK, Redactor, mask_text, redactor
from kith.runtime import Kith
from piccolo.columns import UUID, Text
from piccolo.conf.apps import AppConfig
from piccolo.table import Table

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
        # Seven to fifteen digits are a phone number, whatever separates them.
        ("call 1234567 now", "call [phone] now"),
        ("call 123 4567", "call [phone]"),
        ("call 123456 now", None),
        ("card 123456789012345", "card [phone]"),
        ("n 123-456-789-012-345", "n [phone]"),
        ("x 1234567890123456", None),
        ("n 123-456-789-012-3456", None),
        ("dots 020.7946.0018", "dots [phone]"),
        ("slashes 020/7946/0018", "slashes [phone]"),
        ("nbsp 020\u00a07946\u00a00018", "nbsp [phone]"),
        ("brackets (020) 7946-0018", "brackets [phone]"),
        # A "+" inside an address, as typed or in a URL.
        ("from ada+crm@example.com", "from [email]"),
        ("from ada.king+crm-2@mail.example.org.", "from [email]."),
        ("q=ada+crm%40example.com&page=2", "q=[email]&page=2"),
        ("q=ada%2Bcrm%40example.com", "q=[email]"),
        ("GET /api/contacts?q=Ada%40Example.com HTTP/1.1", "GET /api/contacts?q=[email] HTTP/1.1"),
        # A number in a URL: percent-encoded, with "+" or %20 for spaces.
        ("q=%2B44+20+7946+0018", "q=[phone]"),
        ("q=%2B44%2020%207946%200018&limit=5", "q=[phone]&limit=5"),
        ("/api/contacts?q=020+7946+0018", "/api/contacts?q=[phone]"),
        ("q=0044+20+7946+0018&page=2", "q=[phone]&page=2"),
        ("q=%28020%29%207946-0018", "q=[phone]"),
        # A URL inside a query string is encoded twice.
        ("next=%2Fsearch%3Fq%3Dada%2540example.com", "next=/search?q=[email]"),
        ("next=%2Fsearch%3Fq%3D%252B44%252020%25207946%25200018", "next=/search?q=[phone]"),
        # Percent signs that hide nothing are left as they are.
        ("100%25 of 12 rows", None),
        ("load at 45% of 1234567", "load at 45% of [phone]"),
        ("q=Studio%2054321", None),
        ("version 1.2.3+45", None),
        ("name=Ada%20Lovelace", None),
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


@pytest.fixture
def shared_redactor() -> Iterator[Redactor]:
    """The process-wide processor, its field names put back after the test: every start-up
    sets them, so a test that reads them must not depend on which start-up ran last."""
    saved = redactor.field_names
    yield redactor
    redactor.field_names = saved


def test_registered_fields_are_redacted_by_the_shared_processor(shared_redactor) -> None:
    # Whatever an earlier start-up registered, the core fields stay covered.
    shared_redactor.set_field_names([])
    assert {"display_name", "summary", "body", "value"} <= shared_redactor.field_names
    assert "kith_contact_point.value" in shared_redactor.field_names
    shared_redactor.set_field_names(["shoe_size", "test_shoes.shoe_size"])
    assert {"shoe_size", "test_shoes.shoe_size", "given_name"} <= shared_redactor.field_names


class Shoes(Table, tablename="test_redaction_shoes"):
    id = UUID(primary_key=True)
    shoe_size = Text(secret=True)


class ShoePlugin:
    """A plugin with a personal column of its own."""

    def __init__(self, tmp: Path) -> None:
        self.app = AppConfig(
            app_name="test_redaction_shoes", migrations_folder_path=tmp, table_classes=[Shoes]
        )

    @hookimpl
    def kith_register_apps(self, register) -> None:
        register(self.app)

    @hookimpl
    def kith_register_personal_fields(self, register) -> None:
        register(
            PersonalField(
                table="test_redaction_shoes",
                column="shoe_size",
                category="physical",
                purposes=("fitting",),
            )
        )


async def test_fields_a_plugin_registers_are_kept_out_of_logs(
    captured_logs, kith_settings, shared_redactor, tmp_path: Path
) -> None:
    manager = load_plugin_manager()
    manager.register(ShoePlugin(tmp_path))
    kith = open_kith(kith_settings, plugin_manager=manager)
    buffer = captured_logs(kith_settings)
    await kith.start()
    try:
        get_logger("kith.test").info(
            "fitted",
            shoe_size="44",
            extra={"test_redaction_shoes.shoe_size": "44", "kind": "boot"},
            contact_id="c-1",
        )
    finally:
        await kith.close()
    [line] = [json.loads(x) for x in buffer.getvalue().splitlines() if '"fitted"' in x]
    assert line["event"] == "fitted" and line["contact_id"] == "c-1"
    assert "shoe_size" not in line
    assert line["extra"] == {"kind": "boot"}


def test_processor_masks_every_kind_of_value() -> None:
    processor = Redactor()
    event = processor(
        None,
        "info",
        {
            "event": "mailed ada@example.com",
            "pair": ("ada@example.com", "+44 20 7946 0018"),
            "several": {"ada@example.com"},
            "frozen": frozenset({"+44 20 7946 0018"}),
            "nested": [{"to": ["ada@example.com"]}],
            "error": ValueError("no route to ada@example.com"),
            "count": 1234567,
            "exc_info": False,
            # Fields Kith writes itself are not scanned: they hold no personal data.
            "timestamp": "1234567",
            "level": "1234567",
            "logger": "1234567",
            "request_id": "1234567",
            "duration_ms": "1234567",
        },
    )
    assert event == {
        "event": f"mailed {EMAIL_MASK}",
        "pair": [EMAIL_MASK, PHONE_MASK],
        "several": [EMAIL_MASK],
        "frozen": [PHONE_MASK],
        "nested": [{"to": [EMAIL_MASK]}],
        "error": f"ValueError: no route to {EMAIL_MASK}",
        "count": 1234567,
        "timestamp": "1234567",
        "level": "1234567",
        "logger": "1234567",
        "request_id": "1234567",
        "duration_ms": "1234567",
    }


def test_processor_masks_a_traceback_before_any_renderer() -> None:
    try:
        raise RuntimeError("cannot call +44 20 7946 0018")
    except RuntimeError as error:
        event = Redactor({"body"})(
            None, "error", {"event": "failed", "exc_info": error, "body": "secret"}
        )
    assert "exc_info" not in event and "body" not in event
    assert "Traceback" in event["exception"]
    assert f"RuntimeError: cannot call {PHONE_MASK}" in event["exception"]
    assert "7946" not in event["exception"]


def test_redaction_joins_logging_configured_before_the_plugin_started(
    captured_logs, kith_settings, monkeypatch, shared_redactor
) -> None:
    from kith import logs
    from kith.privacy.encryption.plugin import install_redaction

    monkeypatch.setattr(logs, "_extra_processors", [])
    shared_redactor.set_field_names([])
    buffer = captured_logs(kith_settings)  # as the CLI does, before Kith opens
    assert redactor not in structlog.get_config()["processors"]
    install_redaction()
    assert redactor in structlog.get_config()["processors"]
    get_logger("kith.test").info("sent to ada@example.com", given_name="Ada")
    line = json.loads(buffer.getvalue().splitlines()[-1])
    assert line["event"] == f"sent to {EMAIL_MASK}" and "given_name" not in line
    assert redactor in logs._extra_processors  # and at every later configure_logging
