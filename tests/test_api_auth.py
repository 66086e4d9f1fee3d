"""Who may call what: 401 without a valid token, 403 without the role, on every endpoint.

The endpoints are read from the app itself, so a new endpoint is covered without editing this file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from kith.actor import Actor, Role
from kith.http import create_app, roles
from kith.http.auth import AUTHENTICATE, PUBLIC, ROLES
from kith.runtime import Kith
from kith.services.users import UserService
from kith.tables import ApiToken, User
from kith.testing import TokenFactory
from kith.token_cache import TokenCache
from litestar import Litestar, get
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

READ = {Role.ADMIN, Role.AGENT, Role.COMPLIANCE}
WRITE = {Role.ADMIN, Role.AGENT}
ADMIN = {Role.ADMIN}

# The access policy of the core API: admins everything (users and tokens only they), agents
# contacts, interactions and tasks, compliance officers read contacts and interactions only.
POLICY: dict[tuple[str, str], set[Role]] = {
    ("GET", "/api/contacts"): READ,
    ("POST", "/api/contacts"): WRITE,
    ("GET", "/api/contacts/{contact_id:uuid}"): READ,
    ("PATCH", "/api/contacts/{contact_id:uuid}"): WRITE,
    ("DELETE", "/api/contacts/{contact_id:uuid}"): WRITE,
    ("POST", "/api/contacts/{contact_id:uuid}/interactions"): WRITE,
    ("GET", "/api/contacts/{contact_id:uuid}/timeline"): READ,
    ("GET", "/api/contacts/{contact_id:uuid}/people"): READ,
    ("GET", "/api/interactions/{interaction_id:uuid}"): READ,
    ("PATCH", "/api/interactions/{interaction_id:uuid}"): WRITE,
    ("GET", "/api/tasks"): WRITE,
    ("GET", "/api/users"): ADMIN,
    ("POST", "/api/users"): ADMIN,
    ("GET", "/api/users/{user_id:uuid}"): ADMIN,
    ("GET", "/api/tokens"): ADMIN,
    ("POST", "/api/tokens"): ADMIN,
    ("GET", "/api/tokens/{token_id:uuid}"): ADMIN,
    ("DELETE", "/api/tokens/{token_id:uuid}"): ADMIN,
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
    """The API's endpoints: the web UI's pages (signed in with a session, not a token) and
    their static files are tested in tests/test_web_sessions.py."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith("/static/"):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if handler.opt.get(AUTHENTICATE):
                continue
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
    """Revoked in this process: refused on the very next request, though the server had
    remembered the token from the requests before (token_cache_seconds is 5 by default)."""
    users = UserService(kith)
    await users.add("ada@firm.example", "agent")
    issued = await users.create_token("ada@firm.example")
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert (await client.get("/api/contacts", headers=headers)).status_code == 200
    assert (await client.get("/api/contacts", headers=headers)).status_code == 200
    await users.revoke_token(issued.token.prefix)
    response = await client.get("/api/contacts", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


# -- remembered tokens (token_cache_seconds) ---------------------------------------------------


async def agent_token(
    kith: Kith, email: str = "bea@firm.example"
) -> tuple[uuid.UUID, dict[str, str]]:
    users = UserService(kith)
    await users.add(email, "agent")
    issued = await users.create_token(email)
    return issued.token.id, {"Authorization": f"Bearer {issued.secret}"}


async def revoke_elsewhere(token_id: uuid.UUID) -> None:
    """What `kith tokens revoke` or another server does: it writes the row, and this server's
    memory of the token is not told."""
    now = dt.datetime.now(dt.UTC)
    await ApiToken.update({ApiToken.revoked_at: now}).where(ApiToken.id == token_id).run()


async def test_revoked_elsewhere_still_works_while_remembered(
    kith: Kith, kith_client: httpx.AsyncClient
) -> None:
    token_id, headers = await agent_token(kith)
    assert (await kith_client.get("/api/contacts", headers=headers)).status_code == 200
    await revoke_elsewhere(token_id)
    # Within token_cache_seconds (5 by default) the server still accepts it ...
    assert (await kith_client.get("/api/contacts", headers=headers)).status_code == 200
    # ... while a server that has not seen it yet (or restarted) refuses it.
    kith.token_cache = TokenCache(kith.settings.token_cache_seconds)
    response = await kith_client.get("/api/contacts", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


async def test_without_cache_revoked_elsewhere_is_refused_at_once(
    kith: Kith, kith_client: httpx.AsyncClient
) -> None:
    kith.settings = dataclasses.replace(kith.settings, token_cache_seconds=0)
    kith.token_cache = TokenCache(kith.settings.token_cache_seconds)
    token_id, headers = await agent_token(kith)
    assert (await kith_client.get("/api/contacts", headers=headers)).status_code == 200
    assert (await kith_client.get("/api/contacts", headers=headers)).status_code == 200
    await revoke_elsewhere(token_id)
    response = await kith_client.get("/api/contacts", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


async def test_revoked_elsewhere_is_refused_once_forgotten(
    kith: Kith, kith_client: httpx.AsyncClient
) -> None:
    kith.token_cache = TokenCache(0.05)
    token_id, headers = await agent_token(kith)
    assert (await kith_client.get("/api/contacts", headers=headers)).status_code == 200
    await revoke_elsewhere(token_id)
    await asyncio.sleep(0.1)
    response = await kith_client.get("/api/contacts", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


async def test_remembered_token_still_expires_on_time(
    kith: Kith, kith_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token is never remembered past its own expiry, however long the cache keeps entries."""
    kith.token_cache = TokenCache(300)
    users = UserService(kith)
    await users.add("cy@firm.example", "agent")
    issued = await users.create_token("cy@firm.example", expires_days=1)
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert (await kith_client.get("/api/contacts", headers=headers)).status_code == 200
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    monkeypatch.setattr("kith.services.users.utcnow", lambda: later)
    response = await kith_client.get("/api/contacts", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def actor(name: str) -> Actor:
    return Actor(kind="user", id=uuid.uuid4(), role=Role.AGENT, name=name)


NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def test_cache_drops_an_entry_when_the_token_expires() -> None:
    cache = TokenCache(300)
    ada = actor("ada")
    cache.put("a", ada, NOW + dt.timedelta(minutes=1))
    assert cache.get("a", NOW) == ada
    assert cache.get("a", NOW + dt.timedelta(minutes=1)) is None
    assert len(cache) == 0
    # Dropped, not merely hidden: an earlier clock does not bring it back.
    assert cache.get("a", NOW) is None


def test_cache_keeps_a_token_without_expiry_for_ttl() -> None:
    cache = TokenCache(0.05)
    ada = actor("ada")
    cache.put("a", ada, None)
    assert cache.get("a", NOW + dt.timedelta(days=3650)) == ada
    time.sleep(0.1)
    assert cache.get("a", NOW) is None
    assert len(cache) == 0


def test_cache_evicts_the_least_recently_used_beyond_capacity() -> None:
    cache = TokenCache(300, capacity=2)
    ada, bea, cy, dan = actor("ada"), actor("bea"), actor("cy"), actor("dan")
    cache.put("a", ada, None)
    cache.put("b", bea, None)
    cache.put("c", cy, None)
    assert len(cache) == 2
    assert cache.get("a", NOW) is None
    assert cache.get("b", NOW) == bea
    # Reading "b" made "c" the oldest.
    cache.put("d", dan, None)
    assert cache.get("c", NOW) is None
    assert cache.get("b", NOW) == bea
    assert cache.get("d", NOW) == dan


def test_cache_with_ttl_zero_stores_nothing() -> None:
    cache = TokenCache(0)
    cache.put("a", actor("ada"), None)
    assert len(cache) == 0
    assert cache.get("a", NOW) is None


def test_cache_forget_and_clear() -> None:
    cache = TokenCache(300)
    bea = actor("bea")
    cache.put("a", actor("ada"), None)
    cache.put("b", bea, None)
    cache.forget("a")
    cache.forget("never-stored")
    assert cache.get("a", NOW) is None
    assert cache.get("b", NOW) == bea
    cache.clear()
    assert len(cache) == 0
    assert cache.get("b", NOW) is None


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
        (Role.AGENT, {key for key, roles in POLICY.items() if Role.AGENT in roles}),
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


# -- last use ------------------------------------------------------------------------------------


async def _last_used(token_id: uuid.UUID) -> dt.datetime | None:
    row = await ApiToken.select(ApiToken.last_used_at).where(ApiToken.id == token_id).first()
    assert row is not None
    value: dt.datetime | None = row["last_used_at"]
    return value


@pytest.mark.parametrize("cache_seconds", [5, 0])
async def test_a_tokens_last_use_is_written_at_most_once_a_minute(
    kith: Kith,
    kith_client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    cache_seconds: int,
) -> None:
    """Whether or not the server remembers checked tokens (token_cache_seconds)."""
    kith.token_cache = TokenCache(cache_seconds)
    token_id, headers = await agent_token(kith)
    assert await _last_used(token_id) is None
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    clock = {"now": start}
    monkeypatch.setattr("kith.services.users.utcnow", lambda: clock["now"])

    assert (await kith_client.get("/api/contacts", headers=headers)).status_code == 200
    assert await _last_used(token_id) == start
    # Within the minute every request is a read only: the time written stays.
    clock["now"] = start + dt.timedelta(seconds=59)
    assert (await kith_client.get("/api/contacts", headers=headers)).status_code == 200
    assert await _last_used(token_id) == start
    clock["now"] = start + dt.timedelta(seconds=60)
    assert (await kith_client.get("/api/contacts", headers=headers)).status_code == 200
    assert await _last_used(token_id) == start + dt.timedelta(seconds=60)

    listed = await UserService(kith).list_tokens("bea@firm.example")
    assert listed[0].last_used_at == start + dt.timedelta(seconds=60)


async def test_a_refused_token_is_not_marked_used(
    kith: Kith, kith_client: httpx.AsyncClient
) -> None:
    token_id, headers = await agent_token(kith)
    await revoke_elsewhere(token_id)
    assert (await kith_client.get("/api/contacts", headers=headers)).status_code == 401
    assert await _last_used(token_id) is None


def test_cache_records_a_use_once_a_minute_per_token() -> None:
    cache = TokenCache(0, capacity=2)
    assert cache.use_to_record("a", NOW)
    assert not cache.use_to_record("a", NOW + dt.timedelta(seconds=59))
    assert cache.use_to_record("b", NOW)
    assert cache.use_to_record("a", NOW + dt.timedelta(minutes=1))
    # A clock that went back (another server's, a corrected one) is not trusted to wait.
    assert cache.use_to_record("a", NOW)
    cache.forget("a")
    assert cache.use_to_record("a", NOW + dt.timedelta(seconds=1))
    # Beyond capacity the oldest is forgotten, and its next use is written again.
    cache.use_to_record("c", NOW)
    assert cache.use_to_record("b", NOW + dt.timedelta(seconds=1))
