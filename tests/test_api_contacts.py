"""The contacts API: create, read, change, archive, search and page through contacts."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import kith.services.contacts as contacts_module
import pytest
from kith.hookspecs import hookimpl
from kith.runtime import Kith
from kith.services.users import UserService
from kith.subjects import Access
from kith.testing import TokenFactory

Json = dict[str, Any]


@pytest.fixture
async def agent(kith_auth: TokenFactory) -> dict[str, str]:
    return await kith_auth("agent")


@pytest.fixture
def api(kith_client: httpx.AsyncClient, agent: dict[str, str]) -> Api:
    return Api(kith_client, agent)


class Api:
    """Small helpers over the HTTP client so tests read like what a user does."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    async def post(self, body: Json) -> httpx.Response:
        return await self.client.post("/api/contacts", json=body, headers=self.headers)

    async def create(self, **body: Any) -> Json:
        response = await self.post(body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def patch(self, contact_id: str, body: Json) -> httpx.Response:
        return await self.client.patch(
            f"/api/contacts/{contact_id}", json=body, headers=self.headers
        )

    async def get(self, contact_id: str) -> httpx.Response:
        return await self.client.get(f"/api/contacts/{contact_id}", headers=self.headers)

    async def list(self, **params: Any) -> httpx.Response:
        return await self.client.get("/api/contacts", params=params, headers=self.headers)

    async def ids(self, **params: Any) -> list[str]:
        response = await self.list(**params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]


# -- creating ----------------------------------------------------------------------------------


async def test_create_person_derives_name_from_parts(api: Api) -> None:
    response = await api.post({"given_name": " Ada ", "family_name": "Lovelace"})
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/api/contacts/{body['id']}"
    assert body["kind"] == "person"
    assert body["name"] == "Ada Lovelace"
    assert (body["given_name"], body["family_name"]) == ("Ada", "Lovelace")
    assert body["archived"] is False
    assert (await api.get(body["id"])).json() == body


async def test_explicit_name_wins_over_parts(api: Api) -> None:
    body = await api.create(name="Countess of Lovelace", given_name="Ada", family_name="King")
    assert body["name"] == "Countess of Lovelace"


async def test_create_organization(api: Api) -> None:
    body = await api.create(kind="organization", name="Analytical Engines Ltd", tags=["b2b"])
    assert body["kind"] == "organization"
    assert body["name"] == "Analytical Engines Ltd"
    assert body["tags"] == ["b2b"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "person"},
        {"kind": "person", "name": "   ", "given_name": "  "},
        {"kind": "organization", "name": ""},
    ],
)
async def test_contact_without_a_name_is_refused(api: Api, body: Json) -> None:
    response = await api.post(body)
    assert response.status_code == 422
    assert response.json()["field"] == "name"


async def test_tags_are_trimmed_and_deduplicated(api: Api) -> None:
    body = await api.create(name="Ada", tags=[" vip", "vip", "lead "])
    assert body["tags"] == ["vip", "lead"]


async def test_organization_link(api: Api) -> None:
    org = await api.create(kind="organization", name="Engines Ltd")
    person = await api.create(name="Ada", organization_id=org["id"])
    assert person["organization_id"] == org["id"]

    missing = await api.post({"name": "Bob", "organization_id": str(uuid.uuid4())})
    assert missing.status_code == 422
    assert missing.json()["field"] == "organization_id"

    not_an_org = await api.post({"name": "Bob", "organization_id": person["id"]})
    assert not_an_org.status_code == 422
    assert "not an organization" in not_an_org.json()["detail"]

    own = await api.patch(org["id"], {"organization_id": org["id"]})
    assert own.status_code == 422
    assert own.json()["field"] == "organization_id"


async def test_organization_with_members_cannot_become_a_person(api: Api) -> None:
    org = await api.create(kind="organization", name="Engines Ltd")
    await api.create(name="Ada", organization_id=org["id"])
    response = await api.patch(org["id"], {"kind": "person"})
    assert response.status_code == 409
    assert (await api.get(org["id"])).json()["kind"] == "organization"


