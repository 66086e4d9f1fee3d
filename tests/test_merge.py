"""Merging duplicate contacts, and undoing a merge, on SQLite and PostgreSQL.

A merge moves everything a loser holds to the survivor (emails, phones, custom field values,
interactions and tasks, consent history, restrictions, subject requests, the webhooks
plugin's delivery log and the example plugin's welcome rows, through ``kith_subject_merge``),
re-encrypted under the survivor's data key; an undo within the window restores both contacts
exactly (``kith_subject_unmerge``); erasing the survivor leaves nothing of the loser readable,
not even the undo record.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from _privacy_subjects import (
    EMAIL,
    FAMILY,
    GIVEN,
    NOTE,
    found_needles,
    make_person,
    run_request,
    stored_bytes,
)
from _privacy_workflow import cli_env, make_user, run_services
from kith import (
    ContactCreate,
    ContactService,
    EmailIn,
    InteractionCreate,
    InteractionService,
    Kith,
    PhoneIn,
    RowPages,
    hookimpl,
    move_subject_rows,
)
from kith.actor import Role
from kith.errors import Conflict
from kith.privacy.encryption.envelope import decode, key_id_of
from kith.privacy.encryption.errors import KeyOfAnotherSubject
from kith.privacy.encryption.tables import DataKey
from kith.privacy.requests.service import RequestCreate, RequestService
from kith.privacy.rights.consent import ConsentService
from kith.privacy.rights.restriction import RestrictionService
from kith.schemas import FieldCreate
from kith.services.fields import FieldService
from kith.services.merges import MergeService
from kith.settings import SettingsError, load_settings
from kith.tables import (
    Contact,
    ContactPoint,
    CustomFieldValue,
    Interaction,
    Merge,
    MergedContact,
    NameToken,
)
from piccolo.querystring import QueryString

WELCOME = "kith_example_welcome"
LOSER_NOTE = "Prefers the Zanzibar-blue envelope for invoices"


# -- helpers ---------------------------------------------------------------------------------


async def _raw(kith: Kith, sql: str, *args: Any) -> list[dict[str, Any]]:
    return list(await kith.database.engine.run_querystring(QueryString(sql, *args)) or [])


async def _export(kith: Kith, contact_id: uuid.UUID) -> dict[str, Any]:
    """What every part exports about a contact, pages read, audit log left out (every read
    adds to it)."""
    assert kith.plugins is not None
    found: dict[str, Any] = {}
    for result in await kith.plugins.call_async(
        "kith_subject_export", kith=kith, contact_id=contact_id
    ):
        section = result.value
        tables = {}
        for name, rows in section.tables.items():
            if name == "audit_log":
                continue
            if isinstance(rows, RowPages):
                rows = [row async for page in rows.pages() for row in page]
            tables[name] = rows
        found[result.plugin] = tables
    return found


async def _declare_fields(kith: Kith) -> None:
    fields = FieldService(kith)
    await fields.add(FieldCreate(name="industry", type="text"))
    await fields.add(
        FieldCreate(
            name="passport",
            type="text",
            personal=True,
            searchable=True,
            category="identity",
            purpose="customer_relationship",
        )
    )


async def _pair(kith: Kith) -> tuple[uuid.UUID, uuid.UUID]:
    """A survivor and a duplicate of it, each with its own data (custom fields declared)."""
    await _declare_fields(kith)
    contacts = ContactService(kith)
    survivor = await contacts.create(
        ContactCreate(
            name="Ada Lovelace",
            emails=[EmailIn("ada@example.com")],
            phones=[PhoneIn("+44 20 7946 0001")],
            tags=["vip"],
            fields={"industry": "retail"},
        )
    )
    loser = await contacts.create(
        ContactCreate(
            name="A. Lovelace",
            given_name="Augusta Ada",
            family_name="King",
            emails=[
                EmailIn("augusta@work.example", label="work"),
                EmailIn("ada@example.com", primary=False),
            ],
            phones=[PhoneIn("+44 20 7946 0002", label="mobile")],
            tags=["analytical", "vip"],
            fields={"industry": "engines", "passport": "ZX-4471"},
        )
    )
    interactions = InteractionService(kith)
    await interactions.log(loser.id, InteractionCreate(kind="note", summary=NOTE, body="body"))
    await interactions.log(
        loser.id,
        InteractionCreate(
            kind="task",
            summary="Send the engine drawings",
            due_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=2),
        ),
    )
    await interactions.log(survivor.id, InteractionCreate(kind="call", summary="Called Ada"))
    return survivor.id, loser.id


async def _with_privacy_rows(kith: Kith, loser: uuid.UUID) -> uuid.UUID:
    """Consent history, a lifted restriction and a closed request for ``loser``; the request."""
    officer = await make_user(kith)
    await ConsentService(kith).withdraw(loser, "customer_relationship", channel="email")
    restrictions = RestrictionService(kith)
    await restrictions.restrict(loser, "accuracy_contested", officer)
    await restrictions.lift(loser, "Told by phone on Monday", officer)
    _, done = await run_request(kith, "access", loser, officer)
    return done.id


# -- moving and undoing ----------------------------------------------------------------------


async def test_a_merge_moves_everything_and_its_undo_restores_both_exactly(
    kith: Kith, kith_client, kith_auth
) -> None:
    survivor, loser = await _pair(kith)
    request_id = await _with_privacy_rows(kith, loser)
    await kith.bus.drain()  # the example plugin puts both on its welcome list
    # The survivor's own row gone, the loser's row (with a note) moves to it.
    await _raw(kith, f"DELETE FROM {WELCOME} WHERE contact_id = {{}}", survivor)
    agent = await kith_auth("agent")
    noted = await kith_client.put(
        f"/api/example/welcomes/{loser}/note", json={"note": LOSER_NOTE}, headers=agent
    )
    assert noted.status_code == 200, noted.text
    before = {contact: await _export(kith, contact) for contact in (survivor, loser)}

    response = await kith_client.post(
        f"/api/contacts/{survivor}/merge",
        json={"losers": [str(loser)], "choices": {"fields.industry": str(loser)}},
        headers=agent,
    )
    assert response.status_code == 201, response.text
    merge = response.json()
    assert response.headers["location"] == f"/api/merges/{merge['id']}"
    assert (merge["contact_id"], merge["losers"], merge["state"]) == (
        str(survivor),
        [str(loser)],
        "done",
    )
    assert merge["can_undo"] is True

    merged = await ContactService(kith).get(survivor)
    assert merged.name == "Ada Lovelace"
    # Parts the survivor lacked are filled from the loser; tags are united.
    assert (merged.given_name, merged.family_name) == ("Augusta Ada", "King")
    assert merged.tags == ["vip", "analytical"]
    assert [(e.address, e.label, e.primary) for e in merged.emails] == [
        ("ada@example.com", "", True),
        ("augusta@work.example", "work", False),
    ]
    assert [p.number for p in merged.phones] == ["+442079460001", "+442079460002"]
    assert merged.fields == {"industry": "engines", "passport": "ZX-4471"}
    timeline = await InteractionService(kith).timeline(survivor, limit=10)
    assert sorted(i.summary for i in timeline.items) == sorted(
        [NOTE, "Send the engine drawings", "Called Ada"]
    )
    assert [e.action for e in await ConsentService(kith).history(survivor)] == ["withdrawn"]
    assert [r.lift_notice for r in await RestrictionService(kith).history(survivor)] == [
        "Told by phone on Monday"
    ]
    requests = await RequestService(kith).list(include_closed=True, contact_id=survivor)
    assert [r.id for r in requests] == [request_id]
    welcomes = await kith_client.get("/api/example/welcomes", headers=agent)
    assert [(w["contact_id"], w["note"]) for w in welcomes.json()] == [(str(survivor), LOSER_NOTE)]
    # Found by the loser's email, name and searchable field; the loser itself is gone.
    for q in ("augusta@work.example", "Augusta King"):
        found = await ContactService(kith).list(q=q)
        assert [c.id for c in found.items] == [survivor], q
    by_field = await ContactService(kith).list(fields={"passport": "ZX-4471"})
    assert [c.id for c in by_field.items] == [survivor]
    gone = await kith_client.get(f"/api/contacts/{loser}", headers=agent)
    assert gone.status_code == 404
    assert gone.headers["content-type"].startswith("application/problem+json")
    assert gone.json()["merged_into"] == str(survivor)
    assert gone.json()["merge_id"] == merge["id"]

    undone = await kith_client.post(f"/api/merges/{merge['id']}/undo", headers=agent)
    assert undone.status_code == 200, undone.text
    assert (undone.json()["state"], undone.json()["can_undo"]) == ("undone", False)
    after = {contact: await _export(kith, contact) for contact in (survivor, loser)}
    assert after == before
    assert (await Merge.select(Merge.snapshot).first().run())["snapshot"] is None
    again = await kith_client.post(f"/api/merges/{merge['id']}/undo", headers=agent)
    assert again.status_code == 409
    assert "undone already" in again.json()["detail"]


async def test_moved_values_are_sealed_under_the_survivors_key(kith: Kith) -> None:
    survivor, loser = await _pair(kith)
    await MergeService(kith).merge(survivor, [loser])
    [key] = await DataKey.select(DataKey.id).where(DataKey.subject == survivor).run()
    stored = [
        *(row["value"] for row in await ContactPoint.select(ContactPoint.value).run()),
        *(row["summary"] for row in await Interaction.select(Interaction.summary).run()),
        *(
            row["protected"]
            for row in await CustomFieldValue.select(CustomFieldValue.protected).run()
            if row["protected"] is not None
        ),
        (await Merge.select(Merge.snapshot).first().run())["snapshot"],
    ]
    assert len(stored) == 4 + 3 + 1 + 1
    assert {key_id_of(decode(value)) for value in stored} == {key["id"]}
    # Read as the loser's, a moved value is refused: it is not under the loser's key.
    row = await Interaction.select().where(Interaction.summary != "").first().run()
    with pytest.raises(KeyOfAnotherSubject):
        await kith.protector.reveal(
            loser, "kith_interaction", row["id"], {"summary": row["summary"]}
        )
    # The loser's name search tokens went with it; the survivor's name tokens are its own.
    assert not await NameToken.exists().where(NameToken.contact == loser).run()


async def test_an_organizations_people_follow_it_and_go_back(kith: Kith) -> None:
    contacts = ContactService(kith)
    kept = await contacts.create(ContactCreate(kind="organization", name="Analytical Engines"))
    duplicate = await contacts.create(
        ContactCreate(kind="organization", name="Analytical Engines Ltd")
    )
    person = await contacts.create(ContactCreate(name="Ada", organization_id=duplicate.id))
    merge = await MergeService(kith).merge(kept.id, [duplicate.id])
    assert (await contacts.get(person.id)).organization_id == kept.id
    await MergeService(kith).undo(merge.id)
    assert (await contacts.get(person.id)).organization_id == duplicate.id
    assert (await contacts.get(duplicate.id)).name == "Analytical Engines Ltd"


async def test_choices_pick_whose_value_wins(kith: Kith) -> None:
    survivor, loser = await _pair(kith)
    owner = await make_user(kith, Role.AGENT)
    await ContactService(kith).update(loser, msgspec_patch(owner_id=owner.id))
    await MergeService(kith).merge(
        survivor,
        [loser],
        {
            "name": loser,
            "given_name": survivor,
            "primary_email": loser,
            "primary_phone": loser,
            "fields.passport": survivor,
        },
    )
    merged = await ContactService(kith).get(survivor)
    assert merged.name == "A. Lovelace"
    # Chosen: the survivor's (empty) given name; not chosen: filled from the loser.
    assert (merged.given_name, merged.family_name, merged.owner_id) == (None, "King", owner.id)
    assert [e.address for e in merged.emails if e.primary] == ["augusta@work.example"]
    assert [p.number for p in merged.phones if p.primary] == ["+442079460002"]
    assert merged.fields == {"industry": "retail"}


def msgspec_patch(**values: Any) -> Any:
    from kith.schemas import ContactPatch

    return ContactPatch(**values)


# -- erasure after a merge -------------------------------------------------------------------


async def test_erasing_the_survivor_leaves_nothing_of_the_loser(
    kith: Kith, kith_engine: str
) -> None:
    officer = await make_user(kith)
    loser = await make_person(kith)
    survivor = (
        await ContactService(kith).create(ContactCreate(name="Someone Else", tags=["kept"]))
    ).id
    # A copy of the loser's data as stored before the merge: what an old backup holds.
    backup = await Interaction.select().where(Interaction.contact == loser).first().run()
    name = await Contact.select(Contact.display_name).where(Contact.id == loser).first().run()
    merge = await MergeService(kith).merge(survivor, [loser], actor=officer)
    assert found_needles(stored_bytes(kith, kith_engine)) == []  # all of it sealed

    await run_request(kith, "erasure", survivor, officer)

    assert found_needles(stored_bytes(kith, kith_engine)) == []
    assert not await Merge.exists().run()
    assert not await MergedContact.exists().run()
    assert not await DataKey.exists().where(DataKey.subject.is_in([survivor, loser])).run()
    # The old copies no longer open: the loser's key went with the survivor's.
    opened = await kith.protector.reveal(
        loser, "kith_interaction", backup["id"], {"summary": backup["summary"]}
    )
    assert opened == {"summary": "[erased]"}
    named = await kith.protector.reveal(
        loser, "kith_contact", loser, {"display_name": name["display_name"]}
    )
    assert named == {"display_name": "[erased]"}
    with pytest.raises(Exception, match="does not exist"):
        await MergeService(kith).undo(merge.id)
    for value in (GIVEN, FAMILY, EMAIL):
        assert (await ContactService(kith).list(q=value)).items == []


async def test_the_erasure_preview_lists_the_merged_contacts_keys(kith: Kith) -> None:
    from kith.privacy.rights.erasure import ErasureService

    survivor, loser = await _pair(kith)
    await MergeService(kith).merge(survivor, [loser])
    planned = {
        p.location: (p.method, p.count) for p in await ErasureService(kith).preview(survivor)
    }
    assert planned["kith_privacy_data_key (contacts merged into this one)"] == (
        "crypto_shredded",
        1,
    )
    assert planned["kith_merge (merges and what undoing them needed)"] == ("deleted", 1)


# -- the undo window and later changes -------------------------------------------------------


async def test_an_undo_after_the_window_is_refused_and_the_record_closes(
    kith: Kith, kith_client, kith_auth
) -> None:
    survivor, loser = await _pair(kith)
    merge = await MergeService(kith).merge(survivor, [loser])
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await Merge.update({Merge.undo_until: past}).where(Merge.id == merge.id).run()
    agent = await kith_auth("agent")
    refused = await kith_client.post(f"/api/merges/{merge.id}/undo", headers=agent)
    assert refused.status_code == 409
    assert "undo window closed" in refused.json()["detail"]
    assert await MergeService(kith).close_expired() == 1
    row = await Merge.select().where(Merge.id == merge.id).first().run()
    assert (row["state"], row["snapshot"]) == ("closed", None)
    read = await kith_client.get(f"/api/merges/{merge.id}", headers=agent)
    assert (read.json()["state"], read.json()["can_undo"]) == ("closed", False)
    # A closed merge still names where the loser went.
    gone = await kith_client.get(f"/api/contacts/{loser}", headers=agent)
    assert gone.json()["merged_into"] == str(survivor)


def test_the_undo_window_is_a_setting(tmp_path) -> None:
    home = {"KITH_HOME": str(tmp_path)}
    assert load_settings(home).merge_undo_days == 30
    assert load_settings({**home, "KITH_MERGE_UNDO_DAYS": "7"}).merge_undo_days == 7
    for bad in ("-1", "366", "soon"):
        with pytest.raises(SettingsError, match="KITH_MERGE_UNDO_DAYS"):
            load_settings({**home, "KITH_MERGE_UNDO_DAYS": bad})


async def test_an_undo_is_refused_once_the_survivor_changed(kith: Kith) -> None:
    survivor, loser = await _pair(kith)
    merge = await MergeService(kith).merge(survivor, [loser])
    await ContactService(kith).update(survivor, msgspec_patch(tags=["changed"]))
    with pytest.raises(Conflict, match="changed after the merge"):
        await MergeService(kith).undo(merge.id)
    assert not await ContactService(kith).exists(loser)


async def test_chained_merges_undo_in_reverse_order(kith: Kith) -> None:
    contacts = ContactService(kith)
    a, b, c = [(await contacts.create(ContactCreate(name=name))).id for name in ("Ada", "Ad", "A")]
    first = await MergeService(kith).merge(b, [c])
    second = await MergeService(kith).merge(a, [b])
    with pytest.raises(Conflict, match=f"undo merge {second.id} first"):
        await MergeService(kith).undo(first.id)
    await MergeService(kith).undo(second.id)
    await MergeService(kith).undo(first.id)
    assert [(await contacts.get(x)).name for x in (a, b, c)] == ["Ada", "Ad", "A"]


# -- the rules: restriction, legal hold, open requests ---------------------------------------


async def test_a_restricted_contact_is_not_merged(kith: Kith, kith_client, kith_auth) -> None:
    survivor, loser = await _pair(kith)
    await RestrictionService(kith).restrict(loser, "legal_claims", await make_user(kith))
    response = await kith_client.post(
        f"/api/contacts/{survivor}/merge",
        json={"losers": [str(loser)]},
        headers=await kith_auth("agent"),
    )
    assert response.status_code == 409, response.text
    assert "restricted" in response.json()["detail"]
    assert await ContactService(kith).exists(loser)
    assert not await Merge.exists().run()


async def test_an_undo_is_refused_while_the_survivor_is_restricted(kith: Kith) -> None:
    survivor, loser = await _pair(kith)
    merge = await MergeService(kith).merge(survivor, [loser])
    await RestrictionService(kith).restrict(survivor, "accuracy_contested", await make_user(kith))
    with pytest.raises(Conflict, match="restricted"):
        await MergeService(kith).undo(merge.id)
    assert (await MergeService(kith).get(merge.id)).state == "done"


async def test_a_contact_with_an_open_request_is_not_merged(kith: Kith) -> None:
    survivor, loser = await _pair(kith)
    officer = await make_user(kith)
    await RequestService(kith).create(RequestCreate(kind="access", contact_id=loser), officer)
    with pytest.raises(Conflict, match="open access request"):
        await MergeService(kith).merge(survivor, [loser])
    assert await ContactService(kith).exists(loser)


async def test_an_erased_contact_kept_for_a_legal_hold_is_not_merged(kith: Kith) -> None:
    from _privacy_workflow import configure_privacy

    configure_privacy(
        kith,
        legal_holds={"tax": {"kinds": ["order"], "keep": "10 years", "ground": "tax law (orders)"}},
    )
    officer = await make_user(kith)
    shell = await make_person(kith, notes=0, orders=1)
    await run_request(kith, "erasure", shell, officer)
    other = (await ContactService(kith).create(ContactCreate(name="Someone"))).id
    with pytest.raises(Conflict, match="legal hold"):
        await MergeService(kith).merge(other, [shell])


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"losers": []}, 422, None),
        ({"losers": ["not-an-id"]}, 422, None),
        ({"losers": "{loser}", "choices": {}}, 422, None),
        ({"losers": ["{survivor}"]}, 422, "losers[0]"),
        ({"losers": ["{loser}", "{loser}"]}, 422, "losers[1]"),
        ({"losers": ["{missing}"]}, 422, "losers[0]"),
        ({"losers": ["{organization}"]}, 422, "losers[0]"),
        ({"losers": ["{loser}"], "choices": {"shoe_size": "{loser}"}}, 422, "choices.shoe_size"),
        (
            {"losers": ["{loser}"], "choices": {"fields.nope": "{loser}"}},
            422,
            "choices.fields.nope",
        ),
        ({"losers": ["{loser}"], "choices": {"name": "{missing}"}}, 422, "choices.name"),
        ({"losers": ["{loser}"], "choices": {"primary_phone": "{survivor}"}}, 422, None),
        ({"losers": ["{loser}"], "extra": 1}, 422, None),
    ],
)
async def test_bad_input_is_a_problem_and_changes_nothing(
    kith: Kith, kith_client, kith_auth, body: dict[str, Any], status: int, field: str | None
) -> None:
    contacts = ContactService(kith)
    survivor = (await contacts.create(ContactCreate(name="Ada"))).id
    loser = (
        await contacts.create(ContactCreate(name="Ada L", phones=[PhoneIn("+442079460003")]))
    ).id
    organization = (await contacts.create(ContactCreate(kind="organization", name="Org"))).id
    names = {
        "{survivor}": str(survivor),
        "{loser}": str(loser),
        "{missing}": str(uuid.uuid4()),
        "{organization}": str(organization),
    }

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return names.get(value, value)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    response = await kith_client.post(
        f"/api/contacts/{survivor}/merge", json=fill(body), headers=await kith_auth("agent")
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert response.json()["field"] == field
    assert await contacts.exists(loser)
    assert not await Merge.exists().run()


async def test_missing_things_and_roles(kith: Kith, kith_client, kith_auth) -> None:
    agent = await kith_auth("agent")
    missing = uuid.uuid4()
    merged = await kith_client.post(
        f"/api/contacts/{missing}/merge", json={"losers": [str(uuid.uuid4())]}, headers=agent
    )
    assert merged.status_code == 404
    for path in (f"/api/merges/{missing}", f"/api/merges/{missing}/undo"):
        method = kith_client.get if path.endswith(str(missing)) else kith_client.post
        response = await method(path, headers=agent)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
    survivor, loser = await _pair(kith)
    refused = await kith_client.post(
        f"/api/contacts/{survivor}/merge",
        json={"losers": [str(loser)]},
        headers=await kith_auth("compliance"),
    )
    assert refused.status_code == 403
    # A loser that was merged already is named with where it went.
    await MergeService(kith).merge(survivor, [loser])
    other = (await ContactService(kith).create(ContactCreate(name="Other"))).id
    again = await kith_client.post(
        f"/api/contacts/{other}/merge", json={"losers": [str(loser)]}, headers=agent
    )
    assert again.status_code == 422
    assert again.json()["merged_into"] == str(survivor)


# -- the hooks -------------------------------------------------------------------------------


class Notebook:
    """A plugin with rows about contacts of its own: they follow merges and undos."""

    def __init__(self) -> None:
        self.merged: list[tuple[uuid.UUID, list[uuid.UUID], dict[str, uuid.UUID]]] = []
        self.unmerged: list[Any] = []
        self.refuse = False

    @hookimpl
    def kith_subject_merge(
        self,
        kith: Kith,
        merge_id: uuid.UUID,
        survivor: uuid.UUID,
        losers: list[uuid.UUID],
        choices: dict[str, uuid.UUID],
    ) -> Any:
        if self.refuse:
            raise Conflict("the notebook is locked")
        self.merged.append((survivor, losers, choices))
        return {"moved": [str(loser) for loser in losers]}

    @hookimpl
    async def kith_subject_unmerge(
        self,
        kith: Kith,
        merge_id: uuid.UUID,
        survivor: uuid.UUID,
        losers: list[uuid.UUID],
        note: Any,
    ) -> None:
        # The losers exist again by the time a plugin moves rows back to them.
        assert await ContactService(kith).exists(losers[0])
        self.unmerged.append(note)


NOTEBOOK = Notebook()


@pytest.mark.kith_plugins(("notebook", NOTEBOOK))
async def test_plugins_answer_the_merge_hooks_and_get_their_note_back(kith: Kith) -> None:
    NOTEBOOK.merged.clear()
    NOTEBOOK.unmerged.clear()
    survivor, loser = await _pair(kith)
    merge = await MergeService(kith).merge(survivor, [loser], {"name": loser})
    assert NOTEBOOK.merged == [(survivor, [loser], {"name": loser})]
    await MergeService(kith).undo(merge.id)
    assert NOTEBOOK.unmerged == [{"moved": [str(loser)]}]

    # A plugin refusing a merge refuses all of it.
    NOTEBOOK.refuse = True
    try:
        with pytest.raises(Conflict, match="locked"):
            await MergeService(kith).merge(survivor, [loser])
    finally:
        NOTEBOOK.refuse = False
    assert await ContactService(kith).exists(loser)
    assert len((await InteractionService(kith).timeline(loser, limit=10)).items) == 2


async def test_a_plugins_rows_move_re_encrypted_with_move_subject_rows(kith: Kith) -> None:
    """The public helper plugins use: rows change subject, their values re-encrypted."""
    survivor, loser = await _pair(kith)
    async with kith.unit_of_work():
        moved = await move_subject_rows(kith, Interaction, Interaction.contact == loser, survivor)
    assert len(moved) == 2
    rows = await Interaction.select().where(Interaction.id.is_in(moved)).run()
    for row in rows:
        opened = await kith.protector.reveal(
            survivor, "kith_interaction", row["id"], {"summary": row["summary"]}
        )
        assert opened["summary"] in (NOTE, "Send the engine drawings")


async def test_the_example_plugins_rows_come_back_on_undo(
    kith: Kith, kith_client, kith_auth
) -> None:
    """Both on the welcome list: the survivor keeps its row, the loser's comes back."""
    survivor, loser = await _pair(kith)
    await kith.bus.drain()
    agent = await kith_auth("agent")
    await kith_client.put(
        f"/api/example/welcomes/{loser}/note", json={"note": LOSER_NOTE}, headers=agent
    )
    before = await _raw(kith, f"SELECT id, contact_id, event_id FROM {WELCOME} ORDER BY id")
    merge = await MergeService(kith).merge(survivor, [loser])
    listed = (await kith_client.get("/api/example/welcomes", headers=agent)).json()
    assert [w["contact_id"] for w in listed] == [str(survivor)]
    await MergeService(kith).undo(merge.id)
    assert await _raw(kith, f"SELECT id, contact_id, event_id FROM {WELCOME} ORDER BY id") == before
    listed = (await kith_client.get("/api/example/welcomes", headers=agent)).json()
    assert {w["contact_id"]: w["note"] for w in listed}[str(loser)] == LOSER_NOTE


