"""Structured logs with structlog: readable in a terminal, JSON lines otherwise."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import structlog
from kith.settings import Settings
from structlog.typing import EventDict

Processor = structlog.typing.Processor

_extra_processors: list[Processor] = []
# Whether logging was last set up for a command a person reads (see configure_logging).
_for_a_command = False


def add_processor(processor: Processor) -> None:
    """Run ``processor`` on every log event before it is rendered (the privacy plugin's
    redaction uses this). Takes effect at the next :func:`configure_logging`."""
    if processor not in _extra_processors:
        _extra_processors.append(processor)


def configure_logging(settings: Settings, stream: Any = None, *, command: bool = False) -> None:
    """Log to ``stream`` (stderr) as the settings say: ``log_format`` auto is readable in a
    terminal and JSON lines otherwise.

    ``command`` is for a command whose output a person reads (every ``kith`` command but
    ``serve`` and ``worker``, whose log is their output): with ``log_format`` auto, only
    warnings and errors are logged among it, without timestamps in a terminal. An explicit
    ``console`` or ``json`` keeps every line at ``log_level`` (scripts that read the log)."""
    global _for_a_command
    _for_a_command = command
    stream = stream or sys.stderr
    fmt = settings.log_format
    level = logging.getLevelName(settings.log_level.upper())
    terminal = bool(getattr(stream, "isatty", lambda: False)())
    brief = command and fmt == "auto"
    if fmt == "auto":
        fmt = "console" if terminal else "json"
    if brief:
        level = max(level, logging.WARNING)
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(
            colors=True,
            pad_event_to=0 if brief else 30,
            pad_level=not brief,
            # Local variables can hold personal data; tracebacks show code, never values.
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
        )
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    processors: Sequence[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        # A person reading a command's output needs no time on its warnings.
        _identity
        if brief and fmt == "console"
        else structlog.processors.TimeStamper(fmt="iso", utc=True),
        *_extra_processors,
        structlog.processors.format_exc_info if fmt == "json" else _identity,
        renderer,
    ]
    structlog.configure(
        processors=list(processors),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def for_a_command() -> bool:
    """Whether this process runs a command a person reads (not ``serve`` or ``worker``):
    a standing warning about the installation belongs in a service's log, where it is seen at
    every start, rather than before the output of every command."""
    return _for_a_command


def _identity(logger: Any, name: str, event: EventDict) -> EventDict:
    return event


def get_logger(name: str = "kith") -> Any:
    return structlog.get_logger(name)
