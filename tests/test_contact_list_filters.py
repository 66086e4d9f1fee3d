"""The contacts list filtered by tag, owner and kind and ordered by creation, last change or
name: in the service, the API and the web list page."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

import pytest
from kith.errors import InvalidInput
from kith.runtime import Kith
from kith.schemas import ContactCreate, ContactPatch
from kith.services.contacts import ContactService
from kith.services.users import UserService
from kith.testing import TokenFactory
from kith.web.views import contacts as contacts_view
from test_web_sessions import add, browser_like, sign_in


async def _people(kith: Kith) -> dict[str, Any]:
    owner = await UserService(kith).add("owner@staff.example", "agent", "Olga")
    service = ContactService(kith)

    async def make(name: str, **extra: Any) -> uuid.UUID:
        return (await service.create(ContactCreate(name=name, **extra))).id

    return {
        "owner": owner.id,
        "ada": await make("Ada Lovelace", tags=["vip", "london"], owner_id=owner.id),
        "bob": await make("Bob Brown", tags=["london"]),
        "acme": await make("Acme Ltd", kind="organization", tags=["vip"], owner_id=owner.id),
        "cleo": await make("Cleo Adams", tags=["vip"], owner_id=owner.id),
    }


async def _ids(service: ContactService, **params: Any) -> list[uuid.UUID]:
    return [item.id for item in (await service.list(**params)).items]


async def test_filters_combine_with_each_other_and_the_search(kith: Kith) -> None:
    c = await _people(kith)
    service = ContactService(kith)
    assert await _ids(service, tag="vip") == [c["ada"], c["acme"], c["cleo"]]
    assert await _ids(service, tag="london", owner_id=c["owner"]) == [c["ada"]]
    assert await _ids(service, tag="vip", kind="person") == [c["ada"], c["cleo"]]
    assert await _ids(service, kind="organization") == [c["acme"]]
    assert await _ids(service, tag="vi") == []  # a whole tag, not a part of one
    # Through the name index (its candidates are checked against the filters)...
    assert await _ids(service, q="ada", tag="vip") == [c["ada"], c["cleo"]]
    assert await _ids(service, q="ada", tag="london", kind="person") == [c["ada"]]
    # ...and an exact email or phone.
    assert await _ids(service, q="nobody@example.com", tag="vip") == []
    with pytest.raises(InvalidInput) as refused:
        await service.list(owner_id=uuid.uuid4())
    assert refused.value.extra["field"] == "owner_id"


async def test_orders_page_through_every_contact_once(kith: Kith) -> None:
    c = await _people(kith)
    service = ContactService(kith)
    # Bob changes last: first by last change, newest first.
    await service.update(c["bob"], ContactPatch(tags=["london", "new"]))

    async def everything(sort: str) -> list[uuid.UUID]:
        seen: list[uuid.UUID] = []
        cursor = None
        while True:
            page = await service.list(sort=sort, limit=3, cursor=cursor)
            seen += [item.id for item in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return seen

    created = [c["ada"], c["bob"], c["acme"], c["cleo"]]
    assert await everything("created") == created
    assert await everything("-created") == created[::-1]
    updated = await everything("-updated")
    assert updated[0] == c["bob"] and sorted(updated) == sorted(created)
    assert await everything("updated") == updated[::-1]
    # Names order each page; the pages follow creation order.
    assert await everything("name") == [c["acme"], c["ada"], c["bob"], c["cleo"]]
    assert await _ids(service, sort="-name", limit=3) == [c["bob"], c["ada"], c["acme"]]
    with pytest.raises(InvalidInput) as refused:
        await service.list(sort="-created", cursor=(await service.list(limit=1)).next_cursor)
    assert refused.value.extra["field"] == "cursor"
    with pytest.raises(InvalidInput) as refused:
        await service.list(q="ada", sort="-updated")
    assert refused.value.extra["field"] == "sort"


async def test_api_takes_the_filters_and_refuses_bad_values(
    kith: Kith, kith_client: Any, kith_auth: TokenFactory
) -> None:
    c = await _people(kith)
    headers = await kith_auth("agent")

    async def get(**params: Any) -> Any:
        return await kith_client.get("/api/contacts", params=params, headers=headers)

    found = await get(tag="vip", kind="person", owner_id=str(c["owner"]), sort="-created")
    assert found.status_code == 200, found.text
    assert [i["id"] for i in found.json()["items"]] == [str(c["cleo"]), str(c["ada"])]
    for bad in ({"sort": "size"}, {"kind": "robot"}, {"owner_id": "me"}, {"tag": ""}):
        refused = await get(**bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await get(owner_id=str(uuid.uuid4()))).json()["field"] == "owner_id"
    schema = (await kith_client.get("/schema/openapi.json")).json()
    parameters = {p["name"] for p in schema["paths"]["/api/contacts"]["get"]["parameters"]}
    assert {"tag", "owner_id", "kind", "sort"} <= parameters


async def test_web_list_keeps_its_filters_in_the_url(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = await _people(kith)
    email = await add(kith, "agent")
    async with browser_like(kith) as client:
        await sign_in(client, email)
        page = await client.get(
            "/contacts", params={"tag": "vip", "kind": "person", "sort": "-created"}
        )
        assert page.status_code == 200
        assert "Cleo Adams" in page.text and "Ada Lovelace" in page.text
        assert "Acme Ltd" not in page.text and "Bob Brown" not in page.text
        assert page.text.index("Cleo Adams") < page.text.index("Ada Lovelace")
        assert '<option value="person" selected>' in page.text
        monkeypatch.setattr(contacts_view, "PAGE_SIZE", 2)
        first = await client.get("/contacts", params={"tag": "vip", "sort": "-created"})
        link = re.search(r'href="(/contacts\?[^"]*cursor=[^"]+)"', first.text)
        assert link, "no next page link"
        second = await client.get(html.unescape(link.group(1)))
        assert "Ada Lovelace" in second.text and "Bob Brown" not in second.text
        assert "Cleo Adams" not in second.text
        bad = await client.get("/contacts", params={"sort": "size"})
        assert bad.status_code == 422 and "sort must be one of" in bad.text
        russian = await client.get(
            "/contacts", params={"owner": str(c["owner"])}, headers={"Accept-Language": "ru"}
        )
        assert "Olga" in russian.text and "Ada Lovelace" in russian.text
        assert "Bob Brown" not in russian.text
