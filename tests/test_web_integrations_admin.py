"""The admin pages of the built-in integrations (web forms, telephony, 1C, webhooks) and of the
plugins: real requests through the whole app, signed in as a browser is, on both engines."""

from __future__ import annotations

import datetime as dt
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
from _webhook_receiver import Receiver
from kith import ContactCreate, ContactService, Kith, UserService
from kith.plugin_manager import KithPluginManager, load_plugin_manager
from kith.plugins.webforms import signing
from kith.plugins.webforms.schemas import form_from
from kith.plugins.webforms.service import FormService
from kith.plugins.webhooks.schemas import SubscriptionCreate
from kith.plugins.webhooks.service import WebhookService
from kith.plugins.webhooks.tables import WebhookSubscription
from kith.privacy.rights.audit import AuditLog
from kith.settings import Settings
from kith.testing import settings_for
from kith.web.templating import local_time
from playwright.async_api import Browser, expect
from test_onec_exchange import PATH as ONEC_PATH
from test_onec_exchange import _checkauth as onec_checkauth
from test_onec_exchange import _import as onec_import
from test_onec_exchange import _upload as onec_upload
from test_web_accessibility import AXE, BLOCKING, RUN_AXE, violations
from test_web_sessions import add, browser_like, post_form, sign_in
from test_webhooks import documented_verifier

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


def shown_secret(page: str) -> str | None:
    found = re.search(r'id="secret" class="secret" value="([^"]+)"', page)
    return found.group(1) if found else None


async def test_a_webhooks_secret_is_rotated_on_the_page_shown_once_and_signs(
    kith: Kith, receiver: Receiver
) -> None:
    admin = await add(kith, "admin")
    created = await WebhookService(kith).create(
        SubscriptionCreate(url=receiver.url("/hook"), events=["contact.created"])
    )
    subscription = created.subscription
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        rotated = await post_form(
            client, "/admin/webhooks", f"/admin/webhooks/{subscription.id}/secret", {}
        )
        assert rotated.status_code == 200
        secret = shown_secret(rotated.text)
        assert secret is not None and secret != created.secret
        assert "signing secret of the webhook to" in rotated.text
        # The old secret signs too for the grace period, a day by default: the page says until
        # when, in the installation's time.
        (row,) = await WebhookSubscription.select(WebhookSubscription.previous_secret_until).run()
        until = row["previous_secret_until"]
        assert abs(until - dt.datetime.now(dt.UTC) - dt.timedelta(days=1)) < dt.timedelta(minutes=1)
        assert f"Until {local_time(until, kith.settings.timezone)} deliveries are signed" in (
            rotated.text
        )
        again = await client.get("/admin/webhooks")
        assert again.status_code == 200
        assert shown_secret(again.text) is None and secret not in again.text

        await ContactService(kith).create(ContactCreate(name="Ada"))
        await kith.bus.drain()
    [request] = receiver.at("/hook")
    verify = documented_verifier()["verify_kith_signature"]
    verify(secret, request.body, request.headers["kith-signature"])
    verify(created.secret, request.body, request.headers["kith-signature"])


@pytest.mark.parametrize("more_toml", ["\n[webhooks]\nsecret_grace_seconds = 0\n"])
async def test_without_a_grace_period_the_page_says_the_old_secret_stops_now(
    kith: Kith, receiver: Receiver
) -> None:
    admin = await add(kith, "admin")
    created = await WebhookService(kith).create(
        SubscriptionCreate(url=receiver.url("/hook"), events=["contact.created"])
    )
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        rotated = await post_form(
            client, "/admin/webhooks", f"/admin/webhooks/{created.subscription.id}/secret", {}
        )
        assert rotated.status_code == 200
        assert "The old secret stopped signing now." in rotated.text
        assert "deliveries are signed with the old secret too" not in rotated.text
        secret = shown_secret(rotated.text)
        assert secret is not None
        await ContactService(kith).create(ContactCreate(name="Ada"))
        await kith.bus.drain()
    [request] = receiver.at("/hook")
    docs = documented_verifier()
    docs["verify_kith_signature"](secret, request.body, request.headers["kith-signature"])
    with pytest.raises(docs["InvalidSignature"]):
        docs["verify_kith_signature"](
            created.secret, request.body, request.headers["kith-signature"]
        )


