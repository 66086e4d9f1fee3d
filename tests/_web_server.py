"""A real Kith server for the browser tests: uvicorn in the test's event loop on a free port,
serving the app of the test's Kith (its database, its plugins), dispatching events."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from kith.http import create_app
from kith.runtime import Kith
from kith.services.users import UserService
from kith.web.setup_code import issue_setup_code
from kith.web.stores import web_store

if TYPE_CHECKING:
    from playwright.async_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def serving(kith: Kith) -> AsyncIterator[str]:
    app = create_app(kith, manage_lifecycle=False, dispatch=True)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            log_level="warning",
            lifespan="on",
            # Open live channels must not hold the test's end.
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def setup_code(kith: Kith) -> str:
    """What `kith serve` prints on a fresh installation."""
    return await issue_setup_code(web_store(kith.settings))


async def add_user(kith: Kith, role: str) -> str:
    email = f"{role}@staff.example"
    await UserService(kith).add(email, role, role.title(), PASSWORD)
    return email


async def sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/signin")
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.locator("main form button[type=submit]").click()
    await page.wait_for_load_state()


async def shoot(page: Page, name: str, engine: str) -> None:
    """A screenshot for docs/screenshots (from the SQLite run; both look the same)."""
    if engine == "sqlite":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
