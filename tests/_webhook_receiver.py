"""A real HTTP receiver for webhook deliveries: a server on 127.0.0.1 in a thread that records
what it is sent and answers as each test asks."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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

        class Handler(BaseHTTPRequestHandler):
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

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]
