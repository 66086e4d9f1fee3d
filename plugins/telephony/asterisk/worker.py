"""One Asterisk provider per Kith, kept running while Kith's bus runs in the background.

The connection lives in every process whose bus runs in the background (``kith worker`` and
``kith serve``): the worker records the calls, a server places click-to-call calls through it.
Two processes reading the same events is harmless: every call event has a stable key, and the
call service records a key once.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref

from kith import Kith, get_logger
from kith.plugins.telephony.asterisk.provider import AsteriskProvider
from kith.plugins.telephony.asterisk.settings import AsteriskSettings
from kith.plugins.telephony.provider_events import CallEvent

# How often the bus checks that the connection task is alive (it reconnects by itself).
CHECK_EVERY_S = 5.0

_providers: weakref.WeakKeyDictionary[Kith, AsteriskProvider] = weakref.WeakKeyDictionary()
_tasks: weakref.WeakKeyDictionary[Kith, asyncio.Task[None]] = weakref.WeakKeyDictionary()
_log = get_logger("kith.telephony.asterisk")


def provider_of(kith: Kith, settings: AsteriskSettings) -> AsteriskProvider:
    """This Kith's one Asterisk provider (click-to-call must use the connected one)."""
    provider = _providers.get(kith)
    if provider is None:
        provider = _providers[kith] = AsteriskProvider.from_settings(settings)
    return provider


async def keep_running(kith: Kith, settings: AsteriskSettings) -> None:
    """Start the provider's connection unless it runs already (a bus job)."""
    from kith.plugins.telephony.services import CallService

    task = _tasks.get(kith)
    if task is not None and not task.done():
        return
    if task is not None and not task.cancelled() and task.exception() is not None:
        _log.error("asterisk connection stopped; starting it again", error=repr(task.exception()))
    provider = provider_of(kith, settings)

    async def emit(event: CallEvent) -> None:
        await CallService(kith).record(event)

    _tasks[kith] = asyncio.create_task(provider.run(emit), name="telephony.asterisk")


async def stop(kith: Kith) -> None:
    task = _tasks.pop(kith, None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
