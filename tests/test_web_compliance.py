"""The compliance pages of the web UI: data subject requests walked through verify, preview,
four-eyes approval and run, their certificate and access package downloaded, a person's audit
log and suppression status, retention's dry run and the record of processing. Real requests
through the whole app (and one flow in a real Chromium), on both engines."""

from __future__ import annotations

import io
import re
import uuid
import zipfile

import httpx
import msgspec
from _privacy_subjects import stored_bytes
from _privacy_workflow import configure_privacy, make_contact
from _web_server import PASSWORD, add_user, serving, shoot
from _web_server import sign_in as sign_in_browser
from kith import ContactCreate, ContactPatch, ContactService, FieldCreate, FieldService
from kith.privacy.requests.certificates import load_public_key, verify
from kith.privacy.requests.service import RequestService
from kith.privacy.rights.rectification import RectificationService
from kith.privacy.rights.tables import AuditEntry
from kith.runtime import Kith
from kith.services.users import UserService
from playwright.async_api import Browser, expect
from test_web_sessions import CSRF, add, browser_like, post_form, sign_in

REQUESTS = "/compliance/requests"
REQUEST_PAGE = re.compile(r"^/compliance/requests/([0-9a-f-]{36})$")


async def _record(client: httpx.AsyncClient, **fields: str) -> str:
    """Record a request through the list page's form; its page's path."""
    made = await post_form(client, REQUESTS, REQUESTS, fields)
    assert made.status_code == 303, made.text
    location = made.headers["location"]
    assert REQUEST_PAGE.match(location)
    return location


async def _step(client: httpx.AsyncClient, page: str, step: str, **fields: str) -> httpx.Response:
    return await post_form(client, page, f"{page}/{step}", fields)


async def _through(client: httpx.AsyncClient, page: str, last: str = "run") -> None:
    """Verify (by an id card), preview, approve and run the request on its page, up to
    ``last``; each step must be taken."""
    steps = (("verify", {"method": "id card"}), ("preview", {}), ("approve", {}), ("run", {}))
    for step, fields in steps:
        moved = await _step(client, page, step, **fields)
        assert moved.status_code == 303, (step, moved.text)
        if step == last:
            return


async def _certificate_is_valid(client: httpx.AsyncClient, page: str) -> dict:
    download = await client.get(f"{page}/certificate")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    # The public key anyone may fetch, as an auditor would.
    key = load_public_key((await client.get("/api/privacy/public-key")).content)
    result = verify(download.content, key)
    assert result.valid, result.reason
    assert result.request_id == page.rsplit("/", 1)[1]
    return download.json()


async def test_an_erasure_through_the_pages_needs_a_second_officer(kith: Kith) -> None:
    configure_privacy(kith, four_eyes=True)
    contact = await make_contact(kith, "Ada Lovelace", email="ada@example.com")
    first = await add(kith, "compliance")
    second = await add(kith, "compliance")
    async with browser_like(kith) as officer, browser_like(kith) as colleague:
        await sign_in(officer, first)
        await sign_in(colleague, second)
        page = await _record(officer, kind="erasure", email="ADA@example.com", note="by letter")
        listed = await officer.get(REQUESTS)
        assert f'href="{page}"' in listed.text and "days left" in listed.text

        assert (
            await _step(officer, page, "verify", method="replied from the address")
        ).status_code == 303
        assert (await _step(officer, page, "preview")).status_code == 303
        previewed = await officer.get(page)
        assert 'id="preview"' in previewed.text and "crypto_shredded" in previewed.text

        # The officer who previewed it may not approve it; the service says why.
        own = await _step(officer, page, "approve")
        assert own.status_code == 403
        assert "must be a different compliance user" in own.text
        assert (await _step(colleague, page, "approve")).status_code == 303
        assert (await _step(colleague, page, "run")).status_code == 303

        done = await officer.get(page)
        assert '<dd id="state">done</dd>' in done.text
        # The history names who did each step.
        history = done.text[done.text.index('id="history"') :]
        assert first in history and second in history
        certificate = await _certificate_is_valid(officer, page)
        assert certificate["certificate"]["request"]["type"] == "erasure"
        # No access package for an erasure.
        assert (await officer.get(f"{page}/package")).status_code == 404

        # The person is gone, but their address is on the suppression list and their audit
        # log is still there.
        found = await officer.get("/compliance/subjects", params={"q": "ada@example.com"})
        assert found.status_code == 200
        assert "the person asked to be erased" in found.text
        assert "No contact holds this email or phone." in found.text
        audit = await officer.get(f"/compliance/contacts/{contact}")
        assert audit.status_code == 200
        assert "A contact no longer held" in audit.text
        assert 'id="audit"' in audit.text and "erase" in audit.text


