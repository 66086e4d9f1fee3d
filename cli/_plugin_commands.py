"""The top ``kith`` group with the commands plugins register (``kith_register_commands``).

Plugins are loaded only when they are needed: to list every command (``kith --help``) or to find
a command that is not one of Kith's own. ``kith migrate`` alone does not wait for them here.
"""

from __future__ import annotations

import click
from kith.console import KithGroup, cli_plugin_manager
from kith.logs import get_logger


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
