"""Errors leave the API as RFC 9457 problem details, and a failed request leaves nothing behind."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from kith.http import create_app
from kith.runtime import Kith
from kith.tables import Contact, ContactPoint
from kith.testing import TokenFactory

PROBLEM = "application/problem+json"


@pytest.fixture
async def agent(kith_auth: TokenFactory) -> dict[str, str]:
    return await kith_auth("agent")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert "Traceback" not in body["detail"]
    return body


async def test_malformed_json_is_400(kith_client: httpx.AsyncClient, agent: dict[str, str]) -> None:
    for raw in (b"{not json", b'{"name": "Ada"', b"", b"\xff\xfe"):
        response = await kith_client.post(
            "/api/contacts", content=raw, headers={**agent, "Content-Type": "application/json"}
        )
        problem = assert_problem(response, 400)
        assert "body" in problem["detail"] or "JSON" in problem["detail"], raw


async def test_unknown_id_and_unknown_path_are_404(
    kith_client: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    missing = str(uuid.uuid4())
    for url in (f"/api/contacts/{missing}", f"/api/interactions/{missing}"):
        problem = assert_problem(await kith_client.get(url, headers=agent), 404)
        assert missing in problem["detail"]
    # "/" is the web UI's home page; an unknown path outside /api is still a 404 problem.
    for url in ("/api/nothing-here", "/api/contacts/not-a-uuid", "/nothing-here"):
        problem = assert_problem(await kith_client.get(url, headers=agent), 404)
        assert "/schema" in problem["detail"]


async def test_wrong_method_is_405(kith_client: httpx.AsyncClient, agent: dict[str, str]) -> None:
    response = await kith_client.put(f"/api/contacts/{uuid.uuid4()}", json={}, headers=agent)
    assert_problem(response, 405)
    assert "PATCH" in response.headers["allow"]
    assert_problem(await kith_client.delete("/api/contacts", headers=agent), 405)


async def test_conflict_is_409(kith_client: httpx.AsyncClient, agent: dict[str, str]) -> None:
    body = {"name": "Ada", "emails": [{"address": "ada@example.com"}]}
    first = await kith_client.post("/api/contacts", json=body, headers=agent)
    problem = assert_problem(await kith_client.post("/api/contacts", json=body, headers=agent), 409)
    assert problem["existing_contact_id"] == first.json()["id"]


@pytest.fixture
async def small_client(kith: Kith) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that accepts request bodies of at most 2 KiB."""
    kith.settings = dataclasses.replace(kith.settings, max_request_bytes=2048)
    app = create_app(kith, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kith.test") as client:
        yield client


async def test_body_over_the_limit_is_413(
    small_client: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    headers = {**agent, "Content-Type": "application/json"}
    big = b'{"name": "Ada", "tags": [' + b'"t",' * 1000 + b'"t"]}'
    problem = assert_problem(
        await small_client.post("/api/contacts", content=big, headers=headers), 413
    )
    assert "larger" in problem["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit holds for a streamed body too.
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    assert_problem(await small_client.post("/api/contacts", content=chunks(), headers=headers), 413)
    assert (await small_client.get("/api/contacts", headers=agent)).json()["items"] == []
    small = await small_client.post("/api/contacts", json={"name": "Ada"}, headers=agent)
    assert small.status_code == 201


async def test_body_that_is_not_json_is_415(
    kith_client: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {**agent, **({"Content-Type": content_type} if content_type else {})}
        response = await kith_client.post(
            "/api/contacts", content=b'{"name":"Ada"}', headers=headers
        )
        problem = assert_problem(response, 415)
        assert "application/json" in problem["detail"]
    charset = await kith_client.post(
        "/api/contacts",
        content=b'{"name":"Ada"}',
        headers={**agent, "Content-Type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 201


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"name": "Ada", "nickname": "A"}, "nickname"),
        ({"name": "Ada", "emails": [{"address": "a@example.com", "kind": "x"}]}, "kind"),
        ({"name": 42}, "name"),
        ({"name": "Ada", "tags": "vip"}, "tags"),
        ({"name": "Ada", "kind": "robot"}, "kind"),
        ({"name": "Ada", "organization_id": "not-a-uuid"}, "organization_id"),
        ({"name": "Ada", "emails": [{"address": "not-an-email"}]}, "emails[0]"),
        ({"name": "Ada", "emails": [{"address": 5}]}, "emails[0].address"),
        ({"name": "Ada", "phones": [{"number": "+44 20 7946 0018"}, {"number": "x"}]}, "phones[1]"),
        ({"name": "x" * 201}, "name"),
        ([{"name": "Ada"}], "body"),
    ],
)
async def test_invalid_input_is_422_naming_the_field(
    kith_client: httpx.AsyncClient, agent: dict[str, str], body: Any, names: str
) -> None:
    problem = assert_problem(await kith_client.post("/api/contacts", json=body, headers=agent), 422)
    assert names in problem["detail"] or problem.get("field") == names, problem


async def test_query_parameter_errors_are_422(
    kith_client: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    for params, name in (({"limit": "ten"}, "limit"), ({"due": "someday"}, "due")):
        url = "/api/tasks" if name == "due" else "/api/contacts"
        problem = assert_problem(await kith_client.get(url, params=params, headers=agent), 422)
        assert name in problem["detail"]


async def test_openapi_document_is_public_and_complete(kith: Kith) -> None:
    app = create_app(kith, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kith.test") as client:
        response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Kith"
    listed = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    handlers = [
        (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path), handler)
        for route in app.routes
        for method, (handler, _) in getattr(route, "route_handler_map", {}).items()
        if method != "OPTIONS" and not route.path.startswith("/schema")
    ]
    served = {
        (method, path) for method, path, handler in handlers if handler.resolve_include_in_schema()
    }
    # The web UI's pages are left out of the API document; nothing under /api may be.
    hidden = {path for _, path, handler in handlers if not handler.resolve_include_in_schema()}
    assert not [path for path in hidden if path.startswith("/api")]
    assert served, "the app serves no endpoints?"
    assert served == listed
    assert "bearer" in document["components"]["securitySchemes"]
    contact = document["components"]["schemas"]
    assert any(name.startswith("ContactOut") for name in contact)


class FailOnSecondPhone:
    """A field protector that breaks while the second phone of a contact is being written."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.phones = 0

    async def protect(
        self,
        subject_id: uuid.UUID,
        table: str,
        row_id: uuid.UUID,
        values: dict[str, Any],
        *,
        new_subject: bool = False,
    ) -> dict[str, Any]:
        if table == ContactPoint._meta.tablename and str(values.get("value", "")).startswith("+"):
            self.phones += 1
            if self.phones == 2:
                raise RuntimeError("disk on fire")
        return await self.inner.protect(  # type: ignore[no-any-return]
            subject_id, table, row_id, values, new_subject=new_subject
        )

    async def reveal(
        self, subject_id: uuid.UUID, table: str, row_id: uuid.UUID, values: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.inner.reveal(subject_id, table, row_id, values)  # type: ignore[no-any-return]

    def lookup_key(self, kind: str, normalized: str) -> str:
        return self.inner.lookup_key(kind, normalized)  # type: ignore[no-any-return]


async def test_failure_mid_write_leaves_nothing(
    kith: Kith, kith_client: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    kith.protector = FailOnSecondPhone(kith.protector)
    response = await kith_client.post(
        "/api/contacts",
        json={
            "name": "Ada",
            "emails": [{"address": "ada@example.com"}],
            "phones": [{"number": "020 7946 0018"}, {"number": "07700 900123"}],
        },
        headers=agent,
    )
    problem = assert_problem(response, 500)
    assert "disk on fire" not in problem["detail"]
    assert "request id" in problem["detail"]
    assert response.headers["x-request-id"]
    assert await Contact.count() == 0
    assert await ContactPoint.count() == 0


async def test_json_the_decoder_cannot_take_is_400(
    kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    admin = {**(await kith_auth("admin")), "Content-Type": "application/json"}
    deep = b'{"name": "Ada", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    for url in ("/api/contacts", "/api/privacy/certificates/verify"):
        for raw, says in ((b'{"name": "\xff"}', "UTF-8"), (deep, "nested too deeply")):
            problem = assert_problem(await kith_client.post(url, content=raw, headers=admin), 400)
            assert says in problem["detail"], (url, raw[:20])
    assert await Contact.count() == 0


async def _a_contact(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.post("/api/contacts", json={"name": "Ada"}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("value", [-1, 2**31, 2**63, 2**64])
async def test_integers_out_of_the_stored_range_are_422(
    kith_client: httpx.AsyncClient, agent: dict[str, str], kith_auth: TokenFactory, value: int
) -> None:
    admin = await kith_auth("admin")
    contact_id = await _a_contact(kith_client, agent)
    url = f"/api/contacts/{contact_id}/interactions"
    body = {"kind": "call", "summary": "rang", "duration_s": value}
    problem = assert_problem(await kith_client.post(url, json=body, headers=agent), 422)
    assert "duration_s" in problem["detail"]
    logged = await kith_client.post(url, json={"kind": "call", "summary": "rang"}, headers=agent)
    patch = await kith_client.patch(
        f"/api/interactions/{logged.json()['id']}", json={"duration_s": value}, headers=agent
    )
    assert_problem(patch, 422)
    consent = await kith_client.post(
        f"/api/privacy/consents/{contact_id}",
        json={"purpose": "newsletter", "action": "given", "notice_version": value},
        headers=admin,
    )
    assert "notice_version" in assert_problem(consent, 422)["detail"]
    # The largest value both engines store is taken.
    fine = await kith_client.post(url, json={**body, "duration_s": 2**31 - 1}, headers=agent)
    assert fine.status_code == 201, fine.text
    timeline = await kith_client.get(f"/api/contacts/{contact_id}/timeline", headers=agent)
    assert sorted(i["duration_s"] or 0 for i in timeline.json()["items"]) == [0, 2**31 - 1]


@pytest.mark.parametrize(
    "occurred_at",
    ["0999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"],
)
async def test_times_outside_what_both_engines_store_are_422(
    kith_client: httpx.AsyncClient, agent: dict[str, str], occurred_at: str
) -> None:
    contact_id = await _a_contact(kith_client, agent)
    url = f"/api/contacts/{contact_id}/interactions"
    body = {"kind": "task", "summary": "x", "occurred_at": occurred_at}
    problem = assert_problem(await kith_client.post(url, json=body, headers=agent), 422)
    assert problem["field"] == "occurred_at"
    due = {"kind": "task", "summary": "x", "due_at": occurred_at}
    assert assert_problem(await kith_client.post(url, json=due, headers=agent), 422)["field"] == (
        "due_at"
    )
    timeline = await kith_client.get(f"/api/contacts/{contact_id}/timeline", headers=agent)
    assert timeline.json()["items"] == []


async def test_text_with_a_nul_character_is_422_on_both_engines(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    from _privacy_workflow import NEWSLETTER, configure_privacy

    configure_privacy(kith, purposes={"newsletter": NEWSLETTER})
    admin = await kith_auth("admin")
    contact_id = await _a_contact(kith_client, admin)
    nul = "a\x00b"
    attempts = [
        ("/api/contacts", {"name": "Bo", "source": nul}, "source"),
        ("/api/contacts", {"name": nul}, "name"),
        (
            "/api/contacts",
            {"name": "Bo", "emails": [{"address": "b@x.org", "label": nul}]},
            "emails[0].label",
        ),
        (
            f"/api/contacts/{contact_id}/interactions",
            {"kind": "call", "summary": "x", "external_id": nul},
            "external_id",
        ),
        (
            f"/api/contacts/{contact_id}/interactions",
            {"kind": "call", "summary": "x", "channel": nul},
            "channel",
        ),
        (
            "/api/webhooks",
            {"url": "https://hooks.example/x", "events": ["*"], "description": nul},
            "description",
        ),
        ("/api/privacy/notices", {"purpose": "newsletter", "text": nul}, "text"),
    ]
    for url, body, field in attempts:
        problem = assert_problem(await kith_client.post(url, json=body, headers=admin), 422)
        assert problem["field"] == field, url
        assert "NUL" in problem["detail"]
    assert await Contact.count() == 1
    assert (await kith_client.get("/api/webhooks", headers=admin)).json() == []


async def test_pages_name_their_charset_once(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    admin = await kith_auth("admin")
    ropa = await kith_client.get("/api/privacy/ropa?format=md", headers=admin)
    page = await kith_client.get("/api/privacy/consent/withdraw?token=nonsense")
    for response in (ropa, page):
        assert response.headers["content-type"].count("charset") == 1, response.headers
    assert ropa.headers["content-type"] == "text/markdown; charset=utf-8"
    assert page.headers["content-type"] == "text/html; charset=utf-8"


async def test_a_missing_query_parameter_is_named(kith_client: httpx.AsyncClient) -> None:
    problem = assert_problem(await kith_client.get("/api/privacy/consent/withdraw"), 422)
    assert problem["detail"] == "the query parameter 'token' is required"
    assert problem["errors"] == [{"key": "token", "source": "query", "message": "required"}]


async def test_a_body_is_read_as_strictly_as_its_schema_says(
    kith_client: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    # The document says integer and string; text that looks like a number is not one.
    contact_id = await _a_contact(kith_client, agent)
    url = f"/api/contacts/{contact_id}/interactions"
    body = {"kind": "call", "summary": "rang", "duration_s": "60"}
    problem = assert_problem(await kith_client.post(url, json=body, headers=agent), 422)
    assert problem["errors"][0]["key"] == "duration_s", problem
    logged = await kith_client.post(url, json={"kind": "call", "summary": "rang"}, headers=agent)
    patch = await kith_client.patch(
        f"/api/interactions/{logged.json()['id']}", json={"duration_s": "60"}, headers=agent
    )
    assert "duration_s" in assert_problem(patch, 422)["detail"]
    refused = await kith_client.post(
        "/api/contacts", json={"name": "Ada", "emails": [{"address": 7}]}, headers=agent
    )
    assert assert_problem(refused, 422)["errors"][0]["key"] == "emails[0].address"
    timeline = await kith_client.get(f"/api/contacts/{contact_id}/timeline", headers=agent)
    assert [i["duration_s"] for i in timeline.json()["items"]] == [None]