async def test_rotating_an_unknown_webhooks_secret_is_a_404_page(kith: Kith) -> None:
    admin = await add(kith, "admin")
    created = await WebhookService(kith).create(
        SubscriptionCreate(url="https://hooks.example.com/kith", events=["*"])
    )
    unknown = "0190a6f0-0000-7000-8000-000000000000"
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        missing = await post_form(
            client, "/admin/webhooks", f"/admin/webhooks/{unknown}/secret", {}
        )
    assert missing.status_code == 404
    assert f"webhook subscription {unknown} does not exist" in missing.text
    assert shown_secret(missing.text) is None
    # The one that exists kept its secret.
    (row,) = await WebhookSubscription.select(WebhookSubscription.previous_secret_until).run()
    assert row["previous_secret_until"] is None
    assert str(created.subscription.id) != unknown


async def test_the_delivery_log_shows_a_receivers_status_and_on_demand_its_text_escaped(
    kith: Kith, receiver: Receiver
) -> None:
    admin = await add(kith, "admin")
    receiver.statuses["/hook"] = [500]
    receiver.bodies["/hook"] = b"<b>Database down</b> for Ada"
    answered = await WebhookService(kith).create(
        SubscriptionCreate(url=receiver.url("/hook"), events=["contact.created"])
    )
    await WebhookService(kith).create(SubscriptionCreate(url=dead_url(), events=["*"]))
    contact = await ContactService(kith).create(ContactCreate(name="Ada"))
    await kith.bus.drain()
    deliveries = (await WebhookService(kith).deliveries()).items
    (delivery,) = [d for d in deliveries if d.subscription_id == answered.subscription.id]
    (unanswered,) = [d for d in deliveries if d.subscription_id != answered.subscription.id]
    assert unanswered.status_code is None and unanswered.error
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        listed = await client.get("/admin/webhooks")
        assert listed.status_code == 200
        assert "HTTP 500" in listed.text
        # The answer may quote the person: it is opened only when asked for.
        assert "Database down" not in listed.text
        assert f'href="/admin/webhooks/deliveries/{delivery.id}"' in listed.text
        # No answer came back from a dead address: its error is shown, with nothing to read.
        assert unanswered.error in listed.text
        assert f"/admin/webhooks/deliveries/{unanswered.id}" not in listed.text
        answer = await client.get(f"/admin/webhooks/deliveries/{delivery.id}")
    assert answer.status_code == 200
    assert "HTTP 500" in answer.text
    assert "&lt;b&gt;Database down&lt;/b&gt; for Ada" in answer.text
    assert "<b>Database down" not in answer.text
    # The reading is in the contact's audit log, as one through the API or the command is.
    reads = [
        entry
        for entry in await AuditLog(kith).entries(contact.id)
        if entry.action == "read_webhook_response"
    ]
    assert [(entry.channel, entry.details) for entry in reads] == [
        ("web", {"delivery_id": str(delivery.id)})
    ]


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
        created = await WebhookService(kith).create(
            SubscriptionCreate(url="https://hooks.example.com/kith", events=["*"])
        )
        rotate = f"/admin/webhooks/{created.subscription.id}/secret"
        assert (await post_form(client, "/contacts", rotate, {})).status_code == 403
        assert (await WebhookSubscription.select().first().run())["previous_secret_until"] is None
        await WebhookService(kith).remove(created.subscription.id)
        delivery = "/admin/webhooks/deliveries/0190a6f0-0000-7000-8000-000000000000"
        assert (await client.get(delivery)).status_code == 403
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
async def test_the_pages_pass_axe_cores_checks(
    kith: Kith, browser: Browser, receiver: Receiver
) -> None:
    admin = await add(kith, "admin")
    await FormService(kith).create(
        form_from({"id": "contact-us", "title": "Contact us", "fields": FIELDS})
    )
    receiver.statuses["/hook"] = [500]
    await WebhookService(kith).create(
        SubscriptionCreate(url=receiver.url("/hook"), events=["contact.created"])
    )
    await ContactService(kith).create(ContactCreate(name="Ada"))
    await kith.bus.drain()
    (delivery,) = (await WebhookService(kith).deliveries()).items
    async with serving(kith) as base:
        context = await browser.new_context(viewport={"width": 1024, "height": 720})
        page = await context.new_page()
        await sign_in_page(page, base, admin)
        found = []
        answer = f"/admin/webhooks/deliveries/{delivery.id}"
        for path in (*PAGES, "/admin/webforms/contact-us", answer):
            found += await violations(page, base + path)
        # The answer to a rotation, with the new secret, is only reached by the button.
        await page.goto(base + "/admin/webhooks")
        await page.get_by_role("button", name="Rotate secret").click()
        await expect(page.get_by_label("Signing secret")).to_have_value(re.compile(".{16}"))
        await page.add_script_tag(path=str(AXE))
        rotated = await page.evaluate(RUN_AXE)
        found += [item for item in rotated if item["impact"] in BLOCKING]
        await context.close()
    assert not found, found
