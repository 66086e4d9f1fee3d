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
    for url in ("/api/nothing-here", "/api/contacts/not-a-uuid", "/"):
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
    served = {
        (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in app.routes
        for method, (handler, _) in getattr(route, "route_handler_map", {}).items()
        if method != "OPTIONS" and not route.path.startswith("/schema")
    }
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
        self, subject_id: uuid.UUID, table: str, row_id: uuid.UUID, values: dict[str, Any]
    ) -> dict[str, Any]:
        if table == ContactPoint._meta.tablename and str(values.get("value", "")).startswith("+"):
            self.phones += 1
            if self.phones == 2:
                raise RuntimeError("disk on fire")
        return await self.inner.protect(subject_id, table, row_id, values)  # type: ignore[no-any-return]

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
