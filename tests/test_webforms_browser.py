"""The embed snippet works in a real browser: a page on another local origin holds it,
Chromium submits it to a running ``kith serve``, and the contact appears."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _smtp import free_port
from kith import Kith
from kith.plugins.webforms.schemas import FormCreate, FormField, FormPurpose
from kith.plugins.webforms.service import FormService
from kith.privacy.rights.consent import ConsentService
from kith.services.contacts import ContactService

KITH = str(Path(sys.executable).parent / "kith")


@contextlib.contextmanager
def kith_serve(kith: Kith) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "KITH_HOME": str(kith.settings.home),
        "KITH_DATABASE_URL": kith.settings.database_url,
        "KITH_WEBFORMS_MIN_FILL_SECONDS": "1",
    }
    log = kith.settings.home / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [KITH, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"kith serve exited:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)


@contextlib.contextmanager
def website(port: int, html: str) -> Iterator[str]:
    """Another origin: a plain HTTP server with one page holding the snippet."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


async def test_chromium_submits_the_embedded_form_from_another_origin(kith: Kith, browser):
    site_port = free_port()
    site = f"http://127.0.0.1:{site_port}"
    await FormService(kith).create(
        FormCreate(
            id="demo",
            title="Ask us",
            fields=[
                FormField(name="name", maps_to="name", required=True),
                FormField(name="email", maps_to="email", type="email", required=True),
            ],
            purposes=[FormPurpose(name="marketing", notice="Email me news and offers.")],
            allowed_origins=[site],
        )
    )
    with kith_serve(kith) as base:
        snippet = httpx.get(f"{base}/f/demo/embed").text
        page_html = f"<!doctype html><html><body><h1>Our shop</h1>{snippet}</body></html>"
        with website(site_port, page_html):
            page = await browser.new_page()
            await page.goto(site + "/?utm_source=browser-test")
            await page.fill('input[name="name"]', "Grace Hopper")
            await page.fill('input[name="email"]', "grace@example.com")
            await page.check('input[name="consent_marketing"]')
            await page.wait_for_function(
                "document.querySelector('input[name=_kith_t]').value.length > 0"
            )
            await page.wait_for_timeout(1200)  # at least as long as a person takes
            await page.click('button[type="submit"]')
            reply = page.locator(".kith-form-reply")
            await reply.filter(has_text="Thank you").wait_for(timeout=10_000)
            await page.close()
    [contact_id] = await ContactService(kith).find_ids_by("email", "grace@example.com")
    contact = await ContactService(kith).get(contact_id)
    assert contact.name == "Grace Hopper"
    [event] = await ConsentService(kith).history(contact_id)
    assert event.purpose == "marketing"
