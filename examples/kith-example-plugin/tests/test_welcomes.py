"""The example plugin's own tests, written with Kith's pytest fixtures.

Every test that uses ``kith`` (or ``kith_client``, ``kith_auth``) runs twice, on SQLite and on
PostgreSQL, each time on a fresh database that already holds every installed plugin's tables.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kith import Event, Kith, Subscriber, hookimpl, new_id
from kith_example.tables import Welcome
from kith_example.welcomes import on_contact_created, welcome_list


class EventRecorder:
    """A plugin object registered for one test: it records the events it subscribes to."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def kith_register_subscribers(self, register: Callable[[Subscriber], None]) -> None:
        register(Subscriber(name="test.recorder", events=("example.*",), handler=self.record))

    async def record(self, kith: Kith, event: Event) -> None:
        self.events.append(event)


RECORDER = EventRecorder()


async def test_a_new_contact_is_put_on_the_welcome_list(kith: Kith, kith_client, kith_auth):
    agent = await kith_auth("agent")
    created = await kith_client.post("/api/contacts", json={"name": "Ada"}, headers=agent)
    assert created.status_code == 201
    await kith.bus.drain()  # deliver the events now instead of in the background

    listed = await kith_client.get("/api/example/welcomes", headers=agent)
    assert [w["contact_id"] for w in listed.json()] == [created.json()["id"]]


async def test_the_subscriber_is_idempotent(kith: Kith):
    event = Event(name="contact.created", contact_id=new_id())
    await on_contact_created(kith, event)
    await on_contact_created(kith, event)  # the bus delivers at least once
    assert len(await welcome_list(kith)) == 1


async def test_only_agents_and_admins_see_the_list(kith_client, kith_auth):
    compliance = await kith_auth("compliance")
    response = await kith_client.get("/api/example/welcomes", headers=compliance)
    assert response.status_code == 403


@pytest.mark.kith_plugins(RECORDER)
async def test_welcoming_publishes_an_event(kith: Kith, kith_client, kith_auth):
    RECORDER.events.clear()
    agent = await kith_auth("agent")
    created = await kith_client.post("/api/contacts", json={"name": "Grace"}, headers=agent)
    contact_id = created.json()["id"]
    await kith.bus.drain()

    done = await kith_client.post(f"/api/example/welcomes/{contact_id}/done", headers=agent)
    assert done.status_code == 200
    await kith.bus.drain()
    assert [(e.name, str(e.contact_id)) for e in RECORDER.events] == [
        ("example.welcomed", contact_id)
    ]


async def test_a_note_is_stored_sealed_and_read_back(kith: Kith, kith_client, kith_auth):
    agent = await kith_auth("agent")
    created = await kith_client.post("/api/contacts", json={"name": "Ada"}, headers=agent)
    contact_id = created.json()["id"]
    await kith.bus.drain()

    text = "Prefers a phone call after 6pm"
    saved = await kith_client.put(
        f"/api/example/welcomes/{contact_id}/note", json={"note": text}, headers=agent
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["note"] == text
    # What the table holds is what the protector made of it, not the note itself.
    [row] = await Welcome.select(Welcome.note)
    assert text not in row["note"]
    listed = await kith_client.get("/api/example/welcomes", headers=agent)
    assert [w["note"] for w in listed.json()] == [text]
    empty = await kith_client.put(
        f"/api/example/welcomes/{contact_id}/note", json={"note": " "}, headers=agent
    )
    assert empty.status_code == 422