async def test_owner_must_be_a_user(api: Api, kith: Kith) -> None:
    user = await UserService(kith).add("owner@firm.example", "agent")
    body = await api.create(name="Ada", owner_id=str(user.id))
    assert body["owner_id"] == str(user.id)
    response = await api.post({"name": "Bob", "owner_id": str(uuid.uuid4())})
    assert response.status_code == 422
    assert response.json()["field"] == "owner_id"


# -- emails and phones -------------------------------------------------------------------------


async def test_several_emails_and_phones_with_labels(api: Api) -> None:
    body = await api.create(
        name="Ada",
        emails=[
            {"address": "ada@home.example", "label": "home"},
            {"address": "Ada@Work.example", "label": "work", "primary": True},
        ],
        phones=[
            {"number": "020 7946 0018", "label": "office"},
            {"number": "07700 900123", "label": "mobile"},
        ],
    )
    assert body["emails"] == [
        {"address": "ada@home.example", "label": "home", "primary": False},
        {"address": "ada@work.example", "label": "work", "primary": True},
    ]
    # Without a primary, the first one is.
    assert body["phones"] == [
        {"number": "+442079460018", "label": "office", "primary": True},
        {"number": "+447700900123", "label": "mobile", "primary": False},
    ]


async def test_two_primaries_are_refused(api: Api) -> None:
    response = await api.post(
        {
            "name": "Ada",
            "emails": [
                {"address": "a@one.example", "primary": True},
                {"address": "a@two.example", "primary": True},
            ],
        }
    )
    assert response.status_code == 422
    assert response.json()["field"] == "emails"


@pytest.mark.parametrize(
    ("kind", "values", "field"),
    [
        ("emails", [{"address": "ada@example.com"}, {"address": " ADA@example.COM"}], "emails[1]"),
        ("phones", [{"number": "+44 20 7946 0018"}, {"number": "020-7946-0018"}], "phones[1]"),
    ],
)
async def test_duplicates_within_one_request_are_refused(
    api: Api, kind: str, values: list[Json], field: str
) -> None:
    response = await api.post({"name": "Ada", kind: values})
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert "twice" in response.json()["detail"]


async def test_primary_email_of_another_contact_is_a_conflict(api: Api) -> None:
    first = await api.create(name="Ada", emails=[{"address": "ada@example.com"}])
    response = await api.post({"name": "Ada again", "emails": [{"address": "ADA@example.com"}]})
    assert response.status_code == 409
    problem = response.json()
    assert problem["existing_contact_id"] == first["id"]
    assert first["id"] in problem["detail"]
    # Archived contacts still hold their address: the answer points at them.
    await api.client.delete(f"/api/contacts/{first['id']}", headers=api.headers)
    again = await api.post({"name": "Ada again", "emails": [{"address": "ada@example.com"}]})
    assert again.status_code == 409
    assert again.json()["existing_contact_id"] == first["id"]


async def test_conflict_leaves_nothing_behind(api: Api) -> None:
    await api.create(name="Ada", emails=[{"address": "ada@example.com"}])
    response = await api.post(
        {
            "name": "Half Written",
            "emails": [
                {"address": "other@example.com"},
                {"address": "ada@example.com", "primary": True},
            ],
        }
    )
    assert response.status_code == 409
    assert await api.ids(q="Half") == []
    assert await api.ids(q="other@example.com") == []


# -- changing ----------------------------------------------------------------------------------


async def test_patch_changes_only_what_is_sent(api: Api) -> None:
    org = await api.create(kind="organization", name="Engines Ltd")
    ada = await api.create(
        given_name="Ada",
        family_name="Lovelace",
        organization_id=org["id"],
        emails=[{"address": "ada@example.com"}],
        phones=[{"number": "020 7946 0018"}],
        tags=["vip"],
    )
    response = await api.patch(ada["id"], {"tags": ["vip", "speaker"]})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["tags"] == ["vip", "speaker"]
    unchanged = {k: v for k, v in changed.items() if k not in ("tags", "updated_at")}
    assert unchanged == {k: v for k, v in ada.items() if k not in ("tags", "updated_at")}
    assert changed["updated_at"] >= ada["updated_at"]


