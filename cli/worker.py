"""``kith worker``: deliver events and publish due tasks outside the web server."""

from __future__ import annotations

import asyncio
import signal

import click
from kith.console import log_as_service, note, run_with_kith
from kith.runtime import Kith
from kith.services.loop_jobs import run_all


@click.command()
@click.option(
    "--once",
    is_flag=True,
    help="Publish due tasks, deliver everything that is due now, then exit (for cron).",
)
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Only deliver events; leave due tasks and event retention to another process.",
)
@click.option(
    "--grace",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds deliveries under way get to finish when stopping.",
)
def worker(once: bool, no_scheduler: bool, grace: float) -> None:
    """Deliver events to subscribers and publish due tasks until stopped.

    SIGTERM or Ctrl+C stops it gracefully: no new deliveries start, those under way get
    --grace seconds. Several workers (and servers) can share one database."""

    async def run_once(kith: Kith) -> None:
        due = 0 if no_scheduler else await kith.bus.publish_due_tasks()
        loop = {} if no_scheduler else await run_all(kith)
        attempts = await kith.bus.drain()
        counts = await kith.bus.counts()
        done = "".join(f", {n} {name.replace('_', ' ')}" for name, n in loop.items())
        note(
            f"{due} due tasks published{done}, {attempts} deliveries attempted; "
            f"{counts['pending']} pending, {counts['dead']} dead"
        )

    async def run_until_stopped(kith: Kith) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        signals = (signal.SIGTERM, signal.SIGINT)
        for number in signals:
            loop.add_signal_handler(number, stopping.set)
        try:
            await kith.bus.start(scheduler=not no_scheduler)
            subscribers = ", ".join(s.name for s in kith.bus.subscribers) or "none"
            note(f"Kith worker running (subscribers: {subscribers}); stop with Ctrl+C")
            await stopping.wait()
        finally:
            # A second Ctrl+C while stopping interrupts at once.
            for number in signals:
                loop.remove_signal_handler(number)
        note("Stopping: letting deliveries under way finish...")
        await kith.bus.stop(grace)
        note("Kith worker stopped.")

    log_as_service()
    run_with_kith(run_once if once else run_until_stopped)
