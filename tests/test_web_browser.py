"""The web UI in a real Chromium against a real server, on both engines: what a small firm's
staff and its compliance officer do in the browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _web_server import PASSWORD, add_user, serving, setup_code, shoot, sign_in
from kith.actor import SYSTEM
from kith.events import EventType
from kith.runtime import Kith
from kith.schemas import ContactCreate, InteractionCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from playwright.async_api import Browser, expect

PHONE_AS_STORED = "+44 20 7946 0958"
PHONE_AS_TYPED = "020 7946 0958"


async def test_first_run_then_a_day_with_a_contact_a_call_and_a_task(
    kith: Kith, browser: Browser, kith_engine: str
) -> None:
    code = await setup_code(kith)
    async with serving(kith) as base:
        context = await browser.new_context(viewport={"width": 1024, "height": 720})
        page = await context.new_page()

        # A fresh install sends the first visit to the set-up page.
        await page.goto(base + "/")
        await expect(page).to_have_url(base + "/setup")
        await shoot(page, "setup", kith_engine)
        await page.fill("#code", "WRONG-CODE-0000")
        await page.fill("#email", "owner@firm.example")
        await page.fill("#password", PASSWORD)
        await page.fill("#password_again", PASSWORD)
        await page.get_by_role("button", name="Create the admin").click()
        await expect(page.locator("#form-error")).to_contain_text("set-up code is not right")
        await page.fill("#code", code.lower())
        await page.fill("#password", PASSWORD)
        await page.fill("#password_again", PASSWORD)
        await page.get_by_role("button", name="Create the admin").click()
        await expect(page).to_have_url(base + "/my-day")
        await expect(page.get_by_role("link", name="Users")).to_be_visible()

        # Afterwards the set-up page is gone.
        response = await page.request.get(base + "/setup")
        assert response.status == 404

        # A contact, found again by its phone typed another way.
        await page.goto(base + "/contacts/new")
        await page.fill("#given_name", "Ada")
        await page.fill("#family_name", "Lovelace")
        await page.fill("#phones", PHONE_AS_STORED)
        await page.fill("#emails", "ada@example.com")
        await shoot(page, "contact-new", kith_engine)
        await page.get_by_role("button", name="Save").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
        card_url = page.url
        await page.goto(base + "/contacts")
        await page.fill("#q", PHONE_AS_TYPED)
        await page.get_by_role("button", name="Search").click()
        await expect(page.get_by_role("link", name="Ada Lovelace")).to_be_visible()
        await shoot(page, "contacts", kith_engine)

        # Log a call from the card.
        await page.get_by_role("link", name="Ada Lovelace").click()
        await expect(page).to_have_url(card_url)
        await page.get_by_label("Call", exact=True).check()
        await page.fill("#summary", "Asked about the spring prices")
        await page.select_option("#direction", "in")
        await page.get_by_role("button", name="Add to the timeline").click()
        timeline = page.locator("#timeline-list")
        await expect(timeline).to_contain_text("Asked about the spring prices")
        await expect(timeline).to_contain_text("incoming")

        # A task due yesterday is overdue on my day; one click closes it.
        await page.get_by_label("Task", exact=True).check()
        await page.fill("#summary", "Send the price list")
        await page.fill("#due_at", "2020-01-02T09:00")
        await page.get_by_role("button", name="Add to the timeline").click()
        await expect(timeline).to_contain_text("Send the price list")
        await shoot(page, "contact-card", kith_engine)
        await page.goto(base + "/my-day")
        overdue = page.locator("section", has=page.get_by_role("heading", name="Overdue"))
        await expect(overdue).to_contain_text("Send the price list")
        await shoot(page, "my-day", kith_engine)
        await page.get_by_role("button", name="Done: Send the price list").click()
        await expect(page.get_by_text("Nothing overdue.")).to_be_visible()
        tasks = await InteractionService(kith).tasks(due="all")
        assert tasks.items == []

        # The admin declares a custom field and gives an integration a token.
        await page.get_by_role("link", name="Custom fields").click()
        await page.fill("#field-name", "plan")
        await page.select_option("#field-type", "choice")
        await page.fill("#field-label", "Plan")
        await page.fill("#field-choices", "Basic\nPro")
        await page.get_by_role("button", name="Add the field").click()
        await expect(page.locator("table.list")).to_contain_text("Basic, Pro")
        await shoot(page, "fields", kith_engine)
        await page.get_by_role("link", name="API tokens").click()
        await page.fill("#token-name", "Shop sync")
        await page.get_by_role("button", name="Create the token").click()
        await expect(page.locator("#secret")).to_have_value(re.compile(r"^kith_"))
        await shoot(page, "tokens", kith_engine)

        # The phone-sized screen shows the same card.
        phone = await browser.new_context(viewport={"width": 360, "height": 740})
        small = await phone.new_page()
        await small.context.add_cookies(await context.cookies())
        await small.goto(card_url)
        await expect(small.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
        width = await small.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, "the card scrolls sideways on a phone"
        await shoot(small, "contact-card-phone", kith_engine)
        await phone.close()
        await context.close()


async def test_an_imported_csv_is_followed_to_its_end(
    kith: Kith, browser: Browser, kith_engine: str, tmp_path: Path
) -> None:
    email = await add_user(kith, "admin")
    csv = tmp_path / "customers.csv"
    csv.write_text(
        "name,email,phone\n"
        "Grace Hopper,grace@example.com,+1 202 555 0101\n"
        "Alan Turing,alan@example.com,+44 161 496 0000\n"
        "Not An Email,not-an-email,\n",
        encoding="utf-8",
    )
    async with serving(kith) as base:
        page = await browser.new_page()
        await sign_in(page, base, email)
        await page.goto(base + "/imports")
        await page.set_input_files("#file", str(csv))
        await page.get_by_role("button", name="Import", exact=True).click()
        await expect(page).to_have_url(re.compile(r"/imports/[0-9a-f-]+$"))
        await expect(page.locator("#import-state")).to_contain_text("Finished.", timeout=20_000)
        await expect(page.locator("[data-count=imported]")).to_have_text("2")
        await expect(page.locator("[data-count=invalid]")).to_have_text("1")
        await shoot(page, "import", kith_engine)
        await page.goto(base + "/contacts?q=grace@example.com")
        await expect(page.get_by_role("link", name="Grace Hopper")).to_be_visible()
        await page.close()


async def test_two_duplicates_are_merged_from_the_duplicates_page(
    kith: Kith, browser: Browser, kith_engine: str
) -> None:
    email = await add_user(kith, "agent")
    contacts = ContactService(kith)
    kept = await contacts.create(
        ContactCreate(given_name="Grace", family_name="Hopper", phones=[PhoneIn("+12025550101")])
    )
    twin = await contacts.create(
        ContactCreate(given_name="Grace", family_name="Hoper", phones=[PhoneIn("+1 202 555 0101")])
    )
    async with serving(kith) as base:
        page = await browser.new_page()
        await sign_in(page, base, email)
        await page.goto(base + "/duplicates")
        await page.get_by_role("button", name="Look for duplicates").click()
        await expect(page.get_by_role("status")).to_contain_text("Scan done")
        await expect(page.locator("main")).to_contain_text("same phone")
        await shoot(page, "duplicates", kith_engine)
        await page.get_by_role("button", name="Merge, keep Grace Hopper").click()
        await expect(page).to_have_url(f"{base}/contacts/{kept.id}")
        assert not await contacts.exists(twin.id)
        await page.goto(base + "/duplicates")
        await expect(page.get_by_text("No duplicates waiting.")).to_be_visible()
        await page.close()


async def test_a_form_posted_without_its_csrf_token_is_refused(
    kith: Kith, browser: Browser
) -> None:
    email = await add_user(kith, "agent")
    async with serving(kith) as base:
        page = await browser.new_page()
        await sign_in(page, base, email)
        await expect(page).to_have_url(base + "/my-day")
        refused = await page.request.post(
            base + "/contacts/new", form={"given_name": "Mallory"}, max_redirects=0
        )
        assert refused.status == 403
        assert "The form had expired" in await refused.text()
        listed = await ContactService(kith).list(q="Mallory")
        assert listed.items == []
        await page.close()


async def test_an_agent_cannot_open_compliance_pages(kith: Kith, browser: Browser) -> None:
    email = await add_user(kith, "agent")
    async with serving(kith) as base:
        page = await browser.new_page()
        await sign_in(page, base, email)
        nav = page.get_by_role("navigation", name="Main")
        await expect(nav.get_by_role("link", name="Contacts")).to_be_visible()
        await expect(nav.get_by_role("link", name="Compliance")).to_have_count(0)
        await expect(nav.get_by_role("link", name="Users")).to_have_count(0)
        response = await page.goto(base + "/compliance")
        assert response is not None and response.status == 403
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "You may not open this page"
        )
        response = await page.goto(base + "/admin/users")
        assert response is not None and response.status == 403
        await page.close()


async def test_the_russian_interface_renders(
    kith: Kith, browser: Browser, kith_engine: str
) -> None:
    email = await add_user(kith, "agent")
    async with serving(kith) as base:
        # Chosen by the browser's language...
        context = await browser.new_context(locale="ru-RU", viewport={"width": 1024, "height": 720})
        page = await context.new_page()
        await page.goto(base + "/signin")
        await expect(page.locator("html")).to_have_attribute("lang", "ru")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Вход")
        await sign_in(page, base, email)
        await expect(page.get_by_role("heading", level=1)).to_have_text("Мой день")
        await expect(page.get_by_text("Просроченных задач нет.")).to_be_visible()
        await shoot(page, "my-day-ru", kith_engine)
        # ...or by the person, over the browser's choice.
        await page.select_option("#language", "en")
        await page.get_by_role("button", name="Сменить").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("My day")
        await context.close()


async def test_a_ringing_call_pops_the_callers_card_and_the_timeline_refreshes(
    kith: Kith, browser: Browser
) -> None:
    if "call.started" not in kith.bus.event_types:
        # Declared here as the telephony plugin declares it, so the channel can be tested
        # without a telephone system.
        kith.bus.declare(
            EventType(
                "call.started",
                "A call began ringing.",
                ("call_id", "contact_id", "extension", "user_id", "direction", "new_lead"),
            )
        )
    email = await add_user(kith, "agent")
    other = await add_user(kith, "admin")
    contact = await ContactService(kith).create(
        ContactCreate(given_name="Grace", family_name="Hopper", phones=[PhoneIn("+12025550101")])
    )
    async with serving(kith) as base:
        page = await browser.new_page()
        await sign_in(page, base, email)
        await expect(page.locator("body")).to_have_attribute("data-live-open", "yes")
        agent = await _user_id(kith, email)

        # A call for someone else does not show here.
        async with kith.unit_of_work() as uow:
            uow.publish(
                "call.started",
                contact.id,
                call_id="c-0",
                contact_id=str(contact.id),
                extension="200",
                user_id=str(await _user_id(kith, other)),
                direction="in",
                new_lead=False,
            )
        async with kith.unit_of_work() as uow:
            uow.publish(
                "call.started",
                contact.id,
                call_id="c-1",
                contact_id=str(contact.id),
                extension="201",
                user_id=str(agent),
                direction="in",
                new_lead=False,
            )
        popup = page.locator("#call")
        await expect(popup).to_be_visible(timeout=5_000)
        await expect(popup).to_contain_text("Incoming call")
        await popup.get_by_role("link", name="Open the card").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Grace Hopper")

        # Something logged elsewhere appears on the open card without a reload.
        await expect(page.locator("body")).to_have_attribute("data-live-open", "yes")
        await InteractionService(kith).log(
            contact.id,
            InteractionCreate(kind="note", summary="Called from the other office"),
            SYSTEM,
        )
        await expect(page.locator("#timeline-list")).to_contain_text(
            "Called from the other office", timeout=5_000
        )
        await page.close()


async def _user_id(kith: Kith, email: str) -> object:
    from kith.services.users import UserService

    return (await UserService(kith).by_email(email)).id


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