async def test_an_access_request_gives_its_package_and_shows_in_the_audit_log(
    kith: Kith,
) -> None:
    contact = await make_contact(kith, "Grace Hopper", email="grace@example.com")
    email = await add(kith, "compliance")
    async with browser_like(kith) as officer:
        await sign_in(officer, email)
        page = await _record(officer, kind="access", contact_id=str(contact))
        await _through(officer, page)
        shown = await officer.get(page)
        assert f'href="{page}/package"' in shown.text
        package = await officer.get(f"{page}/package")
        assert package.status_code == 200
        assert package.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
            assert "kith.json" in archive.namelist()
        await _certificate_is_valid(officer, page)

        # Finding her by phone-less email leads to her audit page, which shows the hand-out.
        found = await officer.get("/compliance/subjects", params={"q": "grace@example.com"})
        assert f'href="/compliance/contacts/{contact}"' in found.text
        assert "not on the suppression list" in found.text
        audit = await officer.get(f"/compliance/contacts/{contact}")
        assert "Grace Hopper" in audit.text
        row = next(line for line in audit.text.split("<tr>") if "export_handed_out" in line)
        assert "web" in row and email in row


async def test_a_mistake_in_a_form_is_a_clear_4xx(kith: Kith) -> None:
    email = await add(kith, "compliance")
    async with browser_like(kith) as officer:
        await sign_in(officer, email)
        nobody = await post_form(officer, REQUESTS, REQUESTS, {"kind": "access"})
        assert nobody.status_code == 422 and "exactly one of" in nobody.text
        bad_date = await post_form(
            officer,
            REQUESTS,
            REQUESTS,
            {"kind": "access", "email": "a@b.example", "received_on": "soon"},
        )
        assert bad_date.status_code == 422 and "YYYY-MM-DD" in bad_date.text
        page = await _record(officer, kind="access", email="nobody@example.com")
        early = await _step(officer, page, "approve")
        assert early.status_code == 409 and "verify the person" in early.text
        assert (await _step(officer, page, "jump")).status_code == 404
        bad_address = await officer.get("/compliance/subjects", params={"q": "not a phone"})
        assert bad_address.status_code == 422


