"""The top ``kith`` group with the commands plugins register (``kith_register_commands``).

Plugins are loaded only when they are needed: to list every command (``kith --help``) or to find
a command that is not one of Kith's own. ``kith migrate`` alone does not wait for them here.
"""

from __future__ import annotations

import contextlib

import click
from kith.cli._context import CliError, KithGroup, get_settings
from kith.logs import get_logger
from kith.plugin_manager import KithPluginManager, PluginError, get_plugin_manager
from kith.settings import SettingsError


def cli_plugin_manager() -> KithPluginManager:
    """The process-wide plugin manager, with a plugin that stops start-up (strict mode) or a
    bad KITH_*_PLUGINS value as one readable line."""
    # Logging is set up from the settings first, so that a plugin skipped while loading is
    # reported where the installation's logs go; a settings error is left to the command, which
    # reports it properly (help and plugin listings work without valid settings).
    with contextlib.suppress(SettingsError):
        get_settings()
    try:
        return get_plugin_manager()
    except PluginError as exc:
        raise CliError(exc.detail) from None
    except SettingsError as exc:
        raise CliError(str(exc), 2) from None


class PluginCommandsGroup(KithGroup):
    """Kith's own commands first; then the plugins' (a plugin command whose name a built-in
    command already has is left out, with a warning naming the plugin)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        return self._plugin_commands().get(cmd_name)

    _warned: set[tuple[int, str, str]] = set()

    def _plugin_commands(self) -> dict[str, click.Command]:
        manager = cli_plugin_manager()
        for info in manager.plugins():
            for command in manager.contributions(info.name).get("commands", []):
                name = str(command.name)
                # Help asks for the commands more than once; say it once per manager.
                key = (id(manager), info.name, name)
                if name in self.commands and key not in self._warned:
                    self._warned.add(key)
                    get_logger("kith.plugins").warning(
                        "plugin command has the name of a built-in command and is left out",
                        plugin=info.name,
                        command=name,
                    )
        return {
            str(command.name): command
            for command in manager.commands()
            if str(command.name) not in self.commands
        }
