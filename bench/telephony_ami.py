"""AMI events per second through the Asterisk adapter, as a share of a bare reader of the same
stream.

A local replay server speaks AMI on 127.0.0.1: it takes the login, then writes a stream built
from the test suite's Asterisk 13 captures (queues, ring groups, transfers, pickups, voicemail),
repeated with fresh channel ids so that every repetition is a new set of calls. Two clients read
it in turn, each from its own connection:

- the reference: an asyncio stream reader that splits the stream into messages and each
  message into its headers, and does nothing else;
- the adapter: ``AsteriskProvider.run`` (panoramisk's framing, the translator, call events
  handed to an ``emit`` that only counts them).

The ratio adapter/reference is the figure with a target (>= 0.10; docs/performance.md).

    .venv/bin/python bench/telephony_ami.py
    .venv/bin/python bench/telephony_ami.py --repeat 100 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

from _common import print_table
from kith.plugins.telephony.asterisk import AmiTranslator, AsteriskProvider, AsteriskSettings
from kith.plugins.telephony.provider_events import CallEvent

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ami"
EOL = b"\r\n"
USER, SECRET = "bench", "bench-secret"


def stream(repeat: int) -> tuple[bytes, int, int]:
    """The wire bytes, the number of events and the number of calls they hold."""
    texts = [
        path.read_text()
        for path in sorted(FIXTURES.glob("asterisk13_*.json"))
        if "click_to_call" not in path.name
    ]
    # Not every channel group is a call (a pickup's own channel is not): count the ends.
    counter = AmiTranslator()
    chunks: list[bytes] = []
    events = 0
    calls = 0
    for index in range(repeat):
        for text in texts:
            messages = json.loads(text.replace("kithpbx-", f"r{index}-"))
            calls += sum(
                event.kind == "ended" for message in messages for event in counter.feed(message)
            )
            for message in messages:
                lines = [f"{key}: {value}" for key, value in message.items()]
                chunks.append(("\r\n".join(lines) + "\r\n\r\n").encode())
                events += 1
    return b"".join(chunks), events, calls


class ReplayServer:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.port = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/5.0.1\r\n")
        try:
            while True:
                raw = await reader.readuntil(EOL + EOL)
                headers = dict(
                    line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line
                )
                action_id = headers.get("ActionID", "")
                writer.write(f"Response: Success\r\nActionID: {action_id}\r\n\r\n".encode())
                if headers.get("Action", "").lower() == "login":
                    writer.write(self.payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            # A client that left, or the end of the run.
            pass
        finally:
            writer.close()


async def bare_reader(port: int, events: int) -> float:
    """Seconds a plain reader takes to read and split ``events`` messages."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(f"Action: Login\r\nUsername: {USER}\r\nSecret: {SECRET}\r\n\r\n".encode())
    await reader.readuntil(EOL + EOL)
    start = time.perf_counter()
    for _ in range(events):
        raw = await reader.readuntil(EOL + EOL)
        dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
    elapsed = time.perf_counter() - start
    writer.close()
    return elapsed


async def adapter(port: int, events: int, calls: int) -> tuple[float, int]:
    """Seconds the provider takes from its login to the last call's end, and call events."""
    provider = AsteriskProvider.from_settings(
        AsteriskSettings(port=port, username=USER, secret=SECRET, auth="plain")
    )
    emitted = 0
    ended = 0
    done = asyncio.Event()
    started: list[float] = []

    async def emit(event: CallEvent) -> None:
        nonlocal emitted, ended
        if not started:
            started.append(time.perf_counter())
        emitted += 1
        if event.kind == "ended":
            ended += 1
            if ended == calls:
                done.set()

    task = asyncio.create_task(provider.run(emit))
    try:
        await asyncio.wait_for(done.wait(), 600)
    finally:
        task.cancel()
    assert provider.status().events_received >= events
    return time.perf_counter() - started[0], emitted


async def measure(repeat: int, rounds: int) -> list[list[str]]:
    payload, events, calls = stream(repeat)
    replay = ReplayServer(payload)
    server = await replay.start()
    rows = []
    try:
        for round_ in range(1, rounds + 1):
            reference = await bare_reader(replay.port, events)
            took, emitted = await adapter(replay.port, events, calls)
            rows.append(
                [
                    str(round_),
                    f"{events:,}",
                    f"{events / reference:,.0f}",
                    f"{events / took:,.0f}",
                    f"{emitted:,}",
                    f"{reference / took:.2f}",
                ]
            )
    finally:
        server.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="repetitions of the captures")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    print(f"Kith Asterisk AMI benchmark, {dt.date.today().isoformat()}")
    print(f"  machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, one process")
    print()
    rows = asyncio.run(measure(options.repeat, options.rounds))
    print("AMI events/s from a local replay server (adapter / bare reader; target >= 0.10):")
    print_table(["round", "events", "bare reader/s", "adapter/s", "call events", "ratio"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
