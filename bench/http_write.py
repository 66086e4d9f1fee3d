"""Writing over HTTP, as a share of the same server's trivial endpoint.

For each engine this starts the real ``kith serve`` on a fresh database with a few hundred
contacts and measures requests per second of ``GET /api/health`` (no auth, no database) against
three writes every integration makes, with the same load generator and concurrency, alternating
so that drift on the machine hits all alike:

- ``POST /api/contacts``: a new contact with one email and one phone (encrypted, blind-indexed,
  its own data key, a ``contact.created`` event);
- ``POST /api/contacts/{id}/interactions``: a call logged on an existing contact;
- ``POST /api/privacy/consents/{id}``: consent given to a purpose with a notice.

The ratio write/health is the figure with a target (>= 0.30; docs/performance.md says why).

    .venv/bin/python bench/http_write.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/http_write.py --engines sqlite --seconds 2
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

TARGET = 0.30
ENGINES = ("sqlite", "postgresql")
PRIVACY_SETTINGS = """
[privacy.purposes.newsletter]
description = "Monthly newsletter"
lawful_basis = "consent"
notice = "We email you our newsletter once a month."
"""


def writes(contact_ids: list[str], token: str) -> dict[str, Load]:
    auth = {"Authorization": f"Bearer {token}"}
    return {
        "create contact": Load(
            paths=["/api/contacts"],
            headers=auth,
            method="POST",
            body=json.dumps(
                {
                    "name": "Bench Person {n}",
                    "emails": [{"address": "person{n}@bench.example"}],
                    "phones": [{"number": "+44 20 {n}"}],
                }
            ),
        ),
        "log interaction": Load(
            paths=[f"/api/contacts/{c}/interactions" for c in contact_ids],
            headers=auth,
            method="POST",
            body=json.dumps(
                {"kind": "call", "direction": "inbound", "summary": "Call {n}", "duration_s": 60}
            ),
        ),
        "give consent": Load(
            paths=[f"/api/privacy/consents/{c}" for c in contact_ids],
            headers=auth,
            method="POST",
            body=json.dumps({"purpose": "newsletter", "action": "given", "channel": "web"}),
        ),
    }


def measure_engine(
    engine: str, generator: LoadGenerator, options: argparse.Namespace
) -> dict[str, list[Measurement]] | str:
    if engine == "postgresql":
        reason = postgres_unavailable()
        if reason is not None:
            return f"skipped: {reason}"
    with installation(engine) as settings:
        (settings.home / "kith.toml").write_text(PRIVACY_SETTINGS, encoding="utf-8")
        seeded = seed(settings, options.contacts)
        loads = {
            "health": Load(paths=["/api/health"]),
            **writes([str(c) for c in seeded.contact_ids], seeded.token),
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
    add_engine_option(parser)
    add_load_options(parser)
    options = parser.parse_args(argv)
    engines = chosen_engines(parser, options)
    generator = load_generator(options.generator, options.connections)

    print(f"Kith HTTP write benchmark, {dt.date.today().isoformat()}")
    print(f"  machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, `kith serve`")
    print(f"  load generator: {generator.describe()}")
    print(
        f"  {options.contacts} contacts; {options.rounds} round(s) of {options.seconds:g} s per "
        f"endpoint after {options.warmup:g} s warm-up; best round counts"
    )
    print()
    table = []
    missed = False
    for engine in engines:
        print(f"  measuring {engine} ...", file=sys.stderr, flush=True)
        results = measure_engine(engine, generator, options)
        if isinstance(results, str):
            table.append([engine, "-", "-", "-", "-", "-", "-", "-", results])
            continue
        health = max(m.per_second for m in results["health"])
        health_cpu = min((m.cpu_per_request or 0) for m in results["health"]) or None
        for name, rounds in results.items():
            if name == "health":
                continue
            rate = max(m.per_second for m in rounds)
            cpu = min((m.cpu_per_request or 0) for m in rounds) or None
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
                    f"{health_cpu * 1e6:,.0f}" if health_cpu else "-",
                    f"{cpu * 1e6:,.0f}" if cpu else "-",
                    f"{health_cpu / cpu:.3f}" if cpu and health_cpu else "-",
                    verdict + (f" ({failures} failed requests)" if failures else ""),
                ]
            )
    print_table(
        [
            "engine",
            "write",
            "writes/s",
            "health/s",
            "ratio",
            "health CPU µs/req",
            "write CPU µs/req",
            "CPU ratio",
            f"target >= {TARGET}",
        ],
        table,
    )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
