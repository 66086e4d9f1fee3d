"""The admin pages for API tokens and custom fields, and custom fields on the contact form:
real requests through the whole app, on both engines."""

from __future__ import annotations

import re
import uuid

from kith.privacy.rights.audit import AuditLog
from kith.runtime import Kith
from kith.schemas import FieldCreate
from kith.services.fields import FieldService
from kith.services.users import UserService
from test_web_sessions import CSRF, add, browser_like, post_form, sign_in

SECRET = re.compile(r'value="(kith_[^"]+)"')


async def test_an_admin_creates_a_token_sees_its_secret_once_and_revokes_it(kith: Kith) -> None:
    admin = await add(kith, "admin")
    agent = await add(kith, "agent")
    agent_id = (await UserService(kith).by_email(agent)).id
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        made = await post_form(
            client,
            "/admin/tokens",
            "/admin/tokens",
            {"user_id": str(agent_id), "name": "Shop sync", "expires_days": "30"},
        )
        assert made.status_code == 201
        assert made.headers["cache-control"] == "no-store"
        found = SECRET.search(made.text)
        assert found, "the new token's secret is shown"
        secret = found.group(1)
        bearer = {"Authorization": f"Bearer {secret}"}
        assert (await client.get("/api/contacts", headers=bearer)).status_code == 200

        listed = await client.get("/admin/tokens")
        assert listed.status_code == 200
        assert secret not in listed.text
        assert "Shop sync" in listed.text and agent in listed.text and secret[:11] in listed.text
        token = (await UserService(kith).list_tokens(agent))[0]
        assert token.last_used_at is not None
        row = listed.text.split("Shop sync")[1].split("</tr>")[0]
        # Last used is shown; only the admin's own session token never was.
        assert "never" not in row.split("<td>")[5]

        revoked = await post_form(client, "/admin/tokens", f"/admin/tokens/{token.id}/revoke", {})
        assert revoked.status_code == 303
        assert (await client.get("/api/contacts", headers=bearer)).status_code == 401
        assert "revoked" in (await client.get("/admin/tokens")).text
        assert (await UserService(kith).get_token(token.id)).revoked_at is not None


async def test_token_problems_are_shown_in_the_page(kith: Kith) -> None:
    admin = await add(kith, "admin")
    admin_id = (await UserService(kith).by_email(admin)).id
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        for fields in (
            {"user_id": str(admin_id), "name": "x", "expires_days": "soon"},
            {"user_id": str(admin_id), "name": "x", "expires_days": "0"},
            {"user_id": "nobody", "name": "x", "expires_days": "30"},
            {"user_id": str(uuid.uuid4()), "name": "x", "expires_days": "30"},
        ):
            refused = await post_form(client, "/admin/tokens", "/admin/tokens", fields)
            assert refused.status_code == 422, fields
            assert 'role="alert"' in refused.text
        missing = await post_form(
            client, "/admin/tokens", f"/admin/tokens/{uuid.uuid4()}/revoke", {}
        )
        assert missing.status_code == 404
        client.cookies.set("kith_lang", "ru", domain="kith.test")
        russian = await client.get("/admin/tokens")
        assert "Создать токен" in russian.text and "API-токенов пока нет." in russian.text
    assert await UserService(kith).list_tokens() == []


async def test_only_admins_open_the_admin_pages(kith: Kith) -> None:
    agent = await add(kith, "agent")
    async with browser_like(kith) as client:
        await sign_in(client, agent)
        home = await client.get("/my-day")
        assert "/admin/tokens" not in home.text and "/admin/fields" not in home.text
        for page in ("/admin/tokens", "/admin/fields", "/admin/fields/x/edit"):
            assert (await client.get(page)).status_code == 403
        token = CSRF.search(home.text)
        assert token
        sneaked = await client.post(
            "/admin/fields",
            data={"_csrf_token": token.group(1), "name": "vip", "type": "text"},
        )
        assert sneaked.status_code == 403
    assert await FieldService(kith).declared() == []


