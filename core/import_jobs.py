"""Imports running in the background of a server or worker: started by an upload, resumed
when the process that ran them stopped, cancelled (to resume later) when Kith closes.

Core answers ``kith_startup`` and ``kith_shutdown`` here through the same hooks as the plugins
(registered like :mod:`kith.name_index`)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from kith.hookspecs import hookimpl
from kith.logs import get_logger

if TYPE_CHECKING:
    from kith.runtime import Kith

PLUGIN_NAME = "kith.import_jobs"
# How often a server or worker looks for imports whose process stopped.
RESUME_INTERVAL_S = 60.0
_TASKS = "kith.import_jobs.tasks"

log = get_logger("kith.imports")


def _tasks(kith: Kith) -> set[asyncio.Task[None]]:
    tasks: set[asyncio.Task[None]] = kith.state.setdefault(_TASKS, set())
    return tasks


def run_in_background(kith: Kith, job_id: uuid.UUID, channel: str | None = None) -> None:
    """Run an import in a task of this process; a failure is recorded on the job."""
    from kith.services.imports import ImportService

    async def run() -> None:
        try:
            await ImportService(kith, channel, parallel=True).run(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The job records why it stopped; the log says which one.
            log.warning("import.background_failed", import_id=str(job_id), error=type(exc).__name__)

    task = asyncio.get_running_loop().create_task(run(), name=f"import {job_id}")
    tasks = _tasks(kith)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


@hookimpl
def kith_startup(kith: Kith) -> None:
    """Have the bus resume imports whose process stopped, whenever it runs in the background
    (``kith serve``, ``kith worker``)."""
    from kith.services.imports import ImportService

    async def resume() -> None:
        await ImportService(kith, parallel=True).resume_stopped()

    bus = getattr(kith, "bus", None)
    # Jobs are added before the bus starts (a stand-in Kith of a test has no bus at all).
    if bus is not None and not bus.running:
        bus.add_job("imports.resume", RESUME_INTERVAL_S, resume)


@hookimpl
async def kith_shutdown(kith: Kith) -> None:
    """Stop the imports under way: each resumes from its last committed batch later."""
    tasks = list(_tasks(kith))
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
