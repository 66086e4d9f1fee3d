"""The privacy module's plugin object: the hooks through which it joins Kith.

Registered through the ``kith`` entry-point group (``privacy = "kith.privacy.plugin"``), exactly
like a third-party plugin. A hook is implemented once per plugin, so each implementation here
calls both halves of the privacy module: encryption and keys, and the request workflow
(:mod:`kith.privacy.workflow_plugin`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from kith.events import EventType
from kith.hookspecs import hookimpl
from kith.personal import PersonalField
from kith.privacy import workflow_plugin
from kith.runtime import Kith
from piccolo.conf.apps import AppConfig


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    workflow_plugin.register_apps(register)


@hookimpl
def kith_register_routes(register: Callable[[Any], None]) -> None:
    workflow_plugin.register_routes(register)


@click.group("privacy")
def privacy() -> None:
    """Privacy: consent, data subject requests, certificates, records of processing."""


workflow_plugin.add_commands(privacy)


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    register(privacy)


@hookimpl
def kith_register_event_types(register: Callable[[EventType], None]) -> None:
    workflow_plugin.register_event_types(register)


@hookimpl
def kith_register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    workflow_plugin.register_personal_fields(register)


@hookimpl
def kith_startup(kith: Kith) -> None:
    workflow_plugin.startup(kith)