async def test_the_webhook_delivery_log_follows_the_person(kith: Kith) -> None:
    from kith.plugins.webhooks.privacy import open_response, seal_response
    from kith.plugins.webhooks.tables import WebhookDelivery, WebhookSubscription

    survivor, loser = await _pair(kith)
    now = dt.datetime.now(dt.UTC)
    subscription = WebhookSubscription(
        url="https://hooks.example/in", secret="", created_at=now, updated_at=now
    )
    await WebhookSubscription.insert(subscription).run()
    delivery_id = uuid.uuid4()
    await WebhookDelivery.insert(
        WebhookDelivery(
            id=delivery_id,
            subscription=subscription.id,
            event_id=uuid.uuid4(),
            event_name="contact.updated",
            contact_id=loser,
            response_text=await seal_response(kith, loser, delivery_id, "thanks, Augusta"),
            created_at=now,
        )
    ).run()
    merge = await MergeService(kith).merge(survivor, [loser])
    row = await WebhookDelivery.select().where(WebhookDelivery.id == delivery_id).first().run()
    assert row["contact_id"] == survivor
    assert await open_response(kith, survivor, delivery_id, row["response_text"]) == (
        "thanks, Augusta"
    )
    await MergeService(kith).undo(merge.id)
    row = await WebhookDelivery.select().where(WebhookDelivery.id == delivery_id).first().run()
    assert row["contact_id"] == loser
    assert await open_response(kith, loser, delivery_id, row["response_text"]) == (
        "thanks, Augusta"
    )