async def test_a_rectification_is_set_on_its_page_and_corrects_the_contact(kith: Kith) -> None:
    contact = await make_contact(kith, "Ada Lovelace", email="ada@example.com")
    email = await add(kith, "compliance")
    async with browser_like(kith) as officer:
        await sign_in(officer, email)
        page = await _record(officer, kind="rectification", contact_id=str(contact))
        shown = await officer.get(page)
        assert 'id="correct"' in shown.text and "No corrections set yet." in shown.text
        saved = await _step(
            officer,
            page,
            "correct",
            given_name="Ada",
            family_name="King",
            emails="ada.king@example.com\nada@example.com",
        )
        assert saved.status_code == 303, saved.text

        # What was typed shows on the page, and fills the form to change it.
        shown = await officer.get(page)
        corrections = shown.text[shown.text.index('<dl class="details" id="corrections">') :]
        corrections = corrections[: corrections.index("</dl>")]
        assert "King" in corrections and "ada.king@example.com" in corrections
        assert 'id="correct-family_name" name="family_name" maxlength="200" value="King"' in (
            shown.text
        )
        # Showing them is a read of her data, in her audit log.
        request_id = uuid.UUID(page.rsplit("/", 1)[1])
        reads = await AuditEntry.select(AuditEntry.channel).where(
            (AuditEntry.request_id == request_id) & (AuditEntry.action == "read")
        )
        assert reads and {r["channel"] for r in reads} == {"web"}

        await _through(officer, page)
        done = await officer.get(page)
        assert '<dd id="state">done</dd>' in done.text
        assert "fields: emails, family_name, given_name" in done.text
        # Nothing more to set once it ran; what it set is still shown.
        assert 'id="correct"' not in done.text and "ada.king@example.com" in done.text

    corrected = await ContactService(kith).get(contact)
    assert (corrected.given_name, corrected.family_name) == ("Ada", "King")
    assert [e.address for e in corrected.emails] == ["ada.king@example.com", "ada@example.com"]
    assert corrected.emails[0].primary


async def test_a_bad_correction_is_shown_again_and_stores_nothing(kith: Kith) -> None:
    contact = await make_contact(kith, "Ada Lovelace", email="ada@example.com")
    email = await add(kith, "compliance")
    async with browser_like(kith) as officer:
        await sign_in(officer, email)
        page = await _record(officer, kind="rectification", contact_id=str(contact))
        request_id = uuid.UUID(page.rsplit("/", 1)[1])
        bad = await _step(officer, page, "correct", family_name="King", emails="not an email")
        assert bad.status_code == 422
        assert "is not a valid email address" in bad.text and 'id="form-error"' in bad.text
        # What was typed is kept.
        assert 'name="family_name" maxlength="200" value="King"' in bad.text
        assert ">not an email</textarea>" in bad.text
        assert await RectificationService(kith).patch_of(request_id) is None
        assert "No corrections set yet." in (await officer.get(page)).text

        nothing = await _step(officer, page, "correct", name="")
        assert nothing.status_code == 422 and "say what to correct" in nothing.text

        # Once approved, the service refuses new corrections; the page says so and keeps them.
        assert (await _step(officer, page, "correct", family_name="King")).status_code == 303
        await _through(officer, page, last="approve")
        late = await _step(officer, page, "correct", family_name="Byron")
        assert late.status_code == 409
        assert "corrections are set before approval" in late.text
        assert 'value="Byron"' in late.text
        kept = await RectificationService(kith).patch_of(request_id)
        assert kept is not None and kept.family_name == "King"


async def test_saving_on_the_page_keeps_corrections_set_elsewhere(kith: Kith) -> None:
    await FieldService(kith).add(FieldCreate(name="plan", type="choice", choices=["Basic", "Pro"]))
    contact = await make_contact(kith, "Ada Lovelace", email="ada@example.com")
    email = await add(kith, "compliance")
    async with browser_like(kith) as officer:
        await sign_in(officer, email)
        page = await _record(officer, kind="rectification", contact_id=str(contact))
        request_id = uuid.UUID(page.rsplit("/", 1)[1])
        # As the API or the command line sets them.
        await RequestService(kith).set_corrections(
            request_id,
            ContactPatch(family_name="Byron", tags=["married"], fields={"plan": "Pro"}),
        )
        shown = await officer.get(page)
        assert "Also set, through the API" in shown.text and "tags" in shown.text
        # A custom field the page shows is not among them: its input holds the correction.
        others = shown.text[shown.text.index("Also set, through the API") :]
        assert "fields" not in others[: others.index("</dd>")]
        assert '<option value="Pro" selected>' in shown.text
        assert (await _step(officer, page, "correct", family_name="King")).status_code == 303
    saved = await RectificationService(kith).patch_of(request_id)
    assert saved is not None
    assert (saved.family_name, saved.tags) == ("King", ["married"])
    # The page showed the plan's correction, and it was left empty: no longer corrected.
    assert saved.fields is msgspec.UNSET


