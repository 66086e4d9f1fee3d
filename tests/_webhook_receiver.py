"""A real HTTP receiver for webhook deliveries: a server on 127.0.0.1 in a thread that records
what it is sent and answers as each test asks."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from _threaded_http import QuietHandler, base_url, close, serve


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 in a thread. Each path answers the statuses queued for it
    (then 200), after the delay set for it; a failure with the body and ``Location`` set for
    it, if any."""

    requests: list[Received] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(
                    Received(
                        self.path,
                        {key.lower(): value for key, value in self.headers.items()},
                        body,
                        time.monotonic(),
                    )
                )
                time.sleep(receiver.delays.get(self.path, 0.0))
                queued = receiver.statuses.get(self.path) or []
                status = queued.pop(0) if queued else 200
                body = b"ok" if status < 300 else receiver.bodies.get(self.path, b"no")
                try:
                    self.send_response(status)
                    if 300 <= status < 400 and self.path in receiver.locations:
                        self.send_header("Location", receiver.locations[self.path])
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (the timeout tests)

        self.server = serve(Handler)

    def stop(self) -> None:
        close(self.server)

    def url(self, path: str) -> str:
        return base_url(self.server) + path

    def at(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]
