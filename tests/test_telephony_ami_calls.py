"""Asterisk end to end on SQLite and PostgreSQL: a replayed AMI stream through the provider
into the call service, as ``kith worker`` runs it; calls land on the timeline with their
outcomes, and a missed call becomes a callback task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ami_server import FIXTURES, AmiServer, Event, read_json_capture
from kith.plugins.telephony.asterisk import AmiTranslator, AsteriskProvider, worker
from kith.plugins.telephony.providers_registry import providers_of
from kith.plugins.telephony.services import CallService
from kith.plugins.telephony.settings import settings_of
from kith.plugins.telephony.tables import TelephonyCall
from kith.runtime import Kith
from kith.settings import Settings
from kith.tables import Interaction
from kith.testing import settings_for

ANN = "ann@example.com"


EVENTS = (
    "asterisk13_queue_answered.json",
    "asterisk13_queue_abandoned.json",
    "asterisk13_outbound_busy.json",
)


@pytest.fixture
async def ami() -> AsyncIterator[AmiServer]:
    async with AmiServer(events=stream(*EVENTS)[0]) as server:
        yield server


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path, ami: AmiServer) -> Settings:
    home = tmp_path / "kith-home"
    home.mkdir(exist_ok=True)
    (home / "kith.toml").write_text(
        f"""
[telephony]
extensions = {{ "201" = "{ANN}", "202" = "{ANN}" }}
callback_assignee = "{ANN}"

[telephony.asterisk]
enabled = true
port = {ami.port}
username = "{ami.username}"
secret = "{ami.secret}"
""",
        encoding="utf-8",
    )
    return settings_for(home, kith_database_url)


def stream(*names: str) -> tuple[list[Event], list[str]]:
    events: list[Event] = []
    call_ids = []
    for name in names:
        capture = read_json_capture(FIXTURES / name)
        events += capture.events
        call_ids.append(capture.events[0]["Linkedid"])  # type: ignore[index]
    return events, call_ids


async def test_a_replayed_asterisk_stream_becomes_calls_on_the_timeline(kith: Kith) -> None:
    from kith import UserService

    await UserService(kith).add(ANN, "agent")
    _, (answered_id, abandoned_id, busy_id) = stream(*EVENTS)
    calls = CallService(kith)
    # As the worker does it: the bus job starts the installation's one provider.
    asterisk = settings_of(kith).asterisk
    [provider] = [p for p in providers_of(kith) if p.name == "asterisk"]
    await worker.keep_running(kith, asterisk)
    try:
        async with asyncio.timeout(20):
            while await TelephonyCall.count().where(TelephonyCall.outcome.is_not_null()) < 3:
                await asyncio.sleep(0.05)
        assert isinstance(provider, AsteriskProvider) and provider.status().connected
        status = {s.provider: s for s in await calls.status(providers_of(kith))}
        assert status["asterisk"].enabled and status["asterisk"].events > 0
    finally:
        await worker.stop(kith)

    answered = await calls.find("asterisk", answered_id)
    abandoned = await calls.find("asterisk", abandoned_id)
    busy = await calls.find("asterisk", busy_id)
    assert answered is not None and abandoned is not None and busy is not None
    assert (answered.direction, answered.outcome, answered.extension) == (
        "inbound",
        "answered",
        "202",
    )
    assert answered.queue == "support" and answered.has_recording
    assert answered.answered_at is not None and answered.ended_at is not None
    assert (abandoned.outcome, abandoned.queue) == ("missed", "sales")
    assert abandoned.callback_task_id is not None
    assert (busy.direction, busy.outcome) == ("outbound", "busy")
    # Both inbound calls came from one unknown number: one lead, with both calls on it.
    assert answered.contact_id is not None and answered.contact_id == abandoned.contact_id
    logged = await Interaction.select(Interaction.external_id).where(
        (Interaction.contact == answered.contact_id) & (Interaction.kind == "call")
    )
    assert {row["external_id"] for row in logged} == {answered_id, abandoned_id}
    # Replaying the same stream again changes nothing.
    replayed = []
    translator = AmiTranslator()
    for message in stream(*EVENTS)[0]:
        replayed += translator.feed(message)  # type: ignore[arg-type]
    for event in replayed:
        assert await calls.record(event) is None
    assert await TelephonyCall.count() == 3
