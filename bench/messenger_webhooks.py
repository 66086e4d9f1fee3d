"""Messenger webhooks over HTTP, as a share of the same server's trivial endpoint.

For each engine this starts the real ``kith serve`` with the Telegram channel enabled and
measures requests per second of ``GET /api/health`` (no auth, no database) against Telegram
updates, end to end (the secret token check, the chat's blind index and lock, the sealed
message row, its ``message`` interaction, the ``message.received`` event in the outbox), with
the same load generator and concurrency, alternating rounds:

- ``telegram new message``: a new message (each request its own message id) in a chat Kith
  knows (the first request of the run makes its lead);
- ``telegram repeat``: the same update again (Telegram's retry), which Kith recognises by the
  message's blind index and stores nothing for.

The ratio message/health is the figure with a target (>= 0.30; docs/performance.md).

    .venv/bin/python bench/messenger_webhooks.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/messenger_webhooks.py --engines sqlite --seconds 2
"""

from __future__ import annotations

import json

from _common import Load, WebhookBench, webhook_main

SECRET = "bench-telegram-secret"
SETTINGS = f"""
[messengers.telegram]
enabled = true
bot_token = "1:bench"
secret_token = "{SECRET}"
api_url = "http://127.0.0.1:9"
"""
PATH = "/api/messengers/telegram"
HEADERS = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}


def update(message_id: str) -> str:
    sender = {"id": 424242, "is_bot": False, "first_name": "Bench"}
    body = {
        "update_id": 1,
        "message": {
            "message_id": 0,
            "from": sender,
            "chat": {"id": 424242, "type": "private"},
            "date": 1893456000,
            "text": "Do you deliver on Saturdays?",
        },
    }
    # The generator fills {n} in with eight digits, leading zeros too: a 1 before them keeps
    # the message id a JSON number, as Telegram sends it.
    return json.dumps(body).replace('"message_id": 0', f'"message_id": {message_id}')


def new_message_load() -> Load:
    return Load(paths=[PATH], headers=HEADERS, method="POST", body=update("1{n}"), status=200)


def repeat_load() -> Load:
    return Load(paths=[PATH], headers=HEADERS, method="POST", body=update("7"), status=200)


BENCH = WebhookBench(
    title="messenger webhook",
    settings=SETTINGS,
    loads=lambda: {"telegram new message": new_message_load(), "telegram repeat": repeat_load()},
    unit="messages",
    target=0.30,
)


def main(argv: list[str] | None = None) -> int:
    return webhook_main(BENCH, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
