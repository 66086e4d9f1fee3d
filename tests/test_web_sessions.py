"""Signing in to the web UI: sessions on the web store, their revocation, lock-out, the
first-run page, CSRF, and the API left to its tokens. Real requests through the whole app."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import structlog.testing
from kith.http import create_app
from kith.runtime import Kith
from kith.services.users import UserService
from kith.settings import Settings
from kith.testing import settings_for
from kith.web.sessions import RENEW_AFTER, RENEWED, revoke_sessions
from kith.web.setup_code import issue_setup_code
from kith.web.stores import web_store

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


@asynccontextmanager
async def browser_like(kith: Kith) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies, as a browser does, on an app of its own."""
    app = create_app(kith, manage_lifecycle=False)
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://kith.test"
        ) as client,
    ):
        yield client


async def post_form(
    client: httpx.AsyncClient, page: str, target: str, data: dict[str, str]
) -> httpx.Response:
    """Open ``page`` for its CSRF token, then post ``data`` to ``target``."""
    token = CSRF.search((await client.get(page)).text)
    assert token, f"{page} has no CSRF token"
    return await client.post(target, data={"_csrf_token": token.group(1), **data})


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    return await post_form(client, "/signin", "/signin", {"email": email, "password": password})


async def add(kith: Kith, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:6]}@staff.example"
    await UserService(kith).add(email, role, "", PASSWORD)
    return email


async def test_the_set_up_page_needs_the_printed_code_and_is_gone_afterwards(kith: Kith) -> None:
    code = await issue_setup_code(web_store(kith.settings))
    async with browser_like(kith) as client:
        assert (await client.get("/")).headers["location"] == "/setup"
        fields = {
            "email": "owner@firm.example",
            "password": PASSWORD,
            "password_again": PASSWORD,
        }
        wrong = await post_form(client, "/setup", "/setup", {**fields, "code": "AAAA-BBBB-CCCC"})
        assert wrong.status_code == 422
        assert await UserService(kith).count() == 0
        made = await post_form(client, "/setup", "/setup", {**fields, "code": code})
        assert made.status_code == 303 and made.headers["location"] == "/my-day"
        owner = await UserService(kith).by_email("owner@firm.example")
        assert owner.role == "admin"
        assert (await client.get("/my-day")).status_code == 200
        # The page is gone, and the code with it.
        assert (await client.get("/setup")).status_code == 404
    async with browser_like(kith) as stranger:
        assert (await stranger.get("/setup")).status_code == 404
        again = await stranger.post("/setup", data={**fields, "code": code})
        assert again.status_code in (403, 404)
        assert await UserService(kith).count() == 1


async def test_pages_need_a_session_and_sign_out_ends_it(kith: Kith) -> None:
    email = await add(kith, "agent")
    async with browser_like(kith) as client:
        anonymous = await client.get("/contacts?q=ada")
        assert anonymous.status_code == 302
        assert anonymous.headers["location"] == "/signin?next=/contacts%3Fq%3Dada"
        signed = await sign_in(client, email)
        assert signed.status_code == 303 and signed.headers["location"] == "/my-day"
        assert (await client.get("/contacts")).status_code == 200
        cookie = client.cookies.get("kith_session")
        assert cookie
        out = await post_form(client, "/my-day", "/signout", {})
        assert out.status_code == 303
        assert (await client.get("/contacts")).status_code == 302
    # The old session id is worth nothing: the session is gone from the store.
    async with browser_like(kith) as replay:
        replay.cookies.set("kith_session", cookie, domain="kith.test")
        assert (await replay.get("/contacts")).status_code == 302


async def test_repeated_wrong_passwords_lock_the_account_for_a_while(kith: Kith) -> None:
    email = await add(kith, "agent")
    other = await add(kith, "agent")
    async with browser_like(kith) as client:
        for _ in range(5):
            wrong = await sign_in(client, email, "not the password")
            assert wrong.status_code == 401
            assert "Wrong email or password." in wrong.text
        locked = await sign_in(client, email)
        assert locked.status_code == 429
        assert "locked" in locked.text
        assert (
            "kith_session" not in client.cookies or (await client.get("/my-day")).status_code == 302
        )
        # Someone else signs in as ever.
        assert (await sign_in(client, other)).status_code == 303


async def test_an_admin_reset_ends_the_persons_sessions(kith: Kith) -> None:
    agent = await add(kith, "agent")
    admin = await add(kith, "admin")
    agent_id = (await UserService(kith).by_email(agent)).id
    async with browser_like(kith) as agents, browser_like(kith) as admins:
        await sign_in(agents, agent)
        assert (await agents.get("/my-day")).status_code == 200
        await sign_in(admins, admin)
        reset = await post_form(
            admins,
            "/admin/users",
            f"/admin/users/{agent_id}/password",
            {"password": "a brand new secret"},
        )
        assert reset.status_code == 303
        assert (await agents.get("/my-day")).status_code == 302
        assert (await sign_in(agents, agent)).status_code == 401
        assert (await sign_in(agents, agent, "a brand new secret")).status_code == 303


async def test_a_password_change_keeps_this_session_and_ends_the_others(kith: Kith) -> None:
    email = await add(kith, "agent")
    async with browser_like(kith) as here, browser_like(kith) as elsewhere:
        await sign_in(here, email)
        await sign_in(elsewhere, email)
        wrong = await post_form(
            here,
            "/account",
            "/account/password",
            {
                "current": "not it at all",
                "password": "another secret 1",
                "password_again": "another secret 1",
            },
        )
        assert wrong.status_code == 422
        changed = await post_form(
            here,
            "/account",
            "/account/password",
            {
                "current": PASSWORD,
                "password": "another secret 1",
                "password_again": "another secret 1",
            },
        )
        assert changed.status_code == 200 and "Your password is changed" in changed.text
        assert (await here.get("/my-day")).status_code == 200
        assert (await elsewhere.get("/my-day")).status_code == 302


