"""The contacts list ordered by last interaction (the newest one other than a task, kept by the
database whichever way interactions are written), contacts with none last: in the service, the
API, ``kith contacts list`` and the web list page, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import msgspec
from _privacy_workflow import cli_env, run_services
from kith import ContactCreate, ContactService, InteractionCreate, InteractionService, Kith
from kith.schemas import InteractionPatch
from kith.services.merges import MergeService
from kith.tables import Contact
from kith.testing import KithCli, TokenFactory
from test_web_sessions import add, browser_like, sign_in

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


async def _contacts(kith: Kith) -> dict[str, uuid.UUID]:
    """Ada (email 3 days ago), Bob (call yesterday), Cleo (a task only), Dora (nothing)."""
    contacts = ContactService(kith)
    log = InteractionService(kith).log
    made = {
        name: (await contacts.create(ContactCreate(name=name))).id
        for name in ("Ada", "Bob", "Cleo", "Dora")
    }
    await log(made["Ada"], InteractionCreate(kind="email", occurred_at=ago(3)))
    await log(made["Bob"], InteractionCreate(kind="meeting", occurred_at=ago(20)))
    await log(made["Bob"], InteractionCreate(kind="call", occurred_at=ago(1)))
    await log(made["Cleo"], InteractionCreate(kind="task", summary="Call", due_at=ago(-2)))
    return made


async def _everything(service: ContactService, limit: int = 2) -> list[uuid.UUID]:
    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        page = await service.list(sort="last_interaction", limit=limit, cursor=cursor)
        seen += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return seen


async def test_the_order_follows_every_way_interactions_change(kith: Kith) -> None:
    c = await _contacts(kith)
    service = ContactService(kith)
    interactions = InteractionService(kith)
    # Most recent first; then those with none (a task does not count), newest first.
    expected = [c["Bob"], c["Ada"], c["Dora"], c["Cleo"]]
    assert await _everything(service) == expected
    assert await _everything(service, limit=1) == expected
    assert await _everything(service, limit=10) == expected

    # A note moved to today puts Dora first; moved back a month, after Ada.
    note, _ = await interactions.log(c["Dora"], InteractionCreate(kind="note", occurred_at=NOW))
    assert (await _everything(service))[0] == c["Dora"]
    await interactions.update(note.id, InteractionPatch(occurred_at=ago(30)))
    assert await _everything(service) == [c["Bob"], c["Ada"], c["Dora"], c["Cleo"]]

    # Deleting the newest (a retention rule) leaves the next newest.
    assert await interactions.delete_older_than(ago(0.5), kinds=["call"]) == 1
    assert await _everything(service) == [c["Ada"], c["Bob"], c["Dora"], c["Cleo"]]
    row = await Contact.select(Contact.last_interaction_at).where(Contact.id == c["Bob"]).first()
    assert row is not None and row["last_interaction_at"] == ago(20)

    # A merge moves the loser's interactions: the survivor takes Ada's email.
    await MergeService(kith).merge(c["Cleo"], [c["Ada"]])
    assert await _everything(service) == [c["Cleo"], c["Bob"], c["Dora"]]


async def test_the_api_lists_by_last_interaction(
    kith: Kith, kith_client: Any, kith_auth: TokenFactory
) -> None:
    c = await _contacts(kith)
    headers = await kith_auth("agent")
    first = await kith_client.get(
        "/api/contacts", params={"sort": "last_interaction", "limit": 3}, headers=headers
    )
    assert first.status_code == 200, first.text
    assert [i["id"] for i in first.json()["items"]] == [str(c[n]) for n in ("Bob", "Ada", "Dora")]
    rest = await kith_client.get(
        "/api/contacts",
        params={"sort": "last_interaction", "cursor": first.json()["next_cursor"]},
        headers=headers,
    )
    assert [i["id"] for i in rest.json()["items"]] == [str(c["Cleo"])]
    # A name search cannot follow this order; another order's cursor is refused.
    refused = await kith_client.get(
        "/api/contacts", params={"sort": "last_interaction", "q": "ada"}, headers=headers
    )
    assert refused.status_code == 422 and refused.json()["field"] == "sort"
    mixed = await kith_client.get(
        "/api/contacts",
        params={"sort": "-updated", "cursor": first.json()["next_cursor"]},
        headers=headers,
    )
    assert mixed.status_code == 422 and mixed.json()["field"] == "cursor"


def test_the_command_lists_by_last_interaction(
    kith_database_url: str, kith_cli: KithCli, tmp_path: Path
) -> None:
    _, env = cli_env(kith_database_url, tmp_path / "kith-home")
    run_services(env, _contacts)
    result = kith_cli("contacts", "list", "--sort", "last_interaction", "--json", env=env)
    assert result.exit_code == 0, result.output
    names = [c["name"] for c in msgspec.json.decode(result.stdout)]
    assert names == ["Bob", "Ada", "Dora", "Cleo"]


async def test_the_page_lists_by_last_interaction(kith: Kith) -> None:
    await _contacts(kith)
    email = await add(kith, "agent")
    async with browser_like(kith) as client:
        await sign_in(client, email)
        page = await client.get("/contacts", params={"sort": "last_interaction"})
        assert page.status_code == 200
        assert '<option value="last_interaction" selected>' in page.text
        shown = [page.text.index(f">{name}<") for name in ("Bob", "Ada", "Dora", "Cleo")]
        assert shown == sorted(shown)
