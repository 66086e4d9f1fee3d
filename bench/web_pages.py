"""The web UI's contact card of a contact with 50 timeline entries (the card shows the newest
20 and links to the older ones), as a share of the same server's trivial endpoint.

For each engine this starts the real ``kith serve`` on a fresh database holding contacts with
50 interactions each, signs in through the sign-in page as a browser does, then measures
requests per second of ``GET /api/health`` and of ``GET /contacts/{id}`` (the whole card:
session, contact, custom fields, a page of the timeline, template) with the same load generator and
concurrency, alternating the two. The ratio card/health is the figure with a target (>= 0.30).

    .venv/bin/python bench/web_pages.py
    .venv/bin/python bench/web_pages.py --engines sqlite --seconds 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import re
import sys

import httpx
from _common import (
    Load,
    Measurement,
    add_engine_option,
    add_load_options,
    chosen_engines,
    fmt_rate,
    installation,
    load_generator,
    postgres_unavailable,
    print_table,
    running_server,
    seed,
)
from kith.bootstrap import open_kith
from kith.schemas import InteractionCreate
from kith.services.interactions import InteractionService
from kith.services.users import UserService
from kith.settings import Settings

TARGET = 0.30
ENGINES = ("sqlite", "postgresql")
TIMELINE = 50
PASSWORD = "bench password 1"
ADMIN = "bench-admin@example.com"
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def _timelines(settings: Settings, contact_ids: list[object]) -> None:
    """A password for the seeded admin, and 50 interactions on each contact."""
    kith = open_kith(settings)
    await kith.start()
    try:
        users = UserService(kith)
        await users.set_password((await users.by_email(ADMIN)).id, PASSWORD)
        service = InteractionService(kith)
        kinds = ("note", "call", "email", "task")
        for contact_id in contact_ids:
            for number in range(TIMELINE):
                kind = kinds[number % len(kinds)]
                await service.log(
                    contact_id,  # type: ignore[arg-type]
                    InteractionCreate(
                        kind=kind,  # type: ignore[arg-type]
                        summary=f"Entry {number} of the timeline",
                        body="A few words about what was said." * 3,
                        due_at=dt.datetime.now(dt.UTC) if kind == "task" else None,
                    ),
                )
    finally:
        await kith.close()


def _session_cookie(port: int) -> str:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
        token = CSRF.search(browser.get("/signin").text)
        assert token, "the sign-in page has no CSRF token"
        signed = browser.post(
            "/signin",
            data={"_csrf_token": token.group(1), "email": ADMIN, "password": PASSWORD},
        )
        assert signed.status_code == 303, signed.text
        return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


def measure(engine: str, options: argparse.Namespace) -> list[str]:
    if engine == "postgresql" and (reason := postgres_unavailable()):
        return [engine, "-", "-", "-", "-", f"skipped: {reason}"]
    generator = load_generator(options.generator, options.connections)
    with installation(engine) as settings:
        seeded = seed(settings, options.contacts)
        asyncio.run(_timelines(settings, list(seeded.contact_ids)))
        with running_server(settings) as server:
            cookie = _session_cookie(server.port)
            health = Load(paths=["/api/health"])
            card = Load(
                paths=[f"/contacts/{contact_id}" for contact_id in seeded.contact_ids],
                headers={"Cookie": cookie},
            )
            generator.run(server.port, health, options.warmup)
            generator.run(server.port, card, options.warmup)
            healths: list[Measurement] = []
            cards: list[Measurement] = []
            for _ in range(options.rounds):
                healths.append(generator.measure(server, health, options.seconds))
                cards.append(generator.measure(server, card, options.seconds))
    best_health = max(m.per_second for m in healths)
    best_card = max(m.per_second for m in cards)
    ratio = best_card / best_health if best_health else 0.0
    failures = sum(m.failures for m in healths + cards)
    return [
        engine,
        fmt_rate(best_health),
        fmt_rate(best_card),
        f"{ratio:.2f}",
        f">= {TARGET:.2f} {'ok' if ratio >= TARGET else 'MISSED'}",
        f"{failures} failed requests" if failures else "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_option(parser)
    add_load_options(parser, connections=8, contacts=20)
    options = parser.parse_args(argv)
    engines = chosen_engines(parser, options)

    print(f"Kith web page benchmark, {dt.date.today().isoformat()}")
    print(f"  machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"  load generator: {load_generator(options.generator, options.connections).describe()}")
    print(
        f"  {options.contacts} contacts with {TIMELINE} interactions each; {options.rounds} "
        f"round(s) of {options.seconds:g} s per endpoint; best round counts"
    )
    print()
    rows = []
    for engine in engines:
        print(f"  measuring {engine} ...", file=sys.stderr, flush=True)
        rows.append(measure(engine, options))
    print_table(["engine", "health req/s", "card req/s", "ratio", "target", "note"], rows)
    return 1 if any("MISSED" in row[4] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
