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

import argparse
import datetime as dt
import json
import os
import platform
import sys

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
            "telegram new message": new_message_load(),
            "telegram repeat": repeat_load(),
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

    print(f"Kith messenger webhook benchmark, {dt.date.today().isoformat()}")
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
        ["engine", "webhook", "messages/s", "health/s", "ratio", f"target >= {TARGET}"], table
    )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
