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

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import os
import platform
import sys
from urllib.parse import urlencode

from _common import (
    Load,
    LoadGenerator,
    Measurement,
    fmt_rate,
    installation,
    load_generator,
    postgres_unavailable,
    print_table,
    running_server,
    seed,
)

TARGET = 0.30
ENGINES = ("sqlite", "postgresql")
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


def measure_engine(
    engine: str, generator: LoadGenerator, options: argparse.Namespace
) -> dict[str, list[Measurement]] | str:
    if engine == "postgresql":
        reason = postgres_unavailable()
        if reason is not None:
            return f"skipped: {reason}"
    with installation(engine) as settings:
        (settings.home / "kith.toml").write_text(SETTINGS, encoding="utf-8")
        seed(settings, options.contacts)
        loads = {
            "health": Load(paths=["/api/health"]),
            "zadarma new call": zadarma_load(),
            "twilio repeat": twilio_load(),
        }
        results: dict[str, list[Measurement]] = {name: [] for name in loads}
        with running_server(settings) as server:
            for load in loads.values():
                generator.run(server.port, load, options.warmup)
            for _ in range(options.rounds):
                for name, load in loads.items():
                    results[name].append(generator.measure(server, load, options.seconds))
        return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds per endpoint")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best counts")
    parser.add_argument("--contacts", type=int, default=300)
    options = parser.parse_args(argv)
    engines = [e.strip() for e in options.engines.split(",") if e.strip()]
    if set(engines) - set(ENGINES):
        parser.error(f"--engines takes {', '.join(ENGINES)}")
    generator = load_generator(options.generator, options.connections)

    print(f"Kith telephony webhook benchmark, {dt.date.today().isoformat()}")
    print(f"  machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, `kith serve`")
    print(f"  load generator: {generator.describe()}")
    print(
        f"  {options.rounds} round(s) of {options.seconds:g} s per endpoint after "
        f"{options.warmup:g} s warm-up; best round counts"
    )
    print()
    table = []
    missed = False
    for engine in engines:
        print(f"  measuring {engine} ...", file=sys.stderr, flush=True)
        results = measure_engine(engine, generator, options)
        if isinstance(results, str):
            table.append([engine, "-", "-", "-", "-", results])
            continue
        health = max(m.per_second for m in results["health"])
        for name, rounds in results.items():
            if name == "health":
                continue
            rate = max(m.per_second for m in rounds)
            ratio = rate / health if health else 0.0
            failures = sum(m.failures for m in rounds)
            verdict = "ok" if ratio >= TARGET else "MISSED"
            missed = missed or ratio < TARGET
            table.append(
                [
                    engine,
                    name,
                    fmt_rate(rate),
                    fmt_rate(health),
                    f"{ratio:.3f}",
                    verdict + (f" ({failures} failed requests)" if failures else ""),
                ]
            )
    print_table(
        ["engine", "webhook", "events/s", "health/s", "ratio", f"target >= {TARGET}"], table
    )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
