"""Shared by the telephony tests: a stand-in provider API on 127.0.0.1 that speaks Twilio's,
Zadarma's and Mango Office's HTTP APIs, the installation's [telephony] settings, and the
providers' request signing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from _threaded_http import QuietHandler, base_url, close, serve
from kith.plugins.telephony import mango, twilio, zadarma

TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "twilio-auth-token-for-tests"
PUBLIC_URL = "https://crm.example.com"
ZADARMA_KEY = "zadarma-key"
ZADARMA_SECRET = "zadarma-secret-for-tests"
MANGO_KEY = "mango-vpbx-key"
MANGO_SALT = "mango-salt-for-tests"
ANN = "ann@firm.example"
BOB = "bob@firm.example"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class StandIn:
    """Answers as the providers' APIs do: Twilio's Calls and Recordings, Zadarma's callback
    request (checking its Authorization signature), Mango's commands/callback (checking sign)."""

    seen: list[Seen] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def _answer(self, method: str, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length", "0"))
        body = handler.rfile.read(length).decode() if length else ""
        query = dict(parse_qsl(parts.query))
        form = dict(parse_qsl(body))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        self.seen.append(Seen(method, parts.path, query, headers, form))
        path = parts.path
        if path.endswith("/Calls.json") and method == "POST":
            return 201, {"sid": "CA" + "1" * 32, "status": "queued"}
        if "/Recordings/" in path and method == "DELETE":
            return 204, {}
        if path == "/v1/request/callback/":
            key, _, given = headers.get("authorization", "").partition(":")
            params = {k: v for k, v in query.items()}
            expected = zadarma.api_signature(ZADARMA_SECRET, path, params)
            if key != ZADARMA_KEY or given != expected:
                return 401, {"status": "error", "message": "Not authorized"}
            return 200, {"status": "success", "from": query.get("from"), "to": query.get("to")}
        if path.endswith("/commands/callback"):
            expected = mango.sign(MANGO_KEY, form.get("json", ""), MANGO_SALT)
            if form.get("sign") != expected:
                return 401, {"result": 3102}
            return 200, {"result": 1000}
        return 404, {}

    def start(self) -> None:
        stand_in = self

        class Handler(QuietHandler):
            def _reply(self, method: str) -> None:
                status, payload = stand_in._answer(method, self)
                body = json.dumps(payload).encode() if status != 204 else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def do_DELETE(self) -> None:
                self._reply("DELETE")

        self.server = serve(Handler)

    def stop(self) -> None:
        close(self.server)

    @property
    def url(self) -> str:
        return base_url(self.server)


def settings_toml(api_url: str, click_to_call: str = "twilio") -> str:
    return f"""
[telephony]
extensions = {{ "101" = "{ANN}", "102" = "{BOB}" }}
click_to_call_provider = "{click_to_call}"
timezone = "Europe/London"
work_days = [1, 2, 3, 4, 5]
work_start = "09:00"
work_end = "18:00"
holidays = [2030-01-07]
callback_delay_minutes = 15
callback_assignee = "{ANN}"

[telephony.twilio]
enabled = true
account_sid = "{TWILIO_SID}"
auth_token = "{TWILIO_TOKEN}"
public_url = "{PUBLIC_URL}"
api_url = "{api_url}"
caller_id = "+442079460000"

[telephony.zadarma]
enabled = true
api_key = "{ZADARMA_KEY}"
api_secret = "{ZADARMA_SECRET}"
api_url = "{api_url}"

[telephony.mango]
enabled = true
api_key = "{MANGO_KEY}"
api_salt = "{MANGO_SALT}"
api_url = "{api_url}/vpbx"
"""


def write_settings(home: Path, api_url: str, click_to_call: str = "twilio") -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(settings_toml(api_url, click_to_call), encoding="utf-8")


def twilio_post(path: str, form: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, Any]:
    """The arguments of a form POST to Kith signed as Twilio signs it."""
    url = PUBLIC_URL + path
    signature = twilio.signature(token, url, list(form.items()))
    return {
        "content": urlencode(form),
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    }


def zadarma_post(form: dict[str, str], secret: str = ZADARMA_SECRET) -> dict[str, Any]:
    fields = zadarma.SIGNED_FIELDS[form["event"]]
    signature = zadarma.sign(secret, "".join(form.get(name, "") for name in fields))
    return {
        "content": urlencode(form),
        "headers": {"Content-Type": "application/x-www-form-urlencoded", "Signature": signature},
    }


def mango_post(data: dict[str, Any], salt: str = MANGO_SALT) -> dict[str, Any]:
    payload = json.dumps(data)
    form = {
        "vpbx_api_key": MANGO_KEY,
        "sign": hashlib.sha256((MANGO_KEY + payload + salt).encode()).hexdigest(),
        "json": payload,
    }
    return {
        "content": urlencode(form),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }
