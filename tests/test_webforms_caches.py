"""What a web form submission remembers between posts (the form, the notice of its text) and
what it no longer looks up (a contact and interaction made in the same transaction): a change
is used at once, also when made through another Kith instance on the same database; consent
still lands on one pseudonym and the right notice version. Real HTTP through the ASGI app,
on both engines."""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from kith import InteractionCreate, InteractionService, InvalidInput, Kith, utcnow
from kith.bootstrap import open_kith
from kith.plugin_manager import load_plugin_manager
from kith.plugins.webforms import signing
from kith.plugins.webforms.service import FormService
from kith.plugins.webforms.tables import WebForm
from kith.privacy.rights import consent as ledger_module
from kith.privacy.rights.consent import ConsentService, notice_hash
from kith.privacy.rights.tables import ConsentSubject, Notice
from kith.settings import Settings
from kith.tables import Contact
from kith.testing import TokenFactory, settings_for

NOTICE = "Send me news and offers by email."
FORM = {
    "id": "news",
    "title": "News",
    "fields": [
        {"name": "name", "maps_to": "name", "required": True},
        {"name": "email", "maps_to": "email", "type": "email", "required": True},
    ],
    "purposes": [{"name": "marketing", "notice": NOTICE}],
    "task": {"summary": "Call back", "due_minutes": 60},
}


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path) -> Settings:
    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(
        '[privacy.purposes.newsletter]\ndescription = "News"\nlawful_basis = "consent"\n'
    )
    return settings_for(
        home,
        kith_database_url,
        webforms_min_fill_seconds="0",
        webforms_rate_per_client="1000",
    )


@pytest.fixture
async def form(kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory) -> dict:
    response = await kith_client.post("/api/forms", json=FORM, headers=await kith_auth("admin"))
    assert response.status_code == 201, response.text
    return response.json()


@contextlib.asynccontextmanager
async def another(kith: Kith) -> AsyncIterator[Kith]:
    """A second Kith on the same database, as another process serving it would be; closed
    afterwards, and the tables given back to the first (they are bound per process)."""
    instance = open_kith(kith.settings, plugin_manager=load_plugin_manager())
    await instance.start()
    try:
        yield instance
    finally:
        await instance.close()
        await kith.database.start()


async def post(kith: Kith, client: httpx.AsyncClient, email: str, **more: str) -> httpx.Response:
    token = signing.fill_token(signing.signing_key(kith.settings.home), "news", time.time() - 5)
    body = {"name": "Ada Lovelace", "email": email, "_kith_t": token, **more}
    return await client.post("/f/news", json=body, headers={"Accept": "application/json"})


async def consent_of(kith: Kith) -> list:
    rows = await Contact.select(Contact.id).run()
    events = [e for row in rows for e in await ConsentService(kith).history(row["id"])]
    return [e for e in events if e.purpose == "marketing"]


async def test_a_form_disabled_by_another_instance_takes_no_more_posts(
    kith: Kith, kith_client, form
):
    assert (await post(kith, kith_client, "a@example.com")).status_code == 200
    async with another(kith) as other:
        await FormService(other).disable("news")
    response = await post(kith, kith_client, "b@example.com")
    assert response.status_code == 404
    assert await Contact.count().run() == 1


async def test_a_form_changed_elsewhere_is_used_at_once(kith: Kith, kith_client, form):
    assert (await post(kith, kith_client, "a@example.com", consent_marketing="yes")).is_success
    # As another process rewriting it from its settings: a new definition and updated_at.
    changed = {**form, "purposes": [{"name": "marketing", "notice": "Offers by post too."}]}
    changed = {k: v for k, v in changed.items() if k not in ("active", "origin")}
    changed.pop("created_at"), changed.pop("updated_at")
    await (
        WebForm.update({WebForm.definition: changed, WebForm.updated_at: utcnow()})
        .where(WebForm.id == "news")
        .run()
    )
    assert (await post(kith, kith_client, "b@example.com", consent_marketing="yes")).is_success
    digests = {e.notice_sha256 for e in await consent_of(kith)}
    assert digests == {notice_hash(NOTICE), notice_hash("Offers by post too.")}
    assert await Notice.count().where(Notice.purpose == "marketing").run() == 2