PASSPORT = "X1234567"
CORRECTED_PASSPORT = "K7654321"


async def _with_passport(kith: Kith) -> uuid.UUID:
    """A contact holding a declared personal field (and a plain one of choices)."""
    fields = FieldService(kith)
    await fields.add(
        FieldCreate(name="passport", type="text", label="Passport number", personal=True)
    )
    await fields.add(FieldCreate(name="plan", type="choice", choices=["Basic", "Pro"]))
    await fields.add(FieldCreate(name="seats", type="number", required=True, default=1))
    contact = await ContactService(kith).create(
        ContactCreate(name="Ada Lovelace", fields={"passport": PASSPORT, "plan": "Basic"})
    )
    return contact.id


async def test_a_personal_custom_field_is_corrected_on_the_page_by_two_officers(
    kith: Kith, kith_engine: str
) -> None:
    configure_privacy(kith, four_eyes=True)
    contact = await _with_passport(kith)
    first = await add(kith, "compliance")
    second = await add(kith, "compliance")
    async with browser_like(kith) as officer, browser_like(kith) as colleague:
        await sign_in(officer, first)
        await sign_in(colleague, second)
        page = await _record(officer, kind="rectification", contact_id=str(contact))
        shown = await officer.get(page)
        # One input a declared field, empty: the contact's current values are not shown.
        assert 'id="correct-field-passport" name="field.passport" value=""' in shown.text
        assert 'name="field.plan"' in shown.text and 'name="field.seats"' in shown.text
        assert "Passport number" in shown.text and PASSPORT not in shown.text
        # Empty is "as it is": a required field is not marked as one to fill in.
        assert "Passport number *" not in shown.text and "seats *" not in shown.text
        assert "a field left empty" in shown.text

        assert (await _step(officer, page, "verify", method="id card")).status_code == 303
        saved = await _step(
            officer, page, "correct", **{"field.passport": CORRECTED_PASSPORT, "field.plan": ""}
        )
        assert saved.status_code == 303, saved.text
        request_id = uuid.UUID(page.rsplit("/", 1)[1])
        stored = await RectificationService(kith).patch_of(request_id)
        assert stored is not None and stored.fields == {"passport": CORRECTED_PASSPORT}

        # The summary names the field by its label; the form is filled from the corrections.
        shown = await officer.get(page)
        corrections = shown.text[shown.text.index('<dl class="details" id="corrections">') :]
        corrections = corrections[: corrections.index("</dl>")]
        assert "<dt>Passport number</dt>" in corrections and CORRECTED_PASSPORT in corrections
        assert "Also set, through the API" not in corrections
        assert f'name="field.passport" value="{CORRECTED_PASSPORT}"' in shown.text

        assert (await _step(officer, page, "preview")).status_code == 303
        assert (await _step(officer, page, "approve")).status_code == 403
        assert (await _step(colleague, page, "approve")).status_code == 303
        assert (await _step(colleague, page, "run")).status_code == 303
        done = await officer.get(page)
        assert '<dd id="state">done</dd>' in done.text and "fields: fields.passport" in done.text

    corrected = await ContactService(kith).get(contact)
    assert corrected.fields == {"passport": CORRECTED_PASSPORT, "plan": "Basic", "seats": 1}
    # A personal field's value, and the corrections that carried it, are stored encrypted.
    stored_now = stored_bytes(kith, kith_engine)
    assert CORRECTED_PASSPORT.encode() not in stored_now and PASSPORT.encode() not in stored_now


