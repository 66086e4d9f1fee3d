"""The admin pages of the built-in integrations (web forms, telephony, 1C, webhooks) and of the
plugins: real requests through the whole app, signed in as a browser is, on both engines."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from _onec_helpers import EXCHANGE_PASSWORD, EXCHANGE_USER
from _onec_helpers import SETTINGS_TOML as ONEC_TOML
from _telephony import MANGO_KEY, MANGO_SALT, TWILIO_TOKEN, ZADARMA_KEY, ZADARMA_SECRET
from _telephony import settings_toml as telephony_toml
from _web_server import serving, shoot
from _web_server import sign_in as sign_in_page
from kith import ContactCreate, ContactService, Kith, UserService
from kith.plugin_manager import KithPluginManager, load_plugin_manager
from kith.plugins.webforms import signing
from kith.plugins.webforms.schemas import form_from
from kith.plugins.webforms.service import FormService
from kith.plugins.webhooks.schemas import SubscriptionCreate
from kith.plugins.webhooks.service import WebhookService
from kith.settings import Settings
from kith.testing import settings_for
from playwright.async_api import Browser, expect
from test_onec_exchange import PATH as ONEC_PATH
from test_onec_exchange import _checkauth as onec_checkauth
from test_onec_exchange import _import as onec_import
from test_onec_exchange import _upload as onec_upload
from test_web_accessibility import violations
from test_web_sessions import add, browser_like, post_form, sign_in

ODATA_PASSWORD = "odata-password-for-tests"
AMI_SECRET = "ami-secret-for-tests"
PAGES = (
    "/admin/webforms",
    "/admin/telephony",
    "/admin/onec",
    "/admin/webhooks",
    "/admin/plugins",
)
FIELDS = [
    {"name": "name", "maps_to": "name", "label": "Name"},
    {"name": "email", "maps_to": "email", "type": "email", "required": True},
]
PURPOSES = [{"name": "marketing", "notice": "Send me the newsletter", "version": "2"}]


def dead_url() -> str:
    """A URL on a port nothing listens on: deliveries to it fail."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def more_toml() -> str:
    """More of kith.toml, for a test to give with ``parametrize``."""
    return ""


@pytest.fixture
def disabled_plugins() -> str:
    """KITH_DISABLE_PLUGINS, for a test to give with ``parametrize``."""
    return ""


@pytest.fixture
def kith_plugin_manager(kith_plugins: list[Any], disabled_plugins: str) -> KithPluginManager:
    manager = load_plugin_manager({"KITH_DISABLE_PLUGINS": disabled_plugins})
    for item in kith_plugins:
        name, plugin = item if isinstance(item, tuple) else (None, item)
        manager.register(plugin, name)
    return manager


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path, more_toml: str) -> Settings:
    """Telephony and 1C configured, with secrets, through kith.toml as an operator does."""
    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    toml = telephony_toml(dead_url()) + more_toml
    toml += ONEC_TOML + f'odata_password = "{ODATA_PASSWORD}"\n'
    (home / "kith.toml").write_text(toml, encoding="utf-8")
    return settings_for(home, kith_database_url)


async def test_a_form_is_created_embedded_submitted_and_counted(kith: Kith) -> None:
    admin = await add(kith, "admin")
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        created = await post_form(
            client,
            "/admin/webforms",
            "/admin/webforms",
            {
                "id": "contact-us",
                "title": "Contact us",
                "fields": json.dumps(FIELDS),
                "purposes": json.dumps(PURPOSES),
                "allowed_origins": "https://www.example.com\n",
            },
        )
        assert created.status_code == 303
        assert created.headers["location"] == "/admin/webforms/contact-us"
        page = await client.get("/admin/webforms/contact-us")
        assert page.status_code == 200
        embed = await client.get("/f/contact-us/embed")
        # The page's snippet is the one /f/{id}/embed serves, escaped into its textarea.
        snippet = re.search(r'<textarea id="snippet"[^>]*>(.*?)</textarea>', page.text, re.S)
        assert snippet is not None
        assert _unescape(snippet.group(1)) == embed.text
        assert "Send me the newsletter" in embed.text

        key = signing.signing_key(kith.settings.home)
        sent = await client.post(
            "/f/contact-us?utm_source=newsletter",
            json={
                "name": "Ada",
                "email": "ada@example.com",
                "_kith_t": signing.fill_token(key, "contact-us", now=time.time() - 10),
            },
        )
        assert sent.status_code == 200, sent.text
        stats = await client.get("/admin/webforms/contact-us")
        assert re.search(r"<dt>Submissions</dt><dd>1</dd>", stats.text)
        assert "<td>newsletter</td><td>1</td>" in stats.text
        listed = await client.get("/admin/webforms")
        assert re.search(r"<td>Contact us</td>\s*<td>1</td>", listed.text)

        disabled = await post_form(
            client, "/admin/webforms/contact-us", "/admin/webforms/contact-us/disable", {}
        )
        assert disabled.status_code == 303
        assert not (await FormService(kith).get("contact-us")).active
        assert 'id="snippet"' not in (await client.get("/admin/webforms/contact-us")).text