async def test_an_admin_declares_changes_and_archives_custom_fields(kith: Kith) -> None:
    admin = await add(kith, "admin")
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        added = await post_form(
            client,
            "/admin/fields",
            "/admin/fields",
            {
                "name": "plan",
                "type": "choice",
                "label": "Plan",
                "choices": "Basic\nPro, yearly",
                "default": "Basic",
                "required": "on",
                "searchable": "on",
            },
        )
        assert added.status_code == 303
        money = await post_form(
            client,
            "/admin/fields",
            "/admin/fields",
            {"name": "budget", "type": "decimal", "currency": "eur", "personal": "on"},
        )
        assert money.status_code == 303
        plan = await FieldService(kith).get("plan")
        assert (plan.choices, plan.default, plan.required, plan.searchable) == (
            ["Basic", "Pro, yearly"],
            "Basic",
            True,
            True,
        )
        budget = await FieldService(kith).get("budget")
        assert (budget.currency, budget.personal, budget.category) == ("EUR", True, "custom")

        for bad in (
            {"name": "Bad Name", "type": "text"},
            {"name": "plan", "type": "text"},
            {"name": "cost", "type": "decimal"},
            {"name": "size", "type": "choice"},
        ):
            refused = await post_form(client, "/admin/fields", "/admin/fields", bad)
            assert refused.status_code == 422, bad
            assert 'role="alert"' in refused.text
            assert f'value="{bad["name"]}"' in refused.text, "the form keeps what was typed"

        form = await client.get("/admin/fields/plan/edit")
        assert form.status_code == 200 and "Pro, yearly</textarea>" in form.text
        changed = await post_form(
            client,
            "/admin/fields/plan/edit",
            "/admin/fields/plan/edit",
            {"type": "choice", "label": "Tariff", "choices": "Basic\nPro, yearly\nTeam"},
        )
        assert changed.status_code == 303
        plan = await FieldService(kith).get("plan")
        assert (plan.label, plan.choices, plan.default, plan.required) == (
            "Tariff",
            ["Basic", "Pro, yearly", "Team"],
            None,
            False,
        )
        wrong = await post_form(
            client, "/admin/fields/plan/edit", "/admin/fields/plan/edit", {"type": "choice"}
        )
        assert wrong.status_code == 422 and 'role="alert"' in wrong.text
        assert (await client.get("/admin/fields/none_such/edit")).status_code == 404

        archived = await post_form(client, "/admin/fields", "/admin/fields/plan/archive", {})
        assert archived.status_code == 303
        assert (await FieldService(kith).get("plan")).archived
        listed = await client.get("/admin/fields")
        assert "archived" in listed.text and "Tariff" in listed.text


async def test_the_contact_form_edits_custom_fields_and_the_card_shows_them(kith: Kith) -> None:
    admin = await add(kith, "admin")
    fields = FieldService(kith)
    await fields.add(FieldCreate(name="plan", type="choice", choices=["Basic", "Pro"]))
    await fields.add(FieldCreate(name="topics", type="multi_choice", choices=["Tax", "Audit"]))
    await fields.add(FieldCreate(name="vip", type="boolean", label="VIP"))
    await fields.add(FieldCreate(name="seats", type="number"))
    await fields.add(FieldCreate(name="met_at", type="datetime"))
    await fields.add(FieldCreate(name="nickname", type="text", personal=True))
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        blank = await client.get("/contacts/new")
        assert 'name="field.plan"' in blank.text and 'name="field.topics"' in blank.text
        token = CSRF.search(blank.text)
        assert token
        form = {
            "_csrf_token": token.group(1),
            "kind": "person",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "field.plan": "Pro",
            "field.topics": ["Tax", "Audit"],
            "field.vip": "true",
            "field.seats": "many",
            "field.met_at": "2026-12-01T09:30",
            "field.nickname": "Countess",
        }
        refused = await client.post("/contacts/new", data=form)
        assert refused.status_code == 422 and "seats" in refused.text
        assert 'value="Countess"' in refused.text, "the form keeps what was typed"
        made = await client.post("/contacts/new", data={**form, "field.seats": "12"})
        assert made.status_code == 303
        card = await client.get(made.headers["location"])
        assert "Audit, Tax" in card.text or "Tax, Audit" in card.text
        assert "VIP" in card.text and "Countess" in card.text
        contact_id = uuid.UUID(made.headers["location"].rsplit("/", 1)[1])

        edit = await client.get(f"/contacts/{contact_id}/edit")
        assert 'value="Countess"' in edit.text and 'value="12"' in edit.text
        assert 'value="Pro" selected' in edit.text
        assert 'value="2026-12-01T09:30"' in edit.text
        token = CSRF.search(edit.text)
        assert token
        saved = await client.post(
            f"/contacts/{contact_id}/edit",
            data={
                "_csrf_token": token.group(1),
                "given_name": "Ada",
                "family_name": "Lovelace",
                "field.plan": "Basic",
                "field.topics": ["Audit"],
                "field.vip": "false",
                "field.seats": "12",
                "field.met_at": "",
                "field.nickname": "",
            },
        )
        assert saved.status_code == 303
    stored = (await fields.values_of([contact_id]))[contact_id]
    assert stored == {"plan": "Basic", "topics": ["Audit"], "vip": False, "seats": 12}
    actions = {(entry.action, entry.channel) for entry in await AuditLog(kith).entries(contact_id)}
    # The edit form shows the personal values it holds: a read, on record as the web's.
    assert ("read", "web") in actions


async def test_role_and_field_type_names_are_translated_in_the_admin_pages(kith: Kith) -> None:
    admin = await add(kith, "admin")
    await FieldService(kith).add(FieldCreate(name="budget", type="decimal", currency="EUR"))
    async with browser_like(kith) as client:
        await sign_in(client, admin)
        client.cookies.set("kith_lang", "ru", domain="kith.test")
        assert "<td>администратор</td>" in (await client.get("/admin/users")).text
        assert "деньги" in (await client.get("/admin/fields")).text
