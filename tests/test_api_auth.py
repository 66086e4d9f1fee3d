"""Who may call what: 401 without a valid token, 403 without the role, on every endpoint.

The endpoints are read from the app itself, so a new endpoint is covered without editing this file.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from kith.actor import Role
from kith.http import create_app, roles
from kith.http.auth import PUBLIC, ROLES
from kith.runtime import Kith
from kith.services.users import UserService
from kith.tables import ApiToken, User
from kith.testing import TokenFactory
from litestar import Litestar, get
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

READ = {Role.ADMIN, Role.AGENT, Role.COMPLIANCE}
WRITE = {Role.ADMIN, Role.AGENT}

# The access policy of the core API (DESIGN.md section 5): admins everything, agents contacts,
# interactions and tasks, compliance officers read contacts and interactions only.
POLICY: dict[tuple[str, str], set[Role]] = {
    ("GET", "/api/contacts"): READ,
    ("POST", "/api/contacts"): WRITE,
    ("GET", "/api/contacts/{contact_id:uuid}"): READ,
    ("PATCH", "/api/contacts/{contact_id:uuid}"): WRITE,
    ("DELETE", "/api/contacts/{contact_id:uuid}"): WRITE,
    ("POST", "/api/contacts/{contact_id:uuid}/interactions"): WRITE,
    ("GET", "/api/contacts/{contact_id:uuid}/timeline"): READ,
    ("GET", "/api/interactions/{interaction_id:uuid}"): READ,
    ("PATCH", "/api/interactions/{interaction_id:uuid}"): WRITE,
    ("GET", "/api/tasks"): WRITE,
}
PUBLIC_PATHS = {"/api/health", "/schema/openapi.json"}


class Endpoint:
    def __init__(self, method: str, path: str, handler: HTTPRouteHandler) -> None:
        self.method = method
        self.path = path
        self.handler = handler

    @property
    def is_public(self) -> bool:
        return bool(self.handler.opt.get(PUBLIC))

    @property
    def roles(self) -> set[Role]:
        return set(self.handler.opt.get(ROLES) or ())

    def url(self) -> str:
        def fill(match: re.Match[str]) -> str:
            return str(uuid.uuid4()) if match.group(2) == "uuid" else "x"

        return re.sub(r"\{(\w+):(\w+)\}", fill, self.path)

    async def call(self, client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        body = {"json": {}} if self.method in ("POST", "PUT", "PATCH") else {}
        return await client.request(self.method, self.url(), headers=headers, **body)

    def __repr__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints(app: Litestar) -> list[Endpoint]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            found.append(Endpoint(str(method), route.path, handler))
    return sorted(found, key=lambda e: (e.path, e.method))


def declared(app: Litestar) -> list[Endpoint]:
    """Every endpoint except the OPTIONS handlers litestar adds to each path by itself."""
    return [e for e in endpoints(app) if e.method != "OPTIONS"]


@pytest.fixture
def app(kith: Kith) -> Litestar:
    return create_app(kith, manage_lifecycle=False)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kith.test") as client:
        yield client


def assert_401(response: httpx.Response, endpoint: Endpoint) -> None:
    assert response.status_code == 401, f"{endpoint}: {response.status_code} {response.text}"
    assert response.headers["www-authenticate"] == "Bearer", endpoint
    assert response.headers["content-type"].startswith("application/problem+json"), endpoint
    assert response.json()["status"] == 401


# -- declarations ------------------------------------------------------------------------------


def test_every_endpoint_declares_roles_or_public(app: Litestar) -> None:
    undeclared = [e for e in declared(app) if not e.is_public and not e.roles]
    assert undeclared == []


def test_core_endpoints_declare_the_policy(app: Litestar) -> None:
    by_key = {(e.method, e.path): e for e in declared(app)}
    assert set(POLICY) <= set(by_key), "an endpoint of the policy is missing from the app"
    for key, allowed in POLICY.items():
        assert by_key[key].roles == allowed, key
        assert not by_key[key].is_public, key
    for path in PUBLIC_PATHS:
        assert by_key[("GET", path)].is_public, path


# -- 401 ---------------------------------------------------------------------------------------


async def test_public_endpoints_need_no_token(app: Litestar, client: httpx.AsyncClient) -> None:
    public = [e for e in declared(app) if e.is_public and e.method == "GET"]
    assert {e.path for e in public} >= PUBLIC_PATHS
    for endpoint in public:
        if endpoint.path in PUBLIC_PATHS:
            response = await endpoint.call(client, {})
            assert response.status_code == 200, endpoint


async def test_no_header_is_401_everywhere(app: Litestar, client: httpx.AsyncClient) -> None:
    protected = [e for e in endpoints(app) if not e.is_public]
    assert len(protected) >= len(POLICY)
    for endpoint in protected:
        response = await endpoint.call(client, {})
        assert_401(response, endpoint)
        assert "Authorization: Bearer" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer    ",
        "Basic dXNlcjpwYXNzd29yZA==",
        "Token kith_abcdef",
        "kith_abcdef",
        "Bearer not-a-kith-token",
        "Bearer kith_" + "A" * 43,
    ],
)
async def test_malformed_or_unknown_token_is_401(
    app: Litestar, client: httpx.AsyncClient, header: str
) -> None:
    for endpoint in [e for e in endpoints(app) if not e.is_public]:
        assert_401(await endpoint.call(client, {"Authorization": header}), endpoint)


@pytest.fixture
async def token_states(kith: Kith) -> dict[str, str]:
    """Tokens of an admin that no longer work, by why."""
    users = UserService(kith)
    await users.add("revoked@firm.example", "admin")
    await users.add("expired@firm.example", "admin")
    await users.add("gone@firm.example", "admin")
    revoked = await users.create_token("revoked@firm.example")
    await users.revoke_token(str(revoked.token.id))
    expired = await users.create_token("expired@firm.example", expires_days=1)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await ApiToken.update({ApiToken.expires_at: past}).where(ApiToken.id == expired.token.id).run()
    deactivated = await users.create_token("gone@firm.example")
    await User.update({User.active: False}).where(User.email == "gone@firm.example").run()
    return {
        "revoked": revoked.secret,
        "expired": expired.secret,
        "deactivated": deactivated.secret,
    }


@pytest.mark.parametrize("state", ["revoked", "expired", "deactivated"])
async def test_dead_token_is_401_everywhere(
    app: Litestar, client: httpx.AsyncClient, token_states: dict[str, str], state: str
) -> None:
    headers = {"Authorization": f"Bearer {token_states[state]}"}
    for endpoint in [e for e in endpoints(app) if not e.is_public]:
        response = await endpoint.call(client, headers)
        assert_401(response, endpoint)
        assert state[:6] in response.json()["detail"]


async def test_revoking_takes_effect_at_once(kith: Kith, client: httpx.AsyncClient) -> None:
    users = UserService(kith)
    await users.add("ada@firm.example", "agent")
    issued = await users.create_token("ada@firm.example")
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert (await client.get("/api/contacts", headers=headers)).status_code == 200
    await users.revoke_token(issued.token.prefix)
    assert (await client.get("/api/contacts", headers=headers)).status_code == 401


# -- 403 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
async def test_role_matrix(
    app: Litestar, client: httpx.AsyncClient, kith_auth: TokenFactory, role: Role
) -> None:
    headers = await kith_auth(role)
    for endpoint in [e for e in declared(app) if not e.is_public]:
        response = await endpoint.call(client, headers)
        if role in endpoint.roles:
            assert response.status_code not in (401, 403), f"{role} {endpoint}: {response.text}"
        else:
            assert response.status_code == 403, f"{role} {endpoint}: {response.status_code}"
            assert role.value in response.json()["detail"]


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.ADMIN, set(POLICY)),
        (Role.AGENT, set(POLICY)),
        (Role.COMPLIANCE, {key for key, roles in POLICY.items() if Role.COMPLIANCE in roles}),
    ],
)
async def test_policy_as_a_user_sees_it(
    app: Litestar,
    client: httpx.AsyncClient,
    kith_auth: TokenFactory,
    role: Role,
    allowed: set[tuple[str, str]],
) -> None:
    headers = await kith_auth(role)
    by_key = {(e.method, e.path): e for e in declared(app)}
    for key in POLICY:
        response = await by_key[key].call(client, headers)
        refused = response.status_code == 403
        assert refused == (key not in allowed), f"{role} {key}: {response.status_code}"
    if role is Role.COMPLIANCE:
        # Reading works for real, not only past the guard.
        assert (await client.get("/api/contacts", headers=headers)).status_code == 200


# -- default deny ------------------------------------------------------------------------------


@get("/api/undeclared")
async def undeclared() -> dict[str, Any]:
    return {"reached": True}


@get("/api/admin-only", opt=roles())
async def admin_only() -> dict[str, Any]:
    return {"reached": True}


async def test_route_without_roles_is_denied(kith: Kith, kith_auth: TokenFactory) -> None:
    app = create_app(kith, extra_routes=[undeclared, admin_only], manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kith.test") as client:
        assert (await client.get("/api/undeclared")).status_code == 401
        admin = await kith_auth(Role.ADMIN)
        denied = await client.get("/api/undeclared", headers=admin)
        assert denied.status_code == 403
        assert "declares no role" in denied.json()["detail"]
        assert (await client.get("/api/admin-only", headers=admin)).json() == {"reached": True}
        agent = await kith_auth(Role.AGENT)
        assert (await client.get("/api/admin-only", headers=agent)).status_code == 403
