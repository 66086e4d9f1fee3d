"""The contact card's timeline: the newest entries, and "Older" paging on with the same keyset
cursor as the API. Real requests through the whole app, on both engines."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid

from _web_server import add_user, serving
from _web_server import sign_in as sign_in_page
from kith.runtime import Kith
from kith.schemas import ContactCreate, InteractionCreate
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from playwright.async_api import Browser, expect
from test_web_sessions import add, browser_like, sign_in

ENTRY = re.compile(r"<p>Entry (\d+)</p>")
OLDER = re.compile(r'id="timeline-older"><a class="button" href="([^"]+)" data-more="([^"]+)"')


async def _contact_with(kith: Kith, entries: int) -> uuid.UUID:
    contact = await ContactService(kith).create(ContactCreate(name="Ada Lovelace"))
    start = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)
    for number in range(entries):
        await InteractionService(kith).log(
            contact.id,
            InteractionCreate(
                kind="note",
                summary=f"Entry {number}",
                occurred_at=start + dt.timedelta(minutes=number),
            ),
        )
    return contact.id


def _entries(page: str) -> list[int]:
    return [int(number) for number in ENTRY.findall(page)]


async def test_the_card_shows_the_newest_twenty_and_older_pages_on(kith: Kith) -> None:
    contact_id = await _contact_with(kith, 45)
    async with browser_like(kith) as client:
        await sign_in(client, await add(kith, "agent"))
        card = await client.get(f"/contacts/{contact_id}")
        assert card.status_code == 200
        assert _entries(card.text) == list(range(44, 24, -1))
        assert "Back to the newest entries" not in card.text
        older = OLDER.search(card.text)
        assert older, "the card links to older entries"
        # Without scripts: the link opens the card further back.
        link, part = (html.unescape(found) for found in older.groups())
        assert link.startswith(f"/contacts/{contact_id}?cursor=") and link.endswith("#timeline")
        back = await client.get(link.removesuffix("#timeline"))
        assert back.status_code == 200
        assert _entries(back.text) == list(range(24, 4, -1))
        assert "Back to the newest entries" in back.text and "Ada Lovelace" in back.text
        # With scripts: the timeline alone, the same page, then the last one without "Older".
        fragment = await client.get(part)
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert _entries(fragment.text) == list(range(24, 4, -1))
        last = OLDER.search(fragment.text)
        assert last
        end = await client.get(html.unescape(last.group(2)))
        assert _entries(end.text) == [4, 3, 2, 1, 0]
        assert "timeline-older" not in end.text


async def test_a_cursor_not_handed_out_is_refused_with_a_page(kith: Kith) -> None:
    contact_id = await _contact_with(kith, 1)
    async with browser_like(kith) as client:
        await sign_in(client, await add(kith, "agent"))
        for path in (f"/contacts/{contact_id}", f"/contacts/{contact_id}/timeline"):
            refused = await client.get(path, params={"cursor": "not-a-cursor"})
            assert refused.status_code in (400, 422), refused.text
            assert "Traceback" not in refused.text
        few = await client.get(f"/contacts/{contact_id}")
        assert _entries(few.text) == [0] and "timeline-older" not in few.text


async def test_older_adds_the_entries_below_in_the_browser(kith: Kith, browser: Browser) -> None:
    contact_id = await _contact_with(kith, 21)
    async with serving(kith) as base:
        context = await browser.new_context(viewport={"width": 360, "height": 720})
        page = await context.new_page()
        await sign_in_page(page, base, await add_user(kith, "agent"))
        card = f"{base}/contacts/{contact_id}"
        await page.goto(card)
        entries = page.locator("#timeline-list > li.entry")
        await expect(entries).to_have_count(20)
        await page.get_by_role("link", name="Older").click()
        await expect(entries).to_have_count(21)
        await expect(entries.last).to_contain_text("Entry 0")
        await expect(page.get_by_role("link", name="Older")).to_have_count(0)
        # Added in place: the card itself was not left.
        assert page.url == card
        await context.close()