async def test_patch_null_clears(api: Api) -> None:
    org = await api.create(kind="organization", name="Engines Ltd")
    ada = await api.create(given_name="Ada", family_name="Lovelace", organization_id=org["id"])
    response = await api.patch(ada["id"], {"family_name": None, "organization_id": None})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["family_name"] is None
    assert body["organization_id"] is None
    # The name was derived from the parts, so it follows them.
    assert body["name"] == "Ada"


async def test_patch_keeps_an_explicit_name_when_parts_change(api: Api) -> None:
    ada = await api.create(name="The Countess", given_name="Ada")
    body = (await api.patch(ada["id"], {"given_name": "Augusta"})).json()
    assert body["name"] == "The Countess"
    # An empty name goes back to the one derived from the parts.
    cleared = await api.patch(ada["id"], {"name": ""})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["name"] == "Augusta"


async def test_patch_replaces_emails(api: Api) -> None:
    ada = await api.create(name="Ada", emails=[{"address": "old@example.com"}])
    response = await api.patch(
        ada["id"], {"emails": [{"address": "New@example.com", "label": "work"}]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["emails"] == [
        {"address": "new@example.com", "label": "work", "primary": True}
    ]
    assert await api.ids(q="old@example.com") == []
    assert await api.ids(q="new@example.com") == [ada["id"]]
    # The old address is free again.
    await api.create(name="Other", emails=[{"address": "old@example.com"}])
    # Sending a contact's own primary email again is not a conflict with itself.
    same = await api.patch(ada["id"], {"emails": [{"address": "new@example.com"}]})
    assert same.status_code == 200
    emptied = await api.patch(ada["id"], {"emails": []})
    assert emptied.json()["emails"] == []


async def test_patch_that_conflicts_keeps_the_old_emails(api: Api) -> None:
    await api.create(name="Bob", emails=[{"address": "bob@example.com"}])
    ada = await api.create(name="Ada", emails=[{"address": "ada@example.com"}])
    response = await api.patch(ada["id"], {"emails": [{"address": "bob@example.com"}]})
    assert response.status_code == 409
    assert (await api.get(ada["id"])).json()["emails"] == ada["emails"]


async def test_patch_refuses_unknown_fields_and_unknown_ids(api: Api) -> None:
    ada = await api.create(name="Ada")
    assert (await api.patch(ada["id"], {"nickname": "A"})).status_code == 422
    assert (await api.patch(str(uuid.uuid4()), {"name": "X"})).status_code == 404


# -- archiving ---------------------------------------------------------------------------------


async def test_delete_archives(api: Api) -> None:
    ada = await api.create(name="Ada")
    bob = await api.create(name="Bob")
    response = await api.client.delete(f"/api/contacts/{ada['id']}", headers=api.headers)
    assert response.status_code == 200
    assert response.json()["archived"] is True
    # Still readable by id, hidden from lists and searches unless asked for.
    assert (await api.get(ada["id"])).json()["archived"] is True
    assert await api.ids() == [bob["id"]]
    assert await api.ids(q="Ada") == []
    assert await api.ids(include_archived="true") == [ada["id"], bob["id"]]
    assert await api.ids(q="Ada", include_archived="true") == [ada["id"]]
    again = await api.client.delete(f"/api/contacts/{ada['id']}", headers=api.headers)
    assert again.status_code == 200
    restored = await api.patch(ada["id"], {"archived": False})
    assert restored.json()["archived"] is False
    assert await api.ids() == [ada["id"], bob["id"]]
    missing = await api.client.delete(f"/api/contacts/{uuid.uuid4()}", headers=api.headers)
    assert missing.status_code == 404


# -- searching ---------------------------------------------------------------------------------


async def test_search_by_name_prefix_email_and_phone(api: Api) -> None:
    ada = await api.create(
        given_name="Ada",
        family_name="Lovelace",
        emails=[{"address": "ada@example.com"}, {"address": "countess@example.org"}],
        phones=[{"number": "+44 20 7946 0018"}],
    )
    org = await api.create(kind="organization", name="Babbage & Sons")
    assert await api.ids(q="ada") == [ada["id"]]
    assert await api.ids(q="LOVE") == [ada["id"]]
    assert await api.ids(q="sons") == [org["id"]]
    assert await api.ids(q="bab") == [org["id"]]
    assert await api.ids(q="velace") == []
    assert await api.ids(q="ADA@Example.com") == [ada["id"]]
    assert await api.ids(q=" countess@EXAMPLE.org ") == [ada["id"]]
    assert await api.ids(q="ada@example") == []
    assert await api.ids(q="0044 (20) 7946-0018") == [ada["id"]]
    assert await api.ids(q="020 7946 0018") == [ada["id"]]
    assert await api.ids(q="020 7946 0019") == []


async def test_name_search_pages_across_scan_chunks(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contacts_module, "SCAN_CHUNK", 3)
    wanted = []
    for index in range(12):
        if index % 3 == 0:
            wanted.append((await api.create(name=f"Smith {index}"))["id"])
        else:
            await api.create(name=f"Jones {index}")
    seen: list[str] = []
    cursor = None
    while True:
        params: Json = {"q": "smith", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.list(**params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == wanted


# -- paging ------------------------------------------------------------------------------------


async def test_pages_are_stable_while_contacts_are_added(api: Api) -> None:
    originals = [(await api.create(name=f"Original {n}"))["id"] for n in range(11)]
    seen: list[str] = []
    cursor = None
    added = 0
    while True:
        params: Json = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = await api.list(**params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # Someone else adds contacts between two pages.
        for _ in range(2):
            await api.create(name=f"Added {added}")
            added += 1
    assert len(seen) == len(set(seen)), "a contact was listed twice"
    assert [i for i in seen if i in originals] == originals
    assert len(seen) == len(originals) + added


async def test_last_page_has_no_cursor(api: Api) -> None:
    for n in range(4):
        await api.create(name=f"C{n}")
    first = (await api.list(limit=2)).json()
    second = (await api.list(limit=2, cursor=first["next_cursor"])).json()
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None
    everything = (await api.list(limit=200)).json()
    assert len(everything["items"]) == 4
    assert everything["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "WyJ4Il0", "WyJ4IiwieSJd", "!!!", "eyJhIjoxfQ"],
)
async def test_bad_cursor_is_422(api: Api, cursor: str) -> None:
    response = await api.list(cursor=cursor)
    assert response.status_code == 422
    assert response.json()["field"] == "cursor"


@pytest.mark.parametrize("limit", ["0", "-1", "201", "many"])
async def test_limit_out_of_bounds_is_422(api: Api, limit: str) -> None:
    response = await api.list(limit=limit)
    assert response.status_code == 422
    assert "limit" in response.json()["detail"]


@pytest.mark.parametrize("limit", [1, 200])
async def test_limit_bounds_are_accepted(api: Api, limit: int) -> None:
    await api.create(name="Ada")
    await api.create(name="Bob")
    response = await api.list(limit=limit)
    assert response.status_code == 200
    assert len(response.json()["items"]) == min(limit, 2)


# -- organizations and their people ------------------------------------------------------------


class Watcher:
    """Sees every access the services report, as the audit log does."""

    def __init__(self) -> None:
        self.seen: list[Access] = []

    @hookimpl
    def kith_record_access(self, access: Access) -> None:
        self.seen.append(access)

    def read(self, action: str) -> list[str]:
        return [str(access.contact_id) for access in self.seen if access.action == action]


@pytest.fixture
def watcher() -> Watcher:
    return Watcher()


@pytest.fixture
def kith_plugins(watcher: Watcher) -> list[Any]:
    return [("watcher", watcher)]


async def _firms(api: Api) -> dict[str, str]:
    """Engines Ltd with Ada and Bob (archived), Looms Ltd with Cy, and Dot on her own."""
    engines = await api.create(kind="organization", name="Engines Ltd")
    looms = await api.create(kind="organization", name="Looms Ltd")
    ids = {"engines": engines["id"], "looms": looms["id"]}
    for key, name, org in (("ada", "Ada", engines), ("bob", "Bob", engines), ("cy", "Cy", looms)):
        ids[key] = (await api.create(name=name, organization_id=org["id"]))["id"]
    ids["dot"] = (await api.create(name="Dot"))["id"]
    assert (await api.client.delete(f"/api/contacts/{ids['bob']}", headers=api.headers)).is_success
    return ids


async def test_contacts_are_filtered_by_organization(api: Api, watcher: Watcher) -> None:
    ids = await _firms(api)
    watcher.seen.clear()
    assert await api.ids(organization_id=ids["engines"]) == [ids["ada"]]
    assert watcher.read("list") == [ids["ada"]]
    assert await api.ids(organization_id=ids["engines"], include_archived="true") == [
        ids["ada"],
        ids["bob"],
    ]
    assert await api.ids(organization_id=ids["looms"]) == [ids["cy"]]
    assert await api.ids(organization_id=ids["looms"], q="ada") == []
    assert await api.ids(organization_id=ids["engines"], q="ada") == [ids["ada"]]

    for wrong, says in ((str(uuid.uuid4()), "does not exist"), (ids["dot"], "is a person")):
        response = await api.list(organization_id=wrong)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "organization_id"
        assert says in response.json()["detail"]
    assert (await api.list(organization_id="engines")).status_code == 422


async def test_an_organizations_people(api: Api, watcher: Watcher) -> None:
    ids = await _firms(api)
    watcher.seen.clear()

    async def people(org: str, **params: Any) -> httpx.Response:
        return await api.client.get(
            f"/api/contacts/{org}/people", params=params, headers=api.headers
        )

    response = await people(ids["engines"])
    assert response.status_code == 200, response.text
    assert [p["id"] for p in response.json()["items"]] == [ids["ada"]]
    assert watcher.read("list") == [ids["ada"]]
    everyone = await people(ids["engines"], include_archived="true", limit=1)
    assert [p["id"] for p in everyone.json()["items"]] == [ids["ada"]]
    rest = await people(
        ids["engines"], include_archived="true", cursor=everyone.json()["next_cursor"]
    )
    assert [p["id"] for p in rest.json()["items"]] == [ids["bob"]]
    assert rest.json()["next_cursor"] is None

    assert (await people(str(uuid.uuid4()))).status_code == 404
    person = await people(ids["dot"])
    assert person.status_code == 422
    assert "is a person" in person.json()["detail"]


async def test_an_organizations_timeline_can_include_its_peoples(
    api: Api, watcher: Watcher
) -> None:
    ids = await _firms(api)
    for who, kind, when in (
        ("engines", "note", "2025-01-01T09:00:00Z"),
        ("ada", "call", "2025-01-03T09:00:00Z"),
        ("bob", "email", "2025-01-02T09:00:00Z"),
        ("cy", "meeting", "2025-01-04T09:00:00Z"),
        ("dot", "note", "2025-01-05T09:00:00Z"),
    ):
        response = await api.client.post(
            f"/api/contacts/{ids[who]}/interactions",
            json={"kind": kind, "occurred_at": when, "summary": who},
            headers=api.headers,
        )
        assert response.status_code == 201, response.text
    url = f"/api/contacts/{ids['engines']}/timeline"

    own = await api.client.get(url, headers=api.headers)
    assert [i["summary"] for i in own.json()["items"]] == ["engines"]

    watcher.seen.clear()
    seen: list[Json] = []
    cursor = None
    while True:
        params: Json = {"include_people": "true", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        response = await api.client.get(url, params=params, headers=api.headers)
        assert response.status_code == 200, response.text
        seen += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    # Archived people keep their history on the organization's timeline.
    assert [i["summary"] for i in seen] == ["ada", "bob", "engines"]
    assert [i["contact_id"] for i in seen] == [ids["ada"], ids["bob"], ids["engines"]]
    # Every person whose interactions were shown is reported as read, and the organization.
    assert set(watcher.read("read_timeline")) == {ids["engines"], ids["ada"], ids["bob"]}

    person = await api.client.get(
        f"/api/contacts/{ids['dot']}/timeline",
        params={"include_people": "true"},
        headers=api.headers,
    )
    assert [i["summary"] for i in person.json()["items"]] == ["dot"]
