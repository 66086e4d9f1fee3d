"""A stand-in Asterisk Manager Interface: a real asyncio TCP server that speaks AMI.

It sends the banner line, answers actions (Login plain and by MD5 Challenge, Ping, Originate,
Logoff) with ``Response`` messages that carry the client's ActionID, closes the connection after
a refused login as Asterisk does, and after a login pushes a stream of events: each one a header
mapping written as ``Key: Value`` lines, or raw wire text taken from a capture.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

EOL = "\r\n"
Event = Mapping[str, str] | str


def _samples() -> Path:
    """``shared/samples/ami`` beside the project (or beside a folder above it, for a work tree
    kept inside another); ``KITH_SAMPLES`` names another samples folder."""
    if os.environ.get("KITH_SAMPLES"):
        return Path(os.environ["KITH_SAMPLES"]) / "ami"
    root = Path(__file__).resolve().parents[1]
    for folder in root.parents:
        if (folder / "shared" / "samples" / "ami").is_dir():
            return folder / "shared" / "samples" / "ami"
    return root.parent / "shared" / "samples" / "ami"


SAMPLES = _samples()
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ami"


def wire(message: Event) -> bytes:
    """One AMI message as Asterisk writes it."""
    if isinstance(message, str):
        text = EOL.join(line.rstrip("\r") for line in message.strip("\n").split("\n"))
        return (text + EOL + EOL).encode()
    lines = [f"{key}: {value}" for key, value in message.items() if key != "content"]
    return (EOL.join(lines) + EOL + EOL).encode()


def parse(block: str) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for line in block.split("\n"):
        key, sep, value = line.rstrip("\r").partition(":")
        if sep:
            headers.setdefault(key.strip().lower(), []).append(value.strip())
    return headers


@dataclass
class Capture:
    """A capture read in place: the banner, the responses Asterisk gave to each action (by
    action name) and the events in order."""

    banner: str = "Asterisk Call Manager/5.0.1"
    responses: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


def read_json_capture(path: Path) -> Capture:
    """A list of header dicts, one per AMI event (``content`` is the capture tool's)."""
    return Capture(events=list(json.loads(path.read_text())))


def read_wire_capture(path: Path) -> Capture:
    """Raw AMI text of both directions: the banner, then blocks separated by blank lines."""
    text = path.read_text()
    capture = Capture()
    if text.startswith("Asterisk Call Manager/"):
        banner, _, text = text.partition("\n")
        capture.banner = banner.strip()
    rest = text
    last_action = ""
    for block in rest.split("\n\n"):
        if not block.strip():
            continue
        headers = parse(block)
        if "action" in headers:
            last_action = headers["action"][0].lower()
        elif "response" in headers and last_action:
            capture.responses[last_action] = block
            last_action = ""
        elif "event" in headers:
            capture.events.append(block)
    return capture


OriginateScript = Callable[[dict[str, str]], Iterable[Event]]


class AmiServer:
    """Listen on 127.0.0.1 at a free port; ``events`` go to every client after it logs in.

    ``responses`` (by lower-case action name) replace the server's own answer with a capture's
    block, under the client's ActionID. ``on_originate`` gives the events a successful
    Originate sets off. ``answer_pings = False`` plays a server that stopped answering.
    """

    def __init__(
        self,
        *,
        username: str = "kith",
        secret: str = "s3cret-for-tests",
        banner: str = "Asterisk Call Manager/5.0.1",
        events: Iterable[Event] = (),
        responses: Mapping[str, str] | None = None,
        on_originate: OriginateScript | None = None,
    ) -> None:
        self.username = username
        self.secret = secret
        self.banner = banner
        self.events = list(events)
        self.responses = dict(responses or {})
        self.on_originate = on_originate
        self.answer_pings = True
        self.actions: list[dict[str, str]] = []
        self.logins: list[tuple[str, bool]] = []
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0
        self.logged_in = asyncio.Event()

    @classmethod
    def replaying(cls, capture: Capture, **kwargs: object) -> AmiServer:
        return cls(
            banner=capture.banner,
            events=capture.events,
            responses=capture.responses,
            **kwargs,  # type: ignore[arg-type]
        )

    async def __aenter__(self) -> AmiServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop()
        if self._server is not None:
            await self._server.wait_closed()

    def drop(self) -> None:
        """Close every client connection, as a restarting Asterisk would."""
        for writer in list(self._writers):
            writer.close()
        self.logged_in.clear()

    def push(self, *events: Event) -> None:
        """Send events to every connected client now."""
        for writer in self._writers:
            for event in events:
                writer.write(wire(event))

    async def wait_logins(self, count: int, timeout: float = 10.0) -> None:
        async def reached() -> None:
            while len([ok for _, ok in self.logins if ok]) < count:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(reached(), timeout)

    # -- one client ---------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        challenge = ""
        try:
            writer.write((self.banner + EOL).encode())
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                headers = {k: v[-1] for k, v in parse(raw.decode()).items()}
                self.actions.append(headers)
                name = headers.get("action", "").lower()
                action_id = headers.get("actionid", "")
                if name == "challenge":
                    challenge = str(secrets.randbelow(10**9))
                    self._respond(writer, action_id, "Success", Challenge=challenge)
                elif name == "login":
                    if not self._login(writer, headers, challenge, action_id):
                        await writer.drain()
                        return
                elif name == "ping":
                    if self.answer_pings:
                        self._respond(writer, action_id, "Success", Ping="Pong", Timestamp="0")
                elif name == "originate":
                    self._originate(writer, headers, action_id)
                elif name == "logoff":
                    self._respond(writer, action_id, "Goodbye", Message="Thanks for all the fish.")
                    await writer.drain()
                    return
                else:
                    self._respond(writer, action_id, "Error", Message="Invalid/unknown command")
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _respond(
        self, writer: asyncio.StreamWriter, action_id: str, response: str, **headers: str
    ) -> None:
        message = {"Response": response, "ActionID": action_id, **headers}
        writer.write(wire(message))

    def _captured(self, writer: asyncio.StreamWriter, name: str, action_id: str) -> bool:
        block = self.responses.get(name)
        if block is None:
            return False
        lines = [
            f"ActionID: {action_id}" if line.lower().startswith("actionid:") else line
            for line in block.strip("\n").split("\n")
        ]
        writer.write(wire("\n".join(lines)))
        return True

    def _login(
        self, writer: asyncio.StreamWriter, headers: dict[str, str], challenge: str, action_id: str
    ) -> bool:
        if "login" in self.responses:
            ok = parse(self.responses["login"])["response"][0].lower() == "success"
            self._captured(writer, "login", action_id)
        else:
            ok = headers.get("username") == self.username
            if headers.get("authtype", "").lower() == "md5":
                expected = hashlib.md5((challenge + self.secret).encode()).hexdigest()
                ok = ok and bool(challenge) and headers.get("key") == expected
            else:
                ok = ok and headers.get("secret") == self.secret
            if ok:
                self._respond(writer, action_id, "Success", Message="Authentication accepted")
            else:
                self._respond(writer, action_id, "Error", Message="Authentication failed")
        self.logins.append((headers.get("username", ""), ok))
        if not ok:
            return False
        writer.write(wire({"Event": "FullyBooted", "Privilege": "system,all", "Status": "Ok"}))
        for event in self.events:
            writer.write(wire(event))
        self.logged_in.set()
        return True

    def _originate(
        self, writer: asyncio.StreamWriter, headers: dict[str, str], action_id: str
    ) -> None:
        if not self._captured(writer, "originate", action_id):
            self._respond(writer, action_id, "Success", Message="Originate successfully queued")
        if self.on_originate is not None:
            for event in self.on_originate(headers):
                writer.write(wire(event))


def stamped(events: Iterable[Mapping[str, str]], start: float | None = None) -> list[Event]:
    """Events with Asterisk's ``Timestamp`` header (``timestampevents = yes``)."""
    base = time.time() if start is None else start
    return [
        {**event, "Timestamp": f"{base + index / 1000:.6f}"} for index, event in enumerate(events)
    ]
