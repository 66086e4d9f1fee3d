"""The plugin module named by the ``kith`` entry point: Kith registers it with pluggy, so each
function below marked ``@hookimpl`` is called for the hook of the same name.

The register-style hooks run once, when Kith loads its plugins; they only declare things. The
code that does the work (the subscriber, the routes, the command) runs later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import msgspec
from kith import EventType, Subscriber, hookimpl
from piccolo.conf.apps import AppConfig

from kith_example.welcomes import WELCOMED, ExampleSettings, on_contact_created


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    from kith_example.piccolo_app import APP_CONFIG

    register(APP_CONFIG)


@hookimpl
def kith_register_routes(register: Callable[[Any], None]) -> None:
    from kith_example.routes import list_welcomes, welcomed

    register(list_welcomes)
    register(welcomed)


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    # Imported here: the CLI module pulls in Kith's command-line plumbing, which only the
    # `kith` command needs.
    from kith_example.cli import example

    register(example)


@hookimpl
def kith_register_event_types(register: Callable[[EventType], None]) -> None:
    register(EventType(WELCOMED, "A contact on the welcome list was welcomed.", ("contact_id",)))


@hookimpl
def kith_register_subscribers(register: Callable[[Subscriber], None]) -> None:
    # The name is stored with every delivery in the outbox: keep it stable.
    register(
        Subscriber(name="example.welcome", events=("contact.created",), handler=on_contact_created)
    )


@hookimpl
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    register("example", ExampleSettings)