async def test_a_bad_custom_field_correction_is_refused_naming_the_field(kith: Kith) -> None:
    contact = await _with_passport(kith)
    email = await add(kith, "compliance")
    async with browser_like(kith) as officer:
        await sign_in(officer, email)
        page = await _record(officer, kind="rectification", contact_id=str(contact))
        request_id = uuid.UUID(page.rsplit("/", 1)[1])
        for field, value, named in (
            ("field.seats", "many", "fields.seats: &#39;many&#39; is not a number"),
            ("field.plan", "Gold", "fields.plan: "),
        ):
            typed = {"family_name": "King", "field.passport": CORRECTED_PASSPORT, field: value}
            bad = await _step(officer, page, "correct", **typed)
            assert bad.status_code == 422, bad.text
            assert named in bad.text and 'id="form-error"' in bad.text
            # The corrections as typed are shown again.
            assert f'name="field.passport" value="{CORRECTED_PASSPORT}"' in bad.text
            assert 'name="family_name" maxlength="200" value="King"' in bad.text
            assert await RectificationService(kith).patch_of(request_id) is None
        again = await _step(officer, page, "correct", **{"field.seats": "many"})
        assert again.status_code == 422 and 'name="field.seats" value="many"' in again.text
        assert "No corrections set yet." in (await officer.get(page)).text


async def test_agents_may_not_see_or_set_corrections(kith: Kith) -> None:
    contact = await make_contact(kith, "Ada Lovelace", email="ada@example.com")
    officer = await add(kith, "compliance")
    agent = await add(kith, "agent")
    async with browser_like(kith) as compliance, browser_like(kith) as client:
        await sign_in(compliance, officer)
        await sign_in(client, agent)
        page = await _record(compliance, kind="rectification", contact_id=str(contact))
        request_id = uuid.UUID(page.rsplit("/", 1)[1])
        assert (await client.get(page)).status_code == 403
        token = CSRF.search((await client.get("/my-day")).text)
        assert token
        refused = await client.post(
            f"{page}/correct", data={"_csrf_token": token.group(1), "family_name": "Byron"}
        )
        assert refused.status_code == 403
        assert await RectificationService(kith).patch_of(request_id) is None
        # The same form from a compliance officer is taken.
        taken = await _step(compliance, page, "correct", family_name="King")
        assert taken.status_code == 303
        saved = await RectificationService(kith).patch_of(request_id)
        assert saved is not None and saved.family_name == "King"


async def _compliance_pages(kith: Kith) -> list[str]:
    """Every compliance page, for an access request recorded by an officer."""
    contact = await make_contact(kith, "Ada Lovelace", email="ada@example.com")
    officer = await add(kith, "compliance")
    async with browser_like(kith) as client:
        await sign_in(client, officer)
        page = await _record(client, kind="access", contact_id=str(contact))
    return [
        "/compliance",
        REQUESTS,
        page,
        "/compliance/subjects?q=ada@example.com",
        f"/compliance/contacts/{contact}",
        "/compliance/retention",
        "/compliance/ropa",
        "/compliance/ropa.md",
        "/compliance/ropa.json",
    ]


async def test_agents_may_not_open_the_compliance_pages(kith: Kith) -> None:
    pages = await _compliance_pages(kith)
    agent = await add(kith, "agent")
    async with browser_like(kith) as client:
        await sign_in(client, agent)
        for path in [*pages, f"{pages[2]}/certificate", f"{pages[2]}/package"]:
            assert (await client.get(path)).status_code == 403, path
        token = CSRF.search((await client.get("/my-day")).text)
        assert token
        refused = await client.post(
            f"{pages[2]}/verify", data={"_csrf_token": token.group(1), "method": "id"}
        )
        assert refused.status_code == 403
        assert 'href="/compliance' not in (await client.get("/my-day")).text


