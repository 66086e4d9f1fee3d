"""Call recordings kept in Kith, as a share of the plain download of the same file.

For each engine this serves one MP3-sized file from a local HTTP server speaking Twilio's
recordings API and measures, alternating rounds:

- ``download``: the file fetched with the same HTTP client, kept nowhere (the reference);
- ``fetch``: Kith's fetch of the recording (the same download, every 256 KiB piece sealed
  under the contact's key and written to the database);
- ``playback``: the stored recording read back piece by piece and decrypted (with its audit
  entry).

The ratios fetch/download and playback/download are the figures (docs/performance.md).

    .venv/bin/python bench/telephony_recordings.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/telephony_recordings.py --engines sqlite --megabytes 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from _common import bench_settings, installation, postgres_unavailable, print_table
from kith import ContactCreate, ContactService, PhoneIn
from kith.bootstrap import open_kith
from kith.plugins.telephony.provider_events import CallEvent
from kith.plugins.telephony.recordings import RecordingService
from kith.plugins.telephony.services import CallService
from kith.plugins.telephony.tables import TelephonyCall, TelephonyRecordingPiece

ENGINES = ("sqlite", "postgresql")
SID = "AC" + "0" * 32


def serve(audio: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(audio)))
            self.end_headers()
            self.wfile.write(audio)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def run_engine(home: Any, database_url: str, url: str, rounds: int) -> dict[str, float]:
    (home / "kith.toml").write_text(
        f'[telephony.twilio]\nenabled = true\naccount_sid = "{SID}"\nauth_token = "t"\n'
        f'api_url = "{url}"\n',
        encoding="utf-8",
    )
    kith = open_kith(bench_settings(home, database_url))
    await kith.start()
    timings: dict[str, list[float]] = {"download": [], "fetch": [], "playback": []}
    try:
        contact = await ContactService(kith).create(
            ContactCreate(name="Caller", phones=[PhoneIn(number="+447700900123")])
        )
        calls, recordings = CallService(kith), RecordingService(kith)
        media = f"{url}/2010-04-01/Accounts/{SID}/Recordings/RE{'a' * 32}.mp3"
        for index in range(rounds):
            started = time.perf_counter()
            async with httpx.AsyncClient() as client:
                size = len((await client.get(media)).content)
            timings["download"].append(time.perf_counter() - started)

            call_id = f"CA{index}"
            common: dict[str, Any] = {"provider": "twilio", "call_id": call_id, "at": kith_now()}
            placed = await calls.record(
                CallEvent(
                    **common,
                    key=f"{call_id}:r",
                    kind="ringing",
                    direction="outbound",
                    to_number="+447700900123",
                ),
                contact_id=contact.id,
            )
            assert placed is not None
            await calls.record(
                CallEvent(
                    **common, key=f"{call_id}:rec", kind="recording_ready", recording_ref=media
                )
            )
            started = time.perf_counter()
            assert await recordings.fetch(placed.id)
            timings["fetch"].append(time.perf_counter() - started)

            started = time.perf_counter()
            _, stored, audio = await recordings.open(placed.id)
            read = sum([len(piece) async for piece in audio])
            timings["playback"].append(time.perf_counter() - started)
            assert read == stored == size
        await TelephonyRecordingPiece.delete(force=True)
        await TelephonyCall.delete(force=True)
    finally:
        await kith.close()
    # The median round of each.
    return {name: sorted(values)[len(values) // 2] for name, values in timings.items()}


def kith_now() -> Any:
    from kith import utcnow

    return utcnow()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--megabytes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    audio = os.urandom(args.megabytes * 1024 * 1024)
    server = serve(audio)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    rows = []
    try:
        for engine in args.engines.split(","):
            if engine == "postgresql" and (reason := postgres_unavailable()):
                print(f"postgresql skipped: {reason}")
                continue
            with installation(engine) as settings:
                found = asyncio.run(
                    run_engine(settings.home, settings.database_url, url, args.rounds)
                )
            mb = args.megabytes
            rows.append(
                [
                    engine,
                    f"{mb / found['download']:.0f} MB/s",
                    f"{mb / found['fetch']:.0f} MB/s",
                    f"{mb / found['playback']:.0f} MB/s",
                    f"{found['download'] / found['fetch']:.2f}",
                    f"{found['download'] / found['playback']:.2f}",
                ]
            )
    finally:
        server.shutdown()
    print(f"{args.megabytes} MB recording, median of {args.rounds}; {platform.python_version()}")
    print_table(
        ["engine", "download", "fetch", "playback", "fetch/download", "playback/download"], rows
    )


if __name__ == "__main__":
    main()
