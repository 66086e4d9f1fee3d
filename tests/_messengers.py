"""Shared by the messengers tests: a stand-in of the Telegram Bot API and the WhatsApp Cloud
API on 127.0.0.1, the installation's [messengers] settings, and the providers' payloads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _threaded_http import QuietHandler, base_url, close, serve
from kith.plugins.messengers import whatsapp

BOT_TOKEN = "123456:bot-token-for-tests"
TG_SECRET = "tg-secret_token-for-tests"
APP_SECRET = "meta-app-secret-for-tests"
VERIFY_TOKEN = "meta-verify-token"
ACCESS_TOKEN = "meta-access-token"
PHONE_NUMBER_ID = "106540352242922"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class StandIn:
    """Answers as the providers' APIs do. ``fail_with`` makes the next answers errors:
    (HTTP status, body) pairs taken one per request."""

    seen: list[Seen] = field(default_factory=list)
    fail_with: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    sent: int = 0

    def _answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
        length = int(handler.headers.get("Content-Length", "0"))
        body = json.loads(handler.rfile.read(length) or b"{}")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        self.seen.append(Seen(handler.path, headers, body))
        if self.fail_with:
            return self.fail_with.pop(0)
        self.sent += 1
        if handler.path == f"/bot{BOT_TOKEN}/sendMessage":
            return 200, {
                "ok": True,
                "result": {"message_id": 1000 + self.sent, "chat": {"id": body["chat_id"]}},
            }
        if handler.path == f"/bot{BOT_TOKEN}/setWebhook":
            return 200, {"ok": True, "result": True, "description": "Webhook was set"}
        if handler.path.startswith("/bot"):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if handler.path == f"/v21.0/{PHONE_NUMBER_ID}/messages":
            if headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
                return 401, {"error": {"message": "Invalid OAuth access token", "code": 190}}
            return 200, {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": f"wamid.out{self.sent}"}],
            }
        return 404, {}

    def start(self) -> None:
        stand_in = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                status, payload = stand_in._answer(self)
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = serve(Handler)

    def stop(self) -> None:
        close(self.server)

    @property
    def url(self) -> str:
        return base_url(self.server)


def write_settings(home: Path, api_url: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(
        f"""
public_url = "https://crm.example.com"

[messengers.telegram]
enabled = true
bot_token = "{BOT_TOKEN}"
secret_token = "{TG_SECRET}"
api_url = "{api_url}"

[messengers.whatsapp]
enabled = true
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
access_token = "{ACCESS_TOKEN}"
phone_number_id = "{PHONE_NUMBER_ID}"
api_url = "{api_url}"
""",
        encoding="utf-8",
    )


def tg_update(update_id: int, chat_id: int, message_id: int, **message: Any) -> dict[str, Any]:
    """A Telegram Bot API ``Update`` with a private chat's ``message``."""
    sender = {"id": chat_id, "is_bot": False, "first_name": "Ada", "last_name": "Byron"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": sender,
            "chat": {"id": chat_id, "first_name": "Ada", "type": "private"},
            "date": 1893456000,
            **message,
        },
    }


def tg_post(update: dict[str, Any], secret: str | None = TG_SECRET) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return {"content": json.dumps(update).encode(), "headers": headers}


def wa_value(**value: Any) -> dict[str, Any]:
    """A WhatsApp Cloud API webhook payload with one change of the ``messages`` field."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def wa_text(wa_id: str, message_id: str, text: str, name: str = "Grace") -> dict[str, Any]:
    return wa_value(
        contacts=[{"profile": {"name": name}, "wa_id": wa_id}],
        messages=[
            {
                "from": wa_id,
                "id": message_id,
                "timestamp": "1893456000",
                "type": "text",
                "text": {"body": text},
            }
        ],
    )


def wa_status(message_id: str, status: str, wa_id: str, **extra: Any) -> dict[str, Any]:
    return wa_value(
        statuses=[
            {
                "id": message_id,
                "status": status,
                "timestamp": "1893456100",
                "recipient_id": wa_id,
                **extra,
            }
        ]
    )


def wa_post(payload: dict[str, Any], secret: str = APP_SECRET) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    return {
        "content": body,
        "headers": {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": whatsapp.signature(secret, body),
        },
    }
