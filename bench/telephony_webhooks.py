"""Telephony webhooks over HTTP, as a share of the same server's trivial endpoint.

For each engine this starts the real ``kith serve`` with Zadarma's and Twilio's webhooks
enabled and measures requests per second of ``GET /api/health`` (no auth, no database)
against provider call events, end to end (signature check, matching the caller through the
phone blind index, the call row, its timeline interaction, the ``call.started`` event in the
outbox), with the same load generator and concurrency, alternating rounds:

- ``zadarma new call``: a signed NOTIFY_START of a new call (each request its own call id)
  from a caller Kith knows;
- ``twilio repeat``: the same signed Twilio status callback again (a provider's retry), which
  Kith recognises by its idempotency key and stores nothing for.

The ratio event/health is the figure with a target (>= 0.30; docs/performance.md).

    .venv/bin/python bench/telephony_webhooks.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/telephony_webhooks.py --engines sqlite --seconds 2
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

from _common import Load, WebhookBench, webhook_main

SECRET = "bench-zadarma-secret"
TOKEN = "bench-twilio-token"
PUBLIC = "https://crm.bench.example"
CALLER = "+447700900123"
SETTINGS = f"""
[telephony.zadarma]
enabled = true
api_key = "bench"
api_secret = "{SECRET}"

[telephony.twilio]
enabled = true
account_sid = "AC{"0" * 32}"
auth_token = "{TOKEN}"
public_url = "{PUBLIC}"
"""
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def zadarma_load() -> Load:
    # The signature covers caller, number called and start time, not the call id: one
    # signature serves every request while each is a new call.
    start = "2030-01-02 10:00:00"
    text = CALLER + "442079460000" + start
    digest = hmac.new(SECRET.encode(), text.encode(), hashlib.sha1).hexdigest()
    body = urlencode(
        {
            "event": "NOTIFY_START",
            "pbx_call_id": "bench-XNX",
            "caller_id": CALLER,
            "called_did": "442079460000",
            "call_start": start,
        }
    ).replace("XNX", "{n}")
    return Load(
        paths=["/api/telephony/zadarma"],
        headers={**FORM, "Signature": base64.b64encode(digest.encode()).decode()},
        method="POST",
        body=body,
        status=200,
    )


def twilio_load() -> Load:
    path = "/api/telephony/twilio/status"
    form = {
        "CallSid": "CA" + "9" * 32,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": CALLER,
        "To": "+442079460000",
    }
    text = PUBLIC + path + "".join(k + form[k] for k in sorted(form))
    signature = base64.b64encode(
        hmac.new(TOKEN.encode(), text.encode(), hashlib.sha1).digest()
    ).decode()
    return Load(
        paths=[path],
        headers={**FORM, "X-Twilio-Signature": signature},
        method="POST",
        body=urlencode(form),
        status=200,
    )


BENCH = WebhookBench(
    title="telephony webhook",
    settings=SETTINGS,
    loads=lambda: {"zadarma new call": zadarma_load(), "twilio repeat": twilio_load()},
    unit="events",
    target=0.30,
)


def main(argv: list[str] | None = None) -> int:
    return webhook_main(BENCH, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