# -- events, audit, command line -------------------------------------------------------------


async def test_a_merge_is_published_and_audited(kith: Kith) -> None:
    from kith.privacy.rights.audit import AuditLog

    survivor, loser = await _pair(kith)
    merge = await MergeService(kith, "api").merge(survivor, [loser])
    [summary] = await kith.bus.list_events(name="contact.merged")
    assert summary.event.contact_id == survivor
    assert summary.event.payload == {
        "contact_id": str(survivor),
        "merge_id": str(merge.id),
        "losers": [str(loser)],
    }
    log = AuditLog(kith)
    await log.settle()
    actions = [entry.action for entry in await log.entries(survivor)]
    assert "merge" in actions
    assert "merged_into" in [entry.action for entry in await log.entries(loser)]
    await MergeService(kith).undo(merge.id)
    assert len(await kith.bus.list_events(name="contact.unmerged")) == 1


def test_the_command_line_merges_and_unmerges(
    kith_database_url: str, tmp_path: Any, kith_cli: Any
) -> None:
    _, env = cli_env(kith_database_url, tmp_path / "kith-home")

    async def pair(kith: Kith) -> tuple[uuid.UUID, uuid.UUID]:
        return await _pair(kith)

    survivor, loser = run_services(env, pair)

    async def names(kith: Kith) -> list[str | None]:
        contacts = ContactService(kith)
        return [
            (await contacts.get(c)).name if await contacts.exists(c) else None
            for c in (survivor, loser)
        ]

    for args, message in (
        (("--choose", "name"), "FIELD=ID"),
        (("--choose", "name=nobody"), "'nobody' is not a contact id"),
        (("--choose", f"shoe_size={loser}"), "cannot be chosen"),
        (("--choose", f"name={uuid.uuid4()}"), "not one of the contacts being merged"),
    ):
        bad = kith_cli("contacts", "merge", str(survivor), str(loser), *args, env=env)
        assert bad.exit_code == 1, bad.output
        assert message in bad.output
    assert kith_cli("contacts", "merge", str(survivor), env=env).exit_code == 2
    merged = kith_cli(
        "contacts", "merge", str(survivor), str(loser), "--choose", f"name={loser}", env=env
    )
    assert merged.exit_code == 0, merged.output
    assert f"Merged 1 contact into {survivor}" in merged.output
    merge_id = merged.output.split("(merge ")[1].split(")")[0]
    assert f"kith contacts unmerge {merge_id}" in merged.output
    assert run_services(env, names) == ["A. Lovelace", None]
    undone = kith_cli("contacts", "unmerge", merge_id, env=env)
    assert undone.exit_code == 0, undone.output
    assert run_services(env, names) == ["Ada Lovelace", "A. Lovelace"]
    refused = kith_cli("contacts", "unmerge", merge_id, env=env)
    assert refused.exit_code == 1
    assert "undone already" in refused.output


