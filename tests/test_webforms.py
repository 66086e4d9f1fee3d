"""Web forms over real HTTP through the ASGI app, on both engines: each content type, bot
defences, body limit, CORS, rate limit, dedupe under concurrency, suppression, consent,
double opt-in over a real local SMTP server, attribution and stats."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _smtp import SmtpServer, start_server
from kith import Kith, hookimpl
from kith.plugins.webforms import signing
from kith.plugins.webforms.tables import WebFormOptIn, WebFormSubmission
from kith.privacy.rights.consent import ConsentService
from kith.privacy.rights.suppression import SuppressionList
from kith.settings import Settings
from kith.tables import Contact, Interaction, OutboxEvent
from kith.testing import TokenFactory, settings_for

ORIGIN = "https://shop.example"
NOTICE = "Send me news and offers by email. I can unsubscribe at any time."
FORM = {
    "id": "contact-us",
    "title": "Contact us",
    "fields": [
        {"name": "name", "maps_to": "name", "required": True},
        {"name": "email", "maps_to": "email", "type": "email", "required": True},
        {"name": "phone", "maps_to": "phone", "type": "phone"},
        {"name": "message", "maps_to": "message", "type": "textarea"},
    ],
    "purposes": [{"name": "marketing", "notice": NOTICE, "version": "2026-12"}],
    "allowed_origins": [ORIGIN],
    "task": {"summary": "Call back", "due_minutes": 60},
}


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_server(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path, smtp: SmtpServer) -> Settings:
    return settings_for(
        tmp_path / "kith-home",
        kith_database_url,
        webforms_min_fill_seconds="2",
        webforms_rate_per_client="1000",
        **smtp.env(),
    )


def old_token(kith: Kith, form_id: str = "contact-us") -> str:
    """A token issued ten seconds ago, as for a person who took time to fill the form."""
    key = signing.signing_key(kith.settings.home)
    return signing.fill_token(key, form_id, now=time.time() - 10)


@pytest.fixture
async def form(kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory) -> dict:
    headers = await kith_auth("admin")
    response = await kith_client.post("/api/forms", json=FORM, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def values(kith: Kith, email: str = "ada@example.com", **more: str) -> dict[str, str]:
    return {"name": "Ada Lovelace", "email": email, "_kith_t": old_token(kith), **more}


async def contacts(kith: Kith) -> int:
    return await Contact.count().run()


async def test_urlencoded_multipart_and_json_are_accepted(kith: Kith, kith_client, form):
    url = "/f/contact-us?utm_source=newsletter&utm_campaign=winter"
    first = await kith_client.post(url, data=values(kith, "a@example.com"))
    second = await kith_client.post(url, files={"x": ("", b"")}, data=values(kith, "b@example.com"))
    third = await kith_client.post(
        url, json=values(kith, "c@example.com", phone="+44 20 7946 0000")
    )
    for response in (first, second, third):
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True
    assert await contacts(kith) == 3
    assert await Interaction.count().where(Interaction.kind == "form_submission").run() == 3
    assert await Interaction.count().where(Interaction.kind == "task").run() == 3
    assert await WebFormSubmission.count().where(WebFormSubmission.utm_source == "newsletter") == 3


async def test_a_bad_value_is_a_problem_naming_the_field_and_stores_nothing(
    kith: Kith, kith_client, form
):
    response = await kith_client.post("/f/contact-us", json=values(kith, "not-an-email"))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "email"
    assert await contacts(kith) == 0


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"website": "http://spam.example"}, "refused"),
        ({"_kith_t": ""}, "token"),
        ({"_kith_t": "123.forged"}, "token"),
    ],
    ids=["honeypot", "no-token", "forged-token"],
)
async def test_bots_are_refused_and_leave_no_trace(kith: Kith, kith_client, form, change, detail):
    response = await kith_client.post("/f/contact-us", data={**values(kith), **change})
    assert response.status_code == 422
    assert detail in response.json()["detail"]
    assert await contacts(kith) == 0
    assert await WebFormSubmission.count().run() == 0


async def test_a_form_sent_faster_than_a_person_fills_it_is_refused(kith: Kith, kith_client, form):
    token = (await kith_client.get("/f/contact-us/token")).json()["token"]
    response = await kith_client.post("/f/contact-us", data={**values(kith), "_kith_t": token})
    assert response.status_code == 422
    assert "too quickly" in response.json()["detail"]
    assert await contacts(kith) == 0


async def test_a_body_over_the_limit_is_refused(kith: Kith, kith_client, form):
    response = await kith_client.post("/f/contact-us", data=values(kith, message="x" * 70_000))
    assert response.status_code == 413
    assert await contacts(kith) == 0


async def test_cors_is_granted_to_allowed_origins_only(kith: Kith, kith_client, form):
    allowed = await kith_client.post("/f/contact-us", json=values(kith), headers={"Origin": ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    preflight = await kith_client.options(
        "/f/contact-us",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN

    refused = await kith_client.post(
        "/f/contact-us",
        json=values(kith, "evil@example.com"),
        headers={"Origin": "https://evil.example"},
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    assert await contacts(kith) == 1


async def test_a_browser_without_javascript_gets_pages(kith: Kith, kith_client, form):
    html = {"Accept": "text/html,application/xhtml+xml"}
    page = await kith_client.get("/f/contact-us")
    assert page.status_code == 200 and 'name="_kith_t"' in page.text
    bad = await kith_client.post("/f/contact-us", data={**values(kith), "email": ""}, headers=html)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    good = await kith_client.post("/f/contact-us", data=values(kith), headers=html)
    assert good.status_code == 200 and "Thank you" in good.text


async def test_the_embed_snippet_is_a_plain_form_with_an_inline_script(kith_client, form):
    snippet = (await kith_client.get("/f/contact-us/embed")).text
    assert (
        '<form class="kith-form"' in snippet and 'action="http://kith.test/f/contact-us"' in snippet
    )
    assert "<script>" in snippet and "src=" not in snippet
    assert NOTICE in snippet


async def test_fifty_concurrent_submissions_make_one_contact(kith: Kith, kith_client, form):
    responses = await asyncio.gather(
        *(
            kith_client.post("/f/contact-us", data=values(kith, "same@example.com"))
            for _ in range(50)
        )
    )
    assert [r.status_code for r in responses] == [200] * 50
    assert await contacts(kith) == 1
    assert await Interaction.count().where(Interaction.kind == "form_submission").run() == 50
    stats = await FormStatsOf(kith)
    assert stats.submissions == 50 and stats.new_contacts == 1


async def FormStatsOf(kith: Kith):
    from kith.plugins.webforms.service import FormService

    return await FormService(kith).stats("contact-us")


async def test_a_suppressed_person_is_dropped_and_counted(
    kith: Kith, kith_client, form, kith_auth: TokenFactory
):
    await SuppressionList(kith).add("email", "gone@example.com", "erasure")
    response = await kith_client.post("/f/contact-us", data=values(kith, "gone@example.com"))
    assert response.status_code == 200 and response.json()["ok"] is True
    assert await contacts(kith) == 0
    assert await WebFormSubmission.count().run() == 0
    stats = await kith_client.get("/api/forms/contact-us/stats", headers=await kith_auth("admin"))
    assert stats.json()["dropped_suppressed"] == 1


async def test_consent_only_for_ticked_purposes_with_the_notice_hash(kith: Kith, kith_client, form):
    await kith_client.post("/f/contact-us", data=values(kith, "no@example.com"))
    await kith_client.post(
        "/f/contact-us",
        data=values(kith, "yes@example.com", consent_marketing="yes"),
        headers={"User-Agent": "TestBrowser/1.0"},
    )
    ledger = ConsentService(kith)
    ids = {row["id"] for row in await Contact.select(Contact.id).run()}
    histories = {cid: await ledger.history(cid) for cid in ids}
    ticked = [h for h in histories.values() if h]
    assert len(ticked) == 1 and len(ids) == 2
    [event] = ticked[0]
    assert event.purpose == "marketing" and event.channel == "webform"
    assert event.notice_sha256 == hashlib.sha256(NOTICE.encode()).hexdigest()
    submission = (
        await WebFormSubmission.select()
        .where(WebFormSubmission.interaction_id == event.source_interaction_id)
        .first()
    )
    assert submission is not None
    from kith.plugins.webforms.privacy import reveal

    opened = await reveal(kith, submission)
    assert opened["user_agent"] == "TestBrowser/1.0"
    assert opened["client_address"] == "127.0.0.0"


async def test_double_opt_in_by_a_real_mailbox(
    kith: Kith, kith_client, kith_auth: TokenFactory, smtp: SmtpServer
):
    headers = await kith_auth("admin")
    body = {**FORM, "id": "news", "double_opt_in": True, "task": None}
    assert (await kith_client.post("/api/forms", json=body, headers=headers)).status_code == 201
    token = signing.fill_token(
        signing.signing_key(kith.settings.home), "news", now=time.time() - 10
    )
    response = await kith_client.post(
        "/f/news",
        data={
            "name": "Ada",
            "email": "ada@example.com",
            "consent_marketing": "yes",
            "_kith_t": token,
        },
    )
    assert response.json()["confirm_by_email"] is True
    [contact] = await Contact.select(Contact.id).run()
    assert await ConsentService(kith).history(contact["id"]) == []
    await kith.bus.drain()

    [mail] = smtp.mailbox.messages
    assert mail["To"] == "ada@example.com"
    link = re.search(r"https?://\S+/f/news/confirm\?token=\S+", smtp.mailbox.text_of())
    assert link is not None
    path = link.group(0).split("kith.test", 1)[-1]
    confirmed = await kith_client.get(path)
    assert confirmed.status_code == 200 and "Confirmed" in confirmed.text
    [event] = await ConsentService(kith).history(contact["id"])
    assert event.channel == "webform_opt_in"
    # A second click records nothing more.
    await kith_client.get(path)
    assert len(await ConsentService(kith).history(contact["id"])) == 1


async def test_unconfirmed_consent_expires(kith: Kith, kith_client, kith_auth: TokenFactory):
    import datetime as dt

    from kith.plugins.webforms.service import SubmissionService

    headers = await kith_auth("admin")
    body = {**FORM, "id": "news", "double_opt_in": True, "task": None}
    await kith_client.post("/api/forms", json=body, headers=headers)
    token = signing.fill_token(
        signing.signing_key(kith.settings.home), "news", now=time.time() - 10
    )
    await kith_client.post(
        "/f/news",
        data={
            "name": "Ada",
            "email": "ada@example.com",
            "consent_marketing": "yes",
            "_kith_t": token,
        },
    )
    [row] = await WebFormOptIn.select().run()
    link = signing.opt_in_token(signing.signing_key(kith.settings.home), row["id"])
    past = row["expires_at"] - dt.timedelta(days=5)
    await WebFormOptIn.update({WebFormOptIn.expires_at: past}).where(WebFormOptIn.id == row["id"])
    assert await SubmissionService(kith).expire() == 1
    response = await kith_client.get(f"/f/news/confirm?token={link}")
    assert response.status_code == 410
    assert await ConsentService(kith).history(row["contact_id"]) == []


class BrokenLedger:
    """A second consent ledger that fails to record (its database is down, say)."""

    @hookimpl
    async def kith_record_consent(self, kith, contact_id, consent, actor):
        raise RuntimeError("the ledger is unreachable")


@pytest.mark.kith_plugins(("broken_ledger", BrokenLedger()))
async def test_a_consent_that_cannot_be_recorded_keeps_nothing_of_the_submission(
    kith: Kith, kith_client, form
):
    """Consent must be provable for every contact a form makes: when a ledger fails, the
    whole submission is rolled back and the sender is told to try again, rather than a
    contact being kept without the proof of what was agreed to."""
    response = await kith_client.post(
        "/f/contact-us", data=values(kith, "yes@example.com", consent_marketing="yes")
    )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "yes@example.com" not in response.text
    assert await contacts(kith) == 0
    assert await Interaction.count().run() == 0
    assert await WebFormSubmission.count().run() == 0
    assert await OutboxEvent.count().run() == 0
    # Without a ticked purpose no ledger is asked, and the submission is kept.
    kept = await kith_client.post("/f/contact-us", data=values(kith, "no@example.com"))
    assert kept.status_code == 200 and await contacts(kith) == 1
