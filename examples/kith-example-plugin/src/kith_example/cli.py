"""The plugin's commands: ``kith example ...``."""

from __future__ import annotations

import click
from kith import SYSTEM, Kith
from kith.console import AUDIT_CHANNEL, note, parse_id, print_table, run_with_kith

from kith_example.welcomes import WelcomeOut, set_note, welcome_list


@click.group()
def example() -> None:
    """The example plugin's welcome list."""


@example.command("welcomes")
@click.option("--all", "include_done", is_flag=True, help="Also list contacts welcomed already.")
def welcomes(include_done: bool) -> None:
    """List contacts waiting to be welcomed."""

    async def work(kith: Kith) -> list[WelcomeOut]:
        return await welcome_list(kith, include_done, SYSTEM, AUDIT_CHANNEL)

    rows = run_with_kith(work)
    print_table(
        ["contact", "added", "welcomed", "note"],
        [
            (
                w.contact_id,
                w.created_at.isoformat(timespec="seconds"),
                w.welcomed_at or "",
                w.note or "",
            )
            for w in rows
        ],
        empty="Nobody is waiting to be welcomed.",
    )


@example.command("note")
@click.argument("contact")
@click.argument("text")
def welcome_note(contact: str, text: str) -> None:
    """Note how to welcome CONTACT (stored encrypted: it is about the person)."""
    contact_id = parse_id(contact, "contact")

    async def work(kith: Kith) -> WelcomeOut:
        return await set_note(kith, contact_id, text, SYSTEM, AUDIT_CHANNEL)

    run_with_kith(work)
    note(f"note on contact {contact_id} saved")