async def test_a_session_slides_without_a_store_write_on_every_page(kith: Kith) -> None:
    email = await add(kith, "agent")
    store = web_store(kith.settings)
    async with browser_like(kith) as client:
        await sign_in(client, email)
        session_id = client.cookies["kith_session"]
        written = await store.get(session_id)
        assert written is not None
        for _ in range(2):
            page = await client.get("/my-day")
            assert page.status_code == 200
            assert (
                "set-cookie" not in page.headers or "kith_session" not in page.headers["set-cookie"]
            )
        assert await store.get(session_id) == written
        # A session last written long ago, close to its end, is pushed on by the next page.
        stale = json.loads(written)
        stale[RENEWED] -= RENEW_AFTER + 1
        await store.set(session_id, json.dumps(stale), expires_in=60)
        page = await client.get("/my-day")
        assert page.status_code == 200 and "kith_session" in page.headers["set-cookie"]
        renewed = await store.get(session_id)
        assert renewed is not None and json.loads(renewed)[RENEWED] > stale[RENEWED]
        expires_in = await store.expires_in(session_id)
        assert expires_in is not None and expires_in > 3600


async def test_a_session_revoked_or_deleted_elsewhere_ends_at_its_next_page(kith: Kith) -> None:
    email = await add(kith, "agent")
    user_id = (await UserService(kith).by_email(email)).id
    async with browser_like(kith) as client:
        await sign_in(client, email)
        assert (await client.get("/my-day")).status_code == 200
        # Another process (the users command) with a store of its own.
        await revoke_sessions(web_store(kith.settings), user_id)
        assert (await client.get("/my-day")).status_code == 302
        await sign_in(client, email)
        assert (await client.get("/my-day")).status_code == 200
        await web_store(kith.settings).delete(client.cookies["kith_session"])
        assert (await client.get("/my-day")).status_code == 302


async def test_forms_need_their_csrf_token(kith: Kith) -> None:
    email = await add(kith, "agent")
    async with browser_like(kith) as client:
        await sign_in(client, email)
        with structlog.testing.capture_logs() as logged:
            refused = await client.post("/contacts/new", data={"given_name": "Mallory"})
        assert refused.status_code == 403
        assert "The form had expired" in refused.text
        # The request log says what the browser got, not a server error.
        statuses = [e["status"] for e in logged if e.get("path") == "/contacts/new"]
        assert statuses == [403]
        made = await post_form(client, "/contacts/new", "/contacts/new", {"given_name": "Ada"})
        assert made.status_code == 303


async def test_a_session_does_not_open_the_api_and_roles_are_the_apis(kith: Kith) -> None:
    agent = await add(kith, "agent")
    compliance = await add(kith, "compliance")
    async with browser_like(kith) as client:
        await sign_in(client, agent)
        # The API still takes tokens only: a browser's cookie cannot be used against it.
        assert (await client.get("/api/contacts")).status_code == 401
        assert (await client.get("/admin/users")).status_code == 403
        assert (await client.get("/imports")).status_code == 403
        assert (await client.get("/compliance")).status_code == 403
    async with browser_like(kith) as client:
        landed = await sign_in(client, compliance)
        assert landed.headers["location"] == "/compliance"
        assert (await client.get("/contacts")).status_code == 200
        # Reading, as on the API; changing is for agents.
        assert (await client.get("/contacts/new")).status_code == 403
        assert (await client.get("/my-day")).status_code == 403


# -- several processes: Redis --------------------------------------------------------------


@pytest.fixture
def redis_url() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server installed (Debian's redis-server package)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


async def test_with_redis_a_session_made_by_one_process_works_on_another(
    kith: Kith, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from kith.bootstrap import open_kith

    email = await add(kith, "agent")
    shared = {"redis_url": redis_url, "web_secret": "one secret for every process"}

    def settings(name: str) -> Settings:
        return settings_for(tmp_path_factory.mktemp(name), kith.settings.database_url, **shared)

    first, second = open_kith(settings("first")), open_kith(settings("second"))
    await first.database.start()
    await second.database.start()
    try:
        async with browser_like(first) as one:
            await sign_in(one, email)
            async with browser_like(second) as two:
                two.cookies = one.cookies
                assert (await two.get("/my-day")).status_code == 200
                # A form of one process is accepted by the other (one CSRF secret), and
                # signing out there ends the session here.
                token = CSRF.search((await one.get("/my-day")).text)
                assert token
                out = await two.post("/signout", data={"_csrf_token": token.group(1)})
                assert out.status_code == 303
                assert (await one.get("/my-day")).status_code == 302
    finally:
        await first.close()
        await second.close()


async def test_every_page_declares_roles_and_sends_strangers_to_sign_in(kith: Kith) -> None:
    from kith.http.auth import AUTHENTICATE, PUBLIC, ROLES
    from litestar.routes import HTTPRoute

    await add(kith, "admin")
    app = create_app(kith, manage_lifecycle=False)
    pages = [
        (route.path, method, handler)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for method, (handler, _) in route.route_handler_map.items()
        if handler.opt.get(AUTHENTICATE) and method != "OPTIONS"
    ]
    assert len(pages) >= 20
    async with browser_like(kith) as client:
        for path, method, handler in pages:
            assert handler.opt.get(PUBLIC) or handler.opt.get(ROLES), path
            if handler.opt.get(PUBLIC) or method != "GET":
                continue
            url = re.sub(r"\{\w+:uuid\}", str(uuid.uuid4()), path)
            response = await client.get(url)
            assert response.status_code == 302, (path, response.status_code)
            assert response.headers["location"].startswith("/signin?next="), path
