"""The ``kith`` command: a thin layer over Kith's services.

Each command family lives in its own module; to add one, import its click command or group and
register it with ``main.add_command`` below (one line per family). Shared plumbing (settings,
an opened Kith, errors as exit codes, tables) is in :mod:`kith.console`.
"""

from __future__ import annotations

import click
from kith.cli._plugin_commands import PluginCommandsGroup
from kith.cli.cadences import cadences, contacts_due
from kith.cli.contacts import contacts
from kith.cli.duplicates import duplicates
from kith.cli.events import events
from kith.cli.exports import export
from kith.cli.fields import fields
from kith.cli.imports import import_
from kith.cli.interactions import log_interaction
from kith.cli.merges import merge_contacts, unmerge_contacts
from kith.cli.plugins import plugins
from kith.cli.quality import quality
from kith.cli.reminders import reminders, snooze_task
from kith.cli.reports import report
from kith.cli.setup import init, migrate, serve
from kith.cli.tasks import tasks
from kith.cli.triggers import triggers
from kith.cli.users import tokens, users
from kith.cli.worker import worker


@click.group(cls=PluginCommandsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kith", prog_name="kith")
def main() -> None:
    """Kith: a self-hostable CRM. Settings come from KITH_* variables and KITH_HOME/kith.toml."""


main.add_command(init)
main.add_command(migrate)
main.add_command(serve)
main.add_command(worker)
main.add_command(users)
main.add_command(tokens)
main.add_command(contacts)
contacts.add_command(merge_contacts)
contacts.add_command(unmerge_contacts)
contacts.add_command(duplicates)
main.add_command(fields)
main.add_command(import_)
main.add_command(tasks)
tasks.add_command(snooze_task)
main.add_command(reminders)
main.add_command(cadences)
main.add_command(triggers)
main.add_command(report)
contacts.add_command(contacts_due)
main.add_command(log_interaction)
main.add_command(plugins)
main.add_command(events)
main.add_command(export)
main.add_command(quality)
