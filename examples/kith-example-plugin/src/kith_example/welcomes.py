"""The welcome list: what the subscriber, the route and the command share."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
from kith import Actor, Event, Kith, NotFound, utcnow

from kith_example.tables import Welcome

WELCOMED = "example.welcomed"


class ExampleSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The optional ``[example]`` table of ``kith.toml``; every setting has a default, so the
    plugin works with no configuration at all."""

    list_limit: int = 100


class WelcomeOut(msgspec.Struct, kw_only=True):
    contact_id: uuid.UUID
    created_at: dt.datetime
    welcomed_at: dt.datetime | None


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


async def welcome_list(kith: Kith, include_done: bool = False) -> list[WelcomeOut]:
    query = Welcome.select().order_by(Welcome.created_at).limit(settings_of(kith).list_limit)
    if not include_done:
        query = query.where(Welcome.welcomed_at.is_null())
    return [
        WelcomeOut(
            contact_id=row["contact_id"],
            created_at=row["created_at"],
            welcomed_at=row["welcomed_at"],
        )
        for row in await query.run()
    ]


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
