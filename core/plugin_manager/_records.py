"""What the plugin manager reports: its error, the loaded and skipped plugins, hook answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from kith.errors import KithError
from kith.logs import get_logger


def log() -> Any:
    """The logger of everything plugin-related."""
    return get_logger("kith.plugins")


class PluginError(KithError):
    """A plugin cannot be used; the message starts with its name."""

    title = "Plugin error"

    def __init__(self, plugin: str, detail: str) -> None:
        super().__init__(f"plugin {plugin!r}: {detail}", plugin=plugin)
        self.plugin = plugin

    @property
    def reason(self) -> str:
        """The message without the plugin's name in front."""
        prefix = f"plugin {self.plugin!r}: "
        return self.detail[len(prefix) :] if self.detail.startswith(prefix) else self.detail


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin as ``kith plugins list`` shows it."""

    name: str
    version: str | None
    source: str
    hooks: tuple[str, ...]
    module: str | None = None


@dataclass(frozen=True)
class SkippedPlugin:
    """An installed plugin that is not loaded: it failed, or the selection left it out."""

    name: str
    version: str | None
    source: str
    status: Literal["failed", "disabled"]
    reason: str


@dataclass(frozen=True)
class HookResult:
    """What one plugin's implementation answered (``error`` when it raised and errors were
    collected instead of raised)."""

    plugin: str
    value: Any
    error: BaseException | None = None