async def test_one_contact_merged_twice_at_once_goes_one_way(kith: Kith) -> None:
    import asyncio

    contacts = ContactService(kith)
    first, second, loser = [
        (await contacts.create(ContactCreate(name=name))).id for name in ("Ada", "Ada L", "A L")
    ]
    results = await asyncio.gather(
        MergeService(kith).merge(first, [loser]),
        MergeService(kith).merge(second, [loser]),
        return_exceptions=True,
    )
    done = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(done) == 1 and len(refused) == 1, results
    assert f"was merged into {done[0].contact_id}" in str(refused[0])
    assert await MergedContact.count().run() == 1


async def test_erasing_a_survivor_reaches_contacts_merged_into_its_losers(kith: Kith) -> None:
    contacts = ContactService(kith)
    a, b, c = [(await contacts.create(ContactCreate(name=name))).id for name in ("Ada", "Ad", "A")]
    await MergeService(kith).merge(b, [c])
    await MergeService(kith).merge(a, [b])
    assert await DataKey.count().where(DataKey.subject.is_in([a, b, c])).run() == 3
    await run_request(kith, "erasure", a, await make_user(kith))
    assert not await DataKey.exists().where(DataKey.subject.is_in([a, b, c])).run()
    assert not await Merge.exists().run()


async def test_an_undo_after_a_re_index_finds_the_losers_by_email_again(kith: Kith) -> None:
    from kith.privacy.encryption import reindex

    survivor, loser = await _pair(kith)
    merge = await MergeService(kith).merge(survivor, [loser])
    await reindex.reindex(kith)  # the blind indexes under a new root key
    await MergeService(kith).undo(merge.id)
    contacts = ContactService(kith)
    assert await contacts.find_ids_by("email", "augusta@work.example") == [loser]
    assert sorted(await contacts.find_ids_by("email", "ada@example.com")) == sorted(
        [survivor, loser]
    )
    by_field = await contacts.list(fields={"passport": "ZX-4471"})
    assert [c.id for c in by_field.items] == [loser]
