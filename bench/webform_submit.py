"""A web form submission over HTTP, as a share of the same server's trivial endpoint.

For each engine this starts the real ``kith serve`` on a fresh database with a few hundred
contacts and a form with a consent box and a follow-up task, and measures requests per second
of ``GET /api/health`` (no auth, no database) against ``POST /f/{form_id}`` of a new person
each time: checks (signed fill-time token, honeypot, values), dedupe by blind index, a new
contact (encrypted, its own data key), the ``form_submission`` interaction, the submission's
sealed attribution, consent in the ledger, the task and the events in the outbox. Alternating
rounds, same load generator and concurrency. Target: ratio >= 0.30 (docs/performance.md).

    .venv/bin/python bench/webform_submit.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/webform_submit.py --engines sqlite --seconds 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import dataclass

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
from kith.bootstrap import open_kith
from kith.plugins.webforms import signing
from kith.plugins.webforms.schemas import FormCreate, FormField, FormPurpose, FormTask
from kith.plugins.webforms.service import FormService
from kith.settings import Settings

TARGET = 0.30
ENGINES = ("sqlite", "postgresql")
FORM_ID = "bench"
# No limit in the way of the measurement (one load generator is one client address).
SERVER_ENV = {
    "KITH_WEBFORMS_RATE_PER_CLIENT": "1000000",
    "KITH_WEBFORMS_RATE_PER_FORM": "1000000",
    "KITH_WEBFORMS_MIN_FILL_SECONDS": "0",
}


@dataclass
class FormLoad(Load):
    def expected_status(self) -> int:
        return 200


def create_form(settings: Settings) -> str:
    """The bench form, and a fill-time token issued a minute ago for it."""

    async def work() -> None:
        kith = open_kith(settings)
        await kith.start()
        try:
            await FormService(kith).create(
                FormCreate(
                    id=FORM_ID,
                    title="Bench form",
                    fields=[
                        FormField(name="name", maps_to="name", required=True),
                        FormField(name="email", maps_to="email", required=True),
                        FormField(name="message", maps_to="message"),
                    ],
                    purposes=[FormPurpose(name="marketing", notice="Send me offers.")],
                    task=FormTask(summary="Call back"),
                )
            )
        finally:
            await kith.close()

    asyncio.run(work())
    return signing.fill_token(signing.signing_key(settings.home), FORM_ID, time.time() - 60)


def measure_engine(
    engine: str, generator: LoadGenerator, options: argparse.Namespace
) -> dict[str, list[Measurement]] | str:
    if engine == "postgresql":
        reason = postgres_unavailable()
        if reason is not None:
            return f"skipped: {reason}"
    with installation(engine) as settings:
        seed(settings, options.contacts)
        token = create_form(settings)
        body = {
            "name": "Bench Lead {n}",
            "email": "lead{n}@bench.example",
            "message": "Please call me back about an offer.",
            "consent_marketing": "yes",
            "_kith_t": token,
        }
        loads: dict[str, Load] = {
            "health": Load(paths=["/api/health"]),
            "form submission": FormLoad(
                paths=[f"/f/{FORM_ID}?utm_source=bench&utm_campaign=load"],
                method="POST",
                body=json.dumps(body),
                headers={"Accept": "application/json"},
            ),
        }
        results: dict[str, list[Measurement]] = {name: [] for name in loads}
        with running_server(settings, extra_env=SERVER_ENV) as server:
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

    print(f"Kith web form benchmark, {dt.date.today().isoformat()}")
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
            table.append([engine, "-", "-", "-", results])
            continue
        health = max(m.per_second for m in results["health"])
        rounds = results["form submission"]
        rate = max(m.per_second for m in rounds)
        ratio = rate / health if health else 0.0
        failures = sum(m.failures for m in rounds)
        missed = missed or ratio < TARGET
        verdict = "ok" if ratio >= TARGET else "MISSED"
        table.append(
            [
                engine,
                fmt_rate(rate),
                fmt_rate(health),
                f"{ratio:.3f}",
                verdict + (f" ({failures} failed requests)" if failures else ""),
            ]
        )
    print_table(["engine", "submissions/s", "health/s", "ratio", f"target >= {TARGET}"], table)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
