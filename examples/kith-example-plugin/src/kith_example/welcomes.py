"""The welcome list: what the subscriber, the route and the command share."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from kith import SYSTEM, Actor, Event, InvalidInput, Kith, NotFound, record_access, utcnow

from kith_example.tables import Welcome

WELCOMED = "example.welcomed"
TABLE = "kith_example_welcome"
# The custom field the plugin declares for contacts (kith_register_custom_fields).
WELCOME_CHANNEL = "welcome_channel"
MAX_NOTE = 500


class ExampleSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The optional ``[example]`` table of ``kith.toml``; every setting has a default, so the
    plugin works with no configuration at all."""

    list_limit: int = 100


class WelcomeOut(msgspec.Struct, kw_only=True):
    contact_id: uuid.UUID
    created_at: dt.datetime
    welcomed_at: dt.datetime | None
    note: str | None = None


class NoteIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    note: str


async def open_note(kith: Kith, row: dict[str, Any]) -> str | None:
    """A row's note as the person's key opens it (the protector is the privacy plugin's, or
    stores plaintext when that is not installed)."""
    if row["note"] is None:
        return None
    opened = await kith.protector.reveal(row["contact_id"], TABLE, row["id"], {"note": row["note"]})
    return opened["note"]


async def _out(kith: Kith, row: dict[str, Any]) -> WelcomeOut:
    return WelcomeOut(
        contact_id=row["contact_id"],
        created_at=row["created_at"],
        welcomed_at=row["welcomed_at"],
        note=await open_note(kith, row),
    )


def settings_of(kith: Kith) -> ExampleSettings:
    """The ``[example]`` section of ``kith.toml`` (Kith validates it at start-up)."""
    return kith.settings.parsed("example", ExampleSettings)


async def on_contact_created(kith: Kith, event: Event) -> None:
    """Event subscriber: put the new contact on the list.

    The bus delivers at least once, so the event id decides: a second delivery of the same
    event finds its row and does nothing.
    """
    if event.contact_id is None:
        return
    seen = await Welcome.exists().where(
        (Welcome.event_id == event.id) | (Welcome.contact_id == event.contact_id)
    )
    if seen:
        return
    await Welcome.insert(
        Welcome(contact_id=event.contact_id, event_id=event.id, created_at=utcnow())
    ).run()


async def welcome_list(
    kith: Kith, include_done: bool = False, actor: Actor = SYSTEM, channel: str = "api"
) -> list[WelcomeOut]:
    """The list, notes opened; showing a person's note is a read of their data, so each is
    reported to the audit log."""
    query = Welcome.select().order_by(Welcome.created_at).limit(settings_of(kith).list_limit)
    if not include_done:
        query = query.where(Welcome.welcomed_at.is_null())
    listed = []
    for row in await query.run():
        listed.append(await _out(kith, row))
        if row["note"] is not None:
            await record_access(kith, row["contact_id"], "read", actor, channel, fields=["note"])
    return listed


async def set_note(
    kith: Kith, contact_id: uuid.UUID, note: str, actor: Actor, channel: str = "api"
) -> WelcomeOut:
    """Store an agent's note on how to welcome a contact, sealed under the person's key."""
    text = note.strip()
    if not text or len(text) > MAX_NOTE:
        raise InvalidInput(f"a note is 1 to {MAX_NOTE} characters", field="note")
    row = await Welcome.select().where(Welcome.contact_id == contact_id).first().run()
    if row is None:
        raise NotFound(f"contact {contact_id} is not on the welcome list")
    # Never a personal value in a column as it is: the protector turns it into what is stored.
    sealed = await kith.protector.protect(contact_id, TABLE, row["id"], {"note": text})
    await Welcome.update({Welcome.note: sealed["note"]}).where(Welcome.id == row["id"]).run()
    await record_access(kith, contact_id, "update", actor, channel, fields=["note"])
    return await _out(kith, {**row, "note": sealed["note"]})


async def mark_welcomed(kith: Kith, contact_id: uuid.UUID, actor: Actor) -> WelcomeOut:
    """Mark a contact welcomed and publish ``example.welcomed`` in the same transaction."""
    async with kith.unit_of_work(actor) as uow:
        row = await Welcome.select().where(Welcome.contact_id == contact_id).first().run()
        if row is None:
            raise NotFound(f"contact {contact_id} is not on the welcome list")
        welcomed_at = row["welcomed_at"] or utcnow()
        if row["welcomed_at"] is None:
            await (
                Welcome.update({Welcome.welcomed_at: welcomed_at})
                .where(Welcome.contact_id == contact_id)
                .run()
            )
            uow.publish(WELCOMED, contact_id, contact_id=str(contact_id))
    return WelcomeOut(contact_id=contact_id, created_at=row["created_at"], welcomed_at=welcomed_at)