async def test_a_bad_form_definition_shows_the_services_error_and_creates_nothing(
    kith: Kith,
) -> None:
    admin = await add(kith, "admin")
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        no_contact = [{"name": "name", "maps_to": "name"}]
        refused = await post_form(
            client,
            "/admin/webforms",
            "/admin/webforms",
            {"id": "leads", "title": "Leads", "fields": json.dumps(no_contact)},
        )
        assert refused.status_code == 422
        assert "a form needs a field mapped to email or phone" in refused.text
        # What was typed is kept for correcting.
        assert 'value="leads"' in refused.text
        broken = await post_form(
            client,
            "/admin/webforms",
            "/admin/webforms",
            {"id": "leads", "title": "Leads", "fields": "[{"},
        )
        assert broken.status_code == 422
        assert "fields is not valid JSON" in broken.text
    assert await FormService(kith).list() == []


def _unescape(text: str) -> str:
    for escaped, plain in (("&lt;", "<"), ("&gt;", ">"), ("&#34;", '"'), ("&#39;", "'")):
        text = text.replace(escaped, plain)
    return text.replace("&amp;", "&")


async def test_a_webhook_is_added_shows_its_secret_once_lists_deliveries_and_is_paused(
    kith: Kith,
) -> None:
    admin = await add(kith, "admin")
    url = dead_url()
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        added = await post_form(
            client,
            "/admin/webhooks",
            "/admin/webhooks",
            {"url": url, "events": "contact.created, contact.updated", "description": "ERP"},
        )
        assert added.status_code == 201
        (subscription,) = await WebhookService(kith).list()
        assert subscription.events == ["contact.created", "contact.updated"]
        secret = re.search(r'id="secret" class="secret" value="([^"]+)"', added.text)
        assert secret is not None and len(secret.group(1)) >= 16
        listed = await client.get("/admin/webhooks")
        assert url in listed.text
        assert secret.group(1) not in listed.text

        await ContactService(kith).create(ContactCreate(name="Ada"))
        await kith.bus.drain()
        listed = await client.get("/admin/webhooks")
        assert "<code>contact.created</code>" in listed.text
        (delivery,) = (await WebhookService(kith).deliveries()).items
        assert delivery.error and delivery.error in listed.text

        paused = await post_form(
            client, "/admin/webhooks", f"/admin/webhooks/{subscription.id}/disable", {}
        )
        assert paused.status_code == 303
        assert not (await WebhookService(kith).get(subscription.id)).active
        removed = await post_form(
            client, "/admin/webhooks", f"/admin/webhooks/{subscription.id}/delete", {}
        )
        assert removed.status_code == 303
        assert await WebhookService(kith).list() == []


async def test_a_bad_webhook_shows_the_services_error_and_adds_nothing(kith: Kith) -> None:
    admin = await add(kith, "admin")
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        refused = await post_form(
            client,
            "/admin/webhooks",
            "/admin/webhooks",
            {"url": "ftp://example.com/hook", "events": "contact.created"},
        )
        assert refused.status_code == 422
        assert "a webhook URL must start with http:// or https://" in refused.text
        unknown = await post_form(
            client,
            "/admin/webhooks",
            "/admin/webhooks",
            {"url": "https://example.com/hook", "events": "no.such.event"},
        )
        assert unknown.status_code == 422
        assert "no event type matches" in unknown.text
        assert (await client.get("/admin/webhooks?state=lost")).status_code == 422
    assert await WebhookService(kith).list() == []


ASTERISK_TOML = f"""
[telephony.asterisk]
enabled = true
port = 1
username = "kith"
secret = "{AMI_SECRET}"
"""


@pytest.mark.parametrize("more_toml", [ASTERISK_TOML], ids=["asterisk"])
async def test_the_telephony_page_shows_the_settings_with_secrets_masked(kith: Kith) -> None:
    admin = await add(kith, "admin")
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        page = await client.get("/admin/telephony")
    assert page.status_code == 200
    for secret in (TWILIO_TOKEN, ZADARMA_KEY, ZADARMA_SECRET, MANGO_KEY, MANGO_SALT, AMI_SECRET):
        assert secret not in page.text
    assert "set (hidden)" in page.text
    # Settings as read, where to change them, and where the providers post.
    assert "+442079460000" in page.text
    assert "101 → ann@firm.example" in page.text
    assert "kith.toml" in page.text
    assert "<code>https://crm.example.com/api/telephony/twilio/status</code>" in page.text
    assert "<code>http://kith.test/api/telephony/zadarma</code>" in page.text
    assert re.search(r"<td>twilio</td>\s*<td>yes</td>\s*<td>0</td>", page.text)
    # The AMI connection as this process sees it (no background work runs in a test).
    assert re.search(r'<dl class="details" id="ami">\s*<dt>State</dt><dd>not connected', page.text)


