"""Users and API tokens over the API, for admins: the rules of `kith users` and `kith tokens`."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from kith.errors import NotAuthenticated
from kith.runtime import Kith
from kith.services.users import UserService
from kith.tables import ApiToken, User
from kith.testing import TokenFactory

Json = dict[str, Any]


@pytest.fixture
async def admin(kith_auth: TokenFactory) -> dict[str, str]:
    return await kith_auth("admin", email="olivia@firm.example")


async def test_an_admin_adds_users_with_hashed_passwords(
    kith: Kith, kith_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = {"email": "Sales@Firm.example", "role": "agent", "name": "Sam", "password": "x" * 12}
    response = await kith_client.post("/api/users", json=body, headers=admin)
    assert response.status_code == 201, response.text
    user = response.json()
    assert response.headers["location"] == f"/api/users/{user['id']}"
    assert user["email"] == "sales@firm.example" and user["role"] == "agent"
    assert user["name"] == "Sam" and user["active"] is True
    assert "password" not in response.text and "x" * 12 not in response.text
    stored = await User.select(User.password_hash).where(User.id == user["id"]).first()
    assert stored is not None and stored["password_hash"].startswith("$argon2")
    assert (await UserService(kith).verify_password("sales@firm.example", "x" * 12)).id == (
        uuid.UUID(user["id"])
    )

    read = await kith_client.get(f"/api/users/{user['id']}", headers=admin)
    assert read.json() == user
    assert (await kith_client.get(f"/api/users/{uuid.uuid4()}", headers=admin)).status_code == 404

    again = await kith_client.post(
        "/api/users", json={"email": "sales@firm.example", "role": "agent"}, headers=admin
    )
    assert again.status_code == 409 and again.json()["field"] == "email"
    for wrong, field in (
        ({"email": "a@firm.example", "role": "boss"}, "role"),
        ({"email": "a@firm.example", "role": "agent", "password": "short"}, "password"),
        ({"email": "not-an-email", "role": "agent"}, None),
        ({"email": "a@firm.example", "role": "agent", "name": "x" * 201}, "name"),
        ({"email": "a@firm.example", "role": "agent", "password_hash": "x"}, None),
    ):
        refused = await kith_client.post("/api/users", json=wrong, headers=admin)
        assert refused.status_code == 422, (wrong, refused.text)
        if field is not None:
            assert field in refused.text, wrong


async def test_users_are_listed_in_pages(
    kith_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for n in range(3):
        body = {"email": f"u{n}@firm.example", "role": "compliance"}
        assert (await kith_client.post("/api/users", json=body, headers=admin)).status_code == 201
    emails: list[str] = []
    params: Json = {"limit": 2}
    while True:
        page = (await kith_client.get("/api/users", params=params, headers=admin)).json()
        emails += [user["email"] for user in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert emails == [
        "olivia@firm.example",
        "u0@firm.example",
        "u1@firm.example",
        "u2@firm.example",
    ]


async def test_an_admin_creates_lists_and_revokes_tokens(
    kith: Kith, kith_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user = await UserService(kith).add("sales@firm.example", "agent")
    response = await kith_client.post(
        "/api/tokens",
        json={"user_id": str(user.id), "name": "phone system", "expires_days": 30},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    issued = response.json()
    secret = issued["secret"]
    token = issued["token"]
    assert secret.startswith("kith_") and secret.startswith(token["prefix"])
    assert token["user_id"] == str(user.id) and token["name"] == "phone system"
    assert response.headers["location"] == f"/api/tokens/{token['id']}"
    stored = await ApiToken.select(ApiToken.token_hash).where(ApiToken.id == token["id"]).first()
    assert stored is not None and secret not in stored["token_hash"]

    # The token works, and its use is shown.
    theirs = {"Authorization": f"Bearer {secret}"}
    assert (await kith_client.get("/api/contacts", headers=theirs)).status_code == 200
    read = (await kith_client.get(f"/api/tokens/{token['id']}", headers=admin)).json()
    assert read["last_used_at"] is not None

    listed = await kith_client.get("/api/tokens", params={"user_id": str(user.id)}, headers=admin)
    assert [t["id"] for t in listed.json()["items"]] == [token["id"]]
    everyone = await kith_client.get("/api/tokens", headers=admin)
    assert len(everyone.json()["items"]) == 2  # the admin's own too
    for text in (
        listed.text,
        everyone.text,
        (await kith_client.get("/api/users", headers=admin)).text,
    ):
        assert secret not in text and "token_hash" not in text

    revoked = await kith_client.delete(f"/api/tokens/{token['id']}", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    refused = await kith_client.get("/api/contacts", headers=theirs)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    with pytest.raises(NotAuthenticated):
        await UserService(kith).authenticate(secret)
    # Revoking twice keeps the first time.
    twice = await kith_client.delete(f"/api/tokens/{token['id']}", headers=admin)
    assert twice.json()["revoked_at"] == revoked.json()["revoked_at"]
    missing = await kith_client.delete(f"/api/tokens/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": str(uuid.uuid4())}, "user_id"),
        ({"expires_days": 0}, "expires_days"),
        ({"expires_days": 3651}, "expires_days"),
        ({"expires_days": 2**70}, "expires_days"),
        ({"name": "x" * 101}, "name"),
        ({"secret": "kith_mine"}, "secret"),
    ],
)
async def test_bad_token_requests_are_422(
    kith: Kith, kith_client: httpx.AsyncClient, admin: dict[str, str], body: Json, field: str
) -> None:
    user = await UserService(kith).add("sales@firm.example", "agent")
    response = await kith_client.post(
        "/api/tokens", json={"user_id": str(user.id), **body}, headers=admin
    )
    assert response.status_code == 422, response.text
    assert field in response.text
    assert await ApiToken.count().where(ApiToken.user == user.id) == 0


async def test_only_admins_manage_users_and_tokens(
    kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    for role in ("agent", "compliance"):
        headers = await kith_auth(role)
        for method, path in (("GET", "/api/users"), ("GET", "/api/tokens")):
            response = await kith_client.request(method, path, headers=headers)
            assert response.status_code == 403, (role, path)
        made = await kith_client.post(
            "/api/users", json={"email": "x@firm.example", "role": "admin"}, headers=headers
        )
        assert made.status_code == 403


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/users", {"email": "nul@firm.example", "role": "agent", "name": "a\x00b"}, "name"),
        ("/api/users", {"email": "n\x00l@firm.example", "role": "agent"}, None),
        ("/api/tokens", {"name": "phone\x00system"}, "name"),
    ],
)
async def test_a_nul_character_is_422_on_either_engine(
    kith: Kith,
    kith_client: httpx.AsyncClient,
    admin: dict[str, str],
    path: str,
    body: Json,
    field: str | None,
) -> None:
    user = await UserService(kith).add("sales@firm.example", "agent")
    if path == "/api/tokens":
        body = {"user_id": str(user.id), **body}
    response = await kith_client.post(path, json=body, headers=admin)
    assert response.status_code == 422, response.text
    if field is not None:
        assert response.json()["field"] == field


@pytest.mark.parametrize(
    "damaged", ["not a hash", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"]
)
async def test_a_damaged_password_hash_refuses_sign_in_cleanly(kith: Kith, damaged: str) -> None:
    users = UserService(kith)
    await users.add("dora@firm.example", "agent", password="x" * 12)
    await User.update({User.password_hash: damaged}, force=True).run()
    with pytest.raises(NotAuthenticated, match="wrong email or password") as refused:
        await users.verify_password("dora@firm.example", "x" * 12)
    assert refused.value.status_code == 401


async def test_a_password_hashed_under_older_parameters_is_rehashed_at_sign_in(
    kith: Kith,
) -> None:
    import argon2

    users = UserService(kith)
    added = await users.add("eve@firm.example", "agent")
    older = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    await User.update({User.password_hash: older.hash("y" * 12)}, force=True).run()
    assert (await users.verify_password("eve@firm.example", "y" * 12)).id == added.id
    stored = await User.select(User.password_hash).where(User.id == added.id).first()
    assert stored is not None
    assert not argon2.PasswordHasher().check_needs_rehash(stored["password_hash"])
    # The new hash still holds the same password, and only that one.
    assert (await users.verify_password("eve@firm.example", "y" * 12)).id == added.id
    with pytest.raises(NotAuthenticated):
        await users.verify_password("eve@firm.example", "z" * 12)
