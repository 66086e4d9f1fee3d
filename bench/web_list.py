"""The web UI's contacts list, unfiltered and with filters and orders, as a share of the same
server's trivial endpoint.

For each engine this starts the real ``kith serve`` on a fresh database holding ``--contacts``
contacts (10,000 by default; one in ten tagged ``vip``), signs in through the sign-in page as a
browser does, then measures requests per second of ``GET /api/health`` and of each list page
below (25 contacts a page: session, filters, contacts, template) with the same load generator
and concurrency, alternating them. Each page's figure is its ratio to health.

    .venv/bin/python bench/web_list.py
    .venv/bin/python bench/web_list.py --engines sqlite --contacts 2000 --seconds 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import sys

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
from kith.services.users import UserService
from kith.settings import Settings
from kith.tables import Contact
from web_pages import ADMIN, PASSWORD, _session_cookie

ENGINES = ("sqlite", "postgresql")
PAGES = {
    "list": "/contacts",
    "newest": "/contacts?sort=-created",
    "tag+kind, changed": "/contacts?tag=vip&kind=person&sort=-updated",
    "tag, by name": "/contacts?tag=vip&sort=name",
}


async def _prepare(settings: Settings, contact_ids: list[object]) -> None:
    """A password for the seeded admin; one contact in ten tagged ``vip``."""
    kith = open_kith(settings)
    await kith.start()
    try:
        users = UserService(kith)
        await users.set_password((await users.by_email(ADMIN)).id, PASSWORD)
        await Contact.update({Contact.tags: ["bench", "vip"]}).where(
            Contact.id.is_in(contact_ids[::10])
        )
    finally:
        await kith.close()


def measure(engine: str, options: argparse.Namespace) -> list[list[str]]:
    if engine == "postgresql" and (reason := postgres_unavailable()):
        return [[engine, "-", "-", "-", "-", f"skipped: {reason}"]]
    generator = load_generator(options.generator, options.connections)
    with installation(engine) as settings:
        seeded = seed(settings, options.contacts)
        asyncio.run(_prepare(settings, list(seeded.contact_ids)))
        with running_server(settings) as server:
            cookie = _session_cookie(server.port)
            health = Load(paths=["/api/health"])
            loads = {
                name: Load(paths=[path], headers={"Cookie": cookie}) for name, path in PAGES.items()
            }
            generator.run(server.port, health, options.warmup)
            for load in loads.values():
                generator.run(server.port, load, options.warmup)
            healths: list[Measurement] = []
            pages: dict[str, list[Measurement]] = {name: [] for name in PAGES}
            for _ in range(options.rounds):
                healths.append(generator.measure(server, health, options.seconds))
                for name, load in loads.items():
                    pages[name].append(generator.measure(server, load, options.seconds))
    best_health = max(m.per_second for m in healths)
    rows = []
    for name, measured in pages.items():
        best = max(m.per_second for m in measured)
        failures = sum(m.failures for m in measured)
        rows.append(
            [
                engine,
                name,
                fmt_rate(best_health),
                fmt_rate(best),
                f"{best / best_health if best_health else 0.0:.3f}",
                f"{failures} failed requests" if failures else "",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_option(parser)
    add_load_options(parser, connections=8, seconds=3.0, warmup=0.5, contacts=10_000)
    options = parser.parse_args(argv)
    engines = chosen_engines(parser, options)

    print(f"Kith contacts list benchmark, {dt.date.today().isoformat()}")
    print(f"  machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"  load generator: {load_generator(options.generator, options.connections).describe()}")
    print(
        f"  {options.contacts} contacts, one in ten tagged vip; {options.rounds} round(s) of "
        f"{options.seconds:g} s per page; best round counts"
    )
    print()
    rows = []
    for engine in engines:
        print(f"  measuring {engine} ...", file=sys.stderr, flush=True)
        rows += measure(engine, options)
    print_table(["engine", "page", "health req/s", "page req/s", "ratio", "note"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
