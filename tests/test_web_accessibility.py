"""The main pages of the web UI pass axe-core's checks (WCAG 2.1 A and AA rules) in a real
Chromium with no serious or critical violation: labels, names, contrast, landmarks, focus."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from _web_server import add_user, serving, sign_in
from kith.actor import SYSTEM
from kith.privacy.requests.service import RequestCreate, RequestService
from kith.runtime import Kith
from kith.schemas import ContactCreate, ContactPatch, EmailIn, InteractionCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from playwright.async_api import Browser, Page

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}
# Pages that show the same thing on both engines: checked once.
pytestmark = pytest.mark.parametrize("kith_engine", ["sqlite"])

RUN_AXE = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
    resultTypes: ["violations"],
  });
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ")),
  }));
}"""


async def violations(page: Page, path: str) -> list[dict[str, Any]]:
    await page.goto(path)
    await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate(RUN_AXE)
    return [dict(item, page=path) for item in found if item["impact"] in BLOCKING]


async def _a_contact_with_a_timeline(kith: Kith) -> str:
    contact = await ContactService(kith).create(
        ContactCreate(
            given_name="Ada",
            family_name="Lovelace",
            emails=[EmailIn(address="ada@example.com")],
            phones=[PhoneIn(number="+44 20 7946 0958")],
        ),
        SYSTEM,
    )
    interactions = InteractionService(kith)
    await interactions.log(
        contact.id, InteractionCreate(kind="call", summary="Asked about prices"), SYSTEM
    )
    await interactions.log(
        contact.id,
        InteractionCreate(
            kind="task",
            summary="Send the list",
            due_at=dt.datetime(2020, 1, 2, 9, tzinfo=dt.UTC),
        ),
        SYSTEM,
    )
    return str(contact.id)


async def test_the_main_pages_have_no_serious_accessibility_violation(
    kith: Kith, browser: Browser
) -> None:
    contact_id = await _a_contact_with_a_timeline(kith)
    admin = await add_user(kith, "admin")
    received = await RequestService(kith).create(
        RequestCreate(kind="access", email="ada@example.com"), SYSTEM
    )
    # A rectification's page has the form of its corrections and shows those saved.
    rectification = await RequestService(kith).create(
        RequestCreate(kind="rectification", contact_id=uuid.UUID(contact_id)), SYSTEM
    )
    await RequestService(kith).set_corrections(
        rectification.id, ContactPatch(family_name="King"), SYSTEM
    )
    async with serving(kith) as base:
        context = await browser.new_context(viewport={"width": 1024, "height": 720})
        page = await context.new_page()
        found = await violations(page, base + "/signin")
        await sign_in(page, base, admin)
        for path in (
            "/my-day",
            "/contacts",
            "/contacts?q=Ada",
            f"/contacts/{contact_id}",
            f"/contacts/{contact_id}/edit",
            "/contacts/new",
            "/duplicates",
            "/imports",
            "/admin/users",
            "/admin/tokens",
            "/admin/fields",
            "/compliance",
            "/compliance/requests",
            f"/compliance/requests/{received.id}",
            f"/compliance/requests/{rectification.id}",
            "/compliance/subjects?q=ada@example.com",
            f"/compliance/contacts/{contact_id}",
            "/compliance/retention",
            "/compliance/ropa",
            "/account",
        ):
            found += await violations(page, base + path)
        await context.close()
    assert found == [], "\n".join(
        f"{item['page']}: {item['id']} ({item['impact']}): {item['help']} at {item['nodes']}"
        for item in found
    )
