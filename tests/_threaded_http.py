"""Stand-in HTTP servers for tests: a real server on 127.0.0.1 in a daemon thread, answering
through the handler a test gives it, quiet on stderr."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A server on a free port of 127.0.0.1, serving in a thread until :func:`close`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def close(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def base_url(server: ThreadingHTTPServer | None) -> str:
    assert server is not None, "the server is not started"
    return f"http://127.0.0.1:{server.server_address[1]}"