async def test_a_notice_published_by_another_instance_is_seen_at_once(
    kith: Kith, kith_client, form
):
    assert (await post(kith, kith_client, "a@example.com", consent_marketing="yes")).is_success
    async with another(kith) as other:
        await ConsentService(other).publish_notice("marketing", "Another text.")
    assert (await post(kith, kith_client, "b@example.com", consent_marketing="yes")).is_success
    # The form's text is current again: published as version 3, as without the cache.
    versions = sorted(e.notice_version for e in await consent_of(kith) if e.notice_version)
    assert versions == [1, 3]


async def test_a_notice_published_by_another_process_is_seen_once_remembered_long_enough(
    kith: Kith, kith_client, form, monkeypatch
):
    assert (await post(kith, kith_client, "a@example.com", consent_marketing="yes")).is_success
    # Written by another process: this one's memory is not told.
    await Notice.insert(
        Notice(
            purpose="marketing",
            version=2,
            text="Another text.",
            sha256=notice_hash("Another text."),
            created_at=utcnow(),
            created_by="system",
        )
    ).run()
    monkeypatch.setattr(ledger_module, "NOTICE_TTL_S", 0.0)
    assert (await post(kith, kith_client, "b@example.com", consent_marketing="yes")).is_success
    versions = sorted(e.notice_version for e in await consent_of(kith) if e.notice_version)
    assert versions == [1, 3]


async def test_a_rolled_back_notice_is_not_remembered(kith: Kith, form):
    ledger = ConsentService(kith)
    with pytest.raises(RuntimeError):
        async with kith.unit_of_work():
            await ledger.notice_for_text("marketing", "Never committed.")
            raise RuntimeError("the submission failed")
    notice = await ledger.notice_for_text("marketing", "Never committed.")
    assert await Notice.exists().where(Notice.id == notice.id).run()


async def test_two_purposes_of_a_new_contact_share_one_pseudonym(
    kith: Kith, kith_client, kith_auth: TokenFactory
):
    two = {
        **FORM,
        "purposes": [
            {"name": "marketing", "notice": NOTICE},
            {"name": "newsletter", "notice": "The monthly newsletter."},
        ],
    }
    response = await kith_client.post("/api/forms", json=two, headers=await kith_auth("admin"))
    assert response.status_code == 201, response.text
    answer = await post(
        kith, kith_client, "two@example.com", consent_marketing="yes", consent_newsletter="yes"
    )
    assert answer.is_success, answer.text
    [row] = await Contact.select(Contact.id).run()
    assert await ConsentSubject.count().where(ConsentSubject.contact == row["id"]).run() == 1
    events = await ConsentService(kith).history(row["id"])
    assert {e.purpose for e in events} == {"marketing", "newsletter"}
    assert all(e.source_interaction_id is not None for e in events)
    assert events[0].notice_sha256 == hashlib.sha256(NOTICE.encode()).hexdigest()


async def test_a_known_contact_consents_again_under_its_pseudonym(kith: Kith, kith_client, form):
    for _ in range(2):
        response = await post(kith, kith_client, "same@example.com", consent_marketing="yes")
        assert response.is_success
    [row] = await Contact.select(Contact.id).run()
    assert await ConsentSubject.count().where(ConsentSubject.contact == row["id"]).run() == 1
    assert len(await ConsentService(kith).history(row["id"])) == 2


async def test_an_interaction_with_an_external_id_is_not_written_at_commit(kith: Kith):
    with pytest.raises(InvalidInput):
        await InteractionService(kith).log(
            uuid.uuid4(),
            InteractionCreate(kind="note", source="x", external_id="1"),
            at_commit=True,
        )
