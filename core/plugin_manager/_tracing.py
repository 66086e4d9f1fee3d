"""Hook call tracing (``KITH_TRACE_PLUGINS``) through pluggy's hook call monitoring.

Only the shape of arguments and results is logged, never their values: hooks carry personal
data, and logs must not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import pluggy
from kith.plugin_manager._records import log


def shape(value: Any) -> str:
    """A value's type and size, never its content."""
    if isinstance(value, list | tuple | set | frozenset | dict):
        if not value:
            return f"empty {type(value).__name__}"
        kinds = sorted({type(item).__name__ for item in value})
        return f"{type(value).__name__} of {len(value)} ({', '.join(kinds)})"
    return type(value).__name__


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class Tracer:
    """Logs every hook call with the plugins it reaches, the result's shape and the time.

    Install it with ``plugin_manager.add_hookcall_monitoring(tracer.before, tracer.after)``.
    """

    def __init__(self) -> None:
        # Calls nest (a hook may call another), and sync handlers may run in worker threads.
        self._local = threading.local()

    @property
    def _started(self) -> list[float]:
        if not hasattr(self._local, "started"):
            self._local.started = []
        started: list[float] = self._local.started
        return started

    def before(
        self, hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        self._started.append(time.perf_counter())
        log().info(
            "plugin hook call",
            hook=hook_name,
            plugins=[impl.plugin_name for impl in reversed(impls)],
            arguments=sorted(kwargs),
        )

    def after(
        self,
        outcome: pluggy.Result[Any],
        hook_name: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        elapsed_ms = _elapsed_ms(self._started.pop())
        if outcome.exception is not None:
            log().info(
                "plugin hook failed",
                hook=hook_name,
                error=f"{type(outcome.exception).__name__}: {outcome.exception}",
                duration_ms=elapsed_ms,
            )
            return
        log().info(
            "plugin hook result",
            hook=hook_name,
            result=shape(outcome.get_result()),
            duration_ms=elapsed_ms,
        )


async def traced_await(awaitable: Awaitable[Any], hook_name: str, plugin: str) -> Any:
    """Await what an async implementation returned, logging its result's shape and time
    (the monitored call only created the coroutine; this is its work)."""
    started = time.perf_counter()
    answer = await awaitable
    log().info(
        "plugin hook awaited",
        hook=hook_name,
        plugin=plugin,
        result=shape(answer),
        duration_ms=_elapsed_ms(started),
    )
    return answer
