"""``kith telephony status`` and ``kith call CONTACT``: thin, over the call service.

Whoever runs the ``kith`` command on the installation acts as an administrator; ``kith call``
places the call from the extension of the user named with ``--user``.
"""

from __future__ import annotations

import click
from kith import Actor, Kith, UserService
from kith.console import (
    format_time,
    get_settings,
    parse_id,
    print_json,
    print_table,
    run_with_kith,
)
from kith.plugins.telephony.providers_registry import providers_of
from kith.plugins.telephony.schemas import CallOut, ProviderStatus
from kith.plugins.telephony.services import CallService


@click.group()
def telephony() -> None:
    """Calls from the office PBX and cloud telephony providers."""


@telephony.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(as_json: bool) -> None:
    """Per provider: enabled, events taken in, the last one and how late it arrived."""

    async def work(kith: Kith) -> list[ProviderStatus]:
        return await CallService(kith).status(providers_of(kith))

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    print_table(
        ["provider", "enabled", "events", "last event", "lag"],
        [
            (
                s.provider,
                "yes" if s.enabled else "no",
                s.events,
                format_time(s.last_event_at, settings) or "never",
                "" if s.lag_seconds is None else f"{s.lag_seconds:.1f} s",
            )
            for s in found
        ],
        empty="No telephony provider is enabled; see [telephony] in kith.toml.",
    )


@click.command("call")
@click.argument("contact")
@click.option("--user", "user_email", required=True, help="The email of the user who calls.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a line.")
def call(contact: str, user_email: str, as_json: bool) -> None:
    """Call CONTACT (an id) from the user's extension through the telephony provider."""
    contact_id = parse_id(contact, "contact")

    async def work(kith: Kith) -> CallOut:
        user = await UserService(kith).by_email(user_email)
        actor = Actor(kind="user", id=user.id, role=user.role, name="cli")
        return await CallService(kith).call(contact_id, actor, providers_of(kith))

    placed = run_with_kith(work)
    if as_json:
        print_json(placed)
        return
    click.echo(f"calling  {placed.id}")
    click.echo(f"from     extension {placed.extension} through {placed.provider}")