async def test_the_1c_page_shows_the_exchange_its_failed_import_and_masks_the_password(
    kith: Kith, kith_client: httpx.AsyncClient
) -> None:
    await UserService(kith).add(EXCHANGE_USER, "agent", password=EXCHANGE_PASSWORD)
    await onec_checkauth(kith_client)
    await kith_client.get(ONEC_PATH, params={"type": "sale", "mode": "init"})
    broken = "<КоммерческаяИнформация><Документ></Докуент>".encode()
    await onec_upload(kith_client, "sale", "orders.xml", broken)
    [reply] = await onec_import(kith_client, "sale", "orders.xml")
    assert reply[0] == "failure"
    admin = await add(kith, "admin")
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        page = await client.get("/admin/onec")
    assert page.status_code == 200
    assert ODATA_PASSWORD not in page.text
    assert EXCHANGE_USER in page.text
    assert "<code>http://kith.test/1c/exchange</code>" in page.text
    assert "<td>orders.xml</td>" in page.text
    assert "<td>failed</td>" in page.text
    assert "the XML is malformed at line 1, column 36" in page.text


@pytest.mark.parametrize("disabled_plugins", ["messengers"])
async def test_the_plugins_page_lists_the_loaded_and_the_skipped_with_the_reason(
    kith: Kith,
) -> None:
    admin = await add(kith, "admin")
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        page = await client.get("/admin/plugins")
    assert page.status_code == 200
    loaded, skipped = page.text.split('id="skipped"')
    for name in ("webforms", "telephony", "onec", "webhooks", "privacy.rights"):
        assert f"<td><code>{name}</code></td>" in loaded
    assert "<code>kith_register_pages</code>" in loaded
    assert "<td><code>messengers</code></td>" in skipped
    assert "disabled: disabled by KITH_DISABLE_PLUGINS" in skipped


async def test_agents_get_403_on_every_page_and_see_no_link(kith: Kith) -> None:
    agent = await add(kith, "agent")
    async with browser_like(kith) as client:
        await sign_in(client, agent)
        for page in PAGES:
            assert (await client.get(page)).status_code == 403, page
        refused = await post_form(
            client, "/contacts", "/admin/webhooks", {"url": "https://example.com", "events": "*"}
        )
        assert refused.status_code == 403
        contacts = (await client.get("/contacts")).text
    for page in PAGES:
        assert f'href="{page}"' not in contacts
    assert await WebhookService(kith).list() == []


async def test_an_admin_sees_the_links_and_the_pages_in_russian(kith: Kith) -> None:
    admin = await add(kith, "admin")
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        client.cookies.set("kith_lang", "ru", domain="kith.test")
        pages = {page: await client.get(page) for page in PAGES}
    for page, answer in pages.items():
        assert answer.status_code == 200, page
        assert f'<a href="{page}" aria-current="page">' in answer.text
    headings = {page: heading(answer.text) for page, answer in pages.items()}
    assert headings["/admin/telephony"] == "Телефония"
    assert headings["/admin/webhooks"] == "Вебхуки"
    assert headings["/admin/plugins"] == "Плагины"
    assert "Создать форму" in pages["/admin/webforms"].text


def heading(page: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", page)
    assert found is not None
    return found.group(1)


async def test_on_a_phone_sized_screen_an_admin_creates_a_form_and_nothing_scrolls_sideways(
    kith: Kith, browser: Browser, kith_engine: str
) -> None:
    admin = await add(kith, "admin")
    async with serving(kith) as base:
        context = await browser.new_context(viewport={"width": 360, "height": 740})
        page = await context.new_page()
        await sign_in_page(page, base, admin)
        await page.goto(base + "/admin/webforms")
        # The fields start as an example that makes a working form.
        await page.get_by_label("Id (lower-case").fill("newsletter")
        await page.get_by_label("Title").fill("Newsletter")
        await page.get_by_role("button", name="Create the form").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Newsletter")
        await expect(page.get_by_label("HTML snippet")).to_have_value(
            re.compile('data-kith-form="newsletter"')
        )
        await shoot(page, "webforms-phone", kith_engine)
        # Long addresses in the lists too.
        long_url = "https://hooks.example.com/" + "kith-events/" * 8
        await WebhookService(kith).create(SubscriptionCreate(url=long_url, events=["*"]))
        for path in PAGES:
            await page.goto(base + path)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{path} scrolls sideways on a phone"
        await context.close()


# The same pages on both engines: checked once.
@pytest.mark.parametrize("kith_engine", ["sqlite"])
async def test_the_pages_pass_axe_cores_checks(kith: Kith, browser: Browser) -> None:
    admin = await add(kith, "admin")
    await FormService(kith).create(
        form_from({"id": "contact-us", "title": "Contact us", "fields": FIELDS})
    )
    await WebhookService(kith).create(
        SubscriptionCreate(url="https://hooks.example.com/kith", events=["*"])
    )
    async with serving(kith) as base:
        context = await browser.new_context(viewport={"width": 1024, "height": 720})
        page = await context.new_page()
        await sign_in_page(page, base, admin)
        found = []
        for path in (*PAGES, "/admin/webforms/contact-us"):
            found += await violations(page, base + path)
        await context.close()
    assert not found, found