async def test_admins_open_the_compliance_pages_listed_on_the_start_page(kith: Kith) -> None:
    pages = await _compliance_pages(kith)
    admin = await add(kith, "admin")
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        for path in pages:
            assert (await client.get(path)).status_code == 200, path
        landing = await client.get("/compliance")
        # The plugins' pages are listed on the start page, not in the bar.
        for path in (REQUESTS, "/compliance/subjects", "/compliance/retention", "/compliance/ropa"):
            assert f'<li><a href="{path}">' in landing.text
        bar = landing.text[landing.text.index("<nav") : landing.text.index("</nav>")]
        assert REQUESTS not in bar and 'href="/compliance"' in bar
        retention = await client.get("/compliance/retention")
        assert 'id="holds"' in retention.text
        ropa = await client.get("/compliance/ropa")
        assert "Art. 30" in ropa.text and 'id="fields"' in ropa.text
        markdown = await client.get("/compliance/ropa.md")
        assert markdown.text.startswith("# Record of processing activities")
        assert (await client.get("/compliance/ropa.json")).json()["plugins"]


async def test_the_compliance_pages_in_russian(kith: Kith) -> None:
    configure_privacy(kith, retention={"inactive_contacts": "24 months"})
    contact = await make_contact(kith, "Ada Lovelace", email="ada@example.com")
    officer = await add(kith, "compliance")
    async with browser_like(kith) as client:
        await sign_in(client, officer)
        page = await _record(client, kind="erasure", contact_id=str(contact))
        client.cookies.set("kith_lang", "ru", domain="kith.test")
        listed = await client.get(REQUESTS)
        assert "Запросы субъектов данных" in listed.text
        assert "удаление" in listed.text
        shown = await client.get(page)
        assert "Записать проверку личности" in shown.text
        landing = await client.get("/compliance")
        assert "Найти человека" in landing.text
        assert (await client.get("/compliance/retention")).status_code == 200


async def test_an_erasure_walked_by_two_officers_in_a_browser(
    kith: Kith, browser: Browser, kith_engine: str
) -> None:
    configure_privacy(kith, four_eyes=True)
    await make_contact(kith, "Ada Lovelace", email="ada@example.com")
    first = await add_user(kith, "compliance")
    second = "second@staff.example"
    await UserService(kith).add(second, "compliance", "Second", PASSWORD)
    async with serving(kith) as base:
        context = await browser.new_context(viewport={"width": 360, "height": 740})
        page = await context.new_page()
        await sign_in_browser(page, base, first)
        await page.goto(base + "/compliance")
        await page.get_by_role("link", name="Data subject requests").click()
        await page.select_option("#kind", "erasure")
        await page.fill("#email", "ada@example.com")
        await page.get_by_role("button", name="Record the request").click()
        await expect(page.locator("#state")).to_have_text("received")
        request_url = page.url
        await page.fill("#method", "called back on the number on file")
        await page.get_by_role("button", name="Record the identity check").click()
        await page.get_by_role("button", name="Preview what it will touch").click()
        await expect(page.locator("#preview")).to_contain_text("crypto_shredded")
        await page.get_by_role("button", name="Approve").click()
        await expect(page.locator("#form-error")).to_contain_text("different compliance user")

        desk = await browser.new_context(viewport={"width": 1024, "height": 720})
        other = await desk.new_page()
        await sign_in_browser(other, base, second)
        await other.goto(request_url)
        await other.get_by_role("button", name="Approve").click()
        await expect(other.locator("#state")).to_have_text("approved")
        await other.get_by_role("button", name="Run it").click()
        await expect(other.locator("#state")).to_have_text("done")
        await shoot(other, "compliance-request", kith_engine)
        async with other.expect_download() as waiting:
            await other.get_by_role("link", name="The signed certificate (JSON)").click()
        download = await waiting.value
        saved = await download.path()
        served = await other.request.get(base + "/api/privacy/public-key")
        key = load_public_key(await served.body())
        assert verify(saved.read_bytes(), key).valid
        assert uuid.UUID(request_url.rsplit("/", 1)[1])
