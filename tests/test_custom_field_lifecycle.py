"""Custom fields beyond declaring them: purging an archived field, fields declared in kith.toml
and by plugins (``kith_register_custom_fields``) added by ``kith migrate``, and per-field
retention of personal values."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _privacy_workflow import cli_env, configure_privacy, run_services
from click.testing import Result
from kith import (
    ContactCreate,
    ContactPatch,
    ContactService,
    FieldCreate,
    FieldService,
    InvalidInput,
    Kith,
    hookimpl,
)
from kith.plugin_manager import KithPluginManager, PluginError
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.retention import RetentionRunner
from kith.privacy.rights.ropa import build_record, custom_fields
from kith.tables import CustomField, CustomFieldValue
from kith.testing import KithCli, TokenFactory

Json = dict[str, Any]


# -- purging -----------------------------------------------------------------------------------


async def _with_values(kith: Kith) -> uuid.UUID:
    fields = FieldService(kith)
    await fields.add(FieldCreate(name="passport", type="text", personal=True))
    await fields.add(FieldCreate(name="industry", type="text"))
    contact = await ContactService(kith).create(
        ContactCreate(name="Ada", fields={"passport": "X-1234-Q", "industry": "retail"})
    )
    return contact.id


async def test_an_archived_field_is_purged_with_its_values_over_the_api(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    ada = await _with_values(kith)
    admin, agent = await kith_auth("admin"), await kith_auth("agent")
    in_use = await kith_client.post("/api/fields/passport/purge", headers=admin)
    assert in_use.status_code == 409, in_use.text
    assert in_use.json()["field"] == "name" and "archive it first" in in_use.json()["detail"]
    assert await CustomFieldValue.count() == 2

    await kith_client.delete("/api/fields/passport", headers=admin)
    forbidden = await kith_client.post("/api/fields/passport/purge", headers=agent)
    assert forbidden.status_code == 403
    purged = await kith_client.post("/api/fields/passport/purge", headers=admin)
    assert purged.status_code == 200, purged.text
    assert purged.json() == {"field": "passport", "values_deleted": 1}
    # The values and the field are gone; the other field's values stay; the name is free.
    rows = await CustomFieldValue.select(CustomFieldValue.value)
    assert [row["value"] for row in rows] == ["retail"]
    assert (await kith_client.get("/api/fields/passport", headers=agent)).status_code == 404
    missing = await kith_client.post("/api/fields/passport/purge", headers=admin)
    assert missing.status_code == 404
    again = await kith_client.post(
        "/api/fields", json={"name": "passport", "type": "date"}, headers=admin
    )
    assert again.status_code == 201, again.text
    # Deleting a person's personal values is on their audit trail.
    actions = {(e.action, e.channel) for e in await AuditLog(kith).entries(ada)}
    assert ("field.purge", "api") in actions


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def test_kith_fields_purge_asks_first(
    kith_database_url: str, kith_cli: KithCli, tmp_path: Path
) -> None:
    _, env = cli_env(kith_database_url, tmp_path / "kith-home")
    run_services(env, _with_values)
    refused = kith_cli("fields", "purge", "industry", env=env, input="y\n")
    assert refused.exit_code == 1
    assert "archive it first" in refused.stderr
    _ok(kith_cli("fields", "archive", "industry", env=env))
    declined = kith_cli("fields", "purge", "industry", env=env, input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.stderr
    assert "industry" in _ok(kith_cli("fields", "list", "--all", env=env)).stdout
    purged = _ok(kith_cli("fields", "purge", "industry", env=env, input="y\n"))
    assert "Purged field industry: 1 value deleted" in purged.stdout
    assert "industry" not in _ok(kith_cli("fields", "list", "--all", env=env)).stdout
    _ok(kith_cli("fields", "archive", "passport", env=env))
    quiet = _ok(kith_cli("fields", "purge", "passport", "--yes", env=env))
    assert "1 value deleted" in quiet.stdout


# -- declared in kith.toml and by plugins ------------------------------------------------------

SEEDED_TOML = """
[[fields]]
name = "industry"
type = "choice"
choices = ["retail", "b2b"]
label = "Industry"

[[fields]]
name = "vat_number"
type = "text"
personal = true
retention = "tax_records"
"""


class LoyaltyPlugin:
    """A plugin that needs two custom fields, one also declared in kith.toml."""

    @hookimpl
    def kith_register_custom_fields(self, register: Callable[[FieldCreate], None]) -> None:
        register(FieldCreate(name="loyalty_tier", type="choice", choices=["gold", "silver"]))
        register(FieldCreate(name="industry", type="text"))
        register(FieldCreate(name="shoe_size", type="number", personal=True, purpose="fun"))


def _installation(database_url: str, tmp_path: Path, toml: str) -> dict[str, str]:
    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(toml, encoding="utf-8")
    return cli_env(database_url, home)[1]


@pytest.mark.kith_plugins(("loyalty", LoyaltyPlugin()))
def test_kith_migrate_adds_declared_fields_once_and_never_changes_them(
    kith_database_url: str, kith_cli: KithCli, tmp_path: Path
) -> None:
    env = _installation(kith_database_url, tmp_path, SEEDED_TOML)
    first = _ok(kith_cli("migrate", env=env)).stdout.splitlines()
    assert "Custom field industry (kith.toml): added" in first
    assert "Custom field vat_number (kith.toml): added" in first
    assert "Custom field loyalty_tier (loyalty): added" in first
    assert (
        "Custom field industry (loyalty): declared in kith.toml too; the declaration there "
        "applies" in first
    )
    refused = [line for line in first if line.startswith("Custom field shoe_size")]
    assert refused and "not added" in refused[0] and "'fun' is not a declared purpose" in refused[0]

    async def declared(kith: Kith) -> dict[str, Any]:
        return {f.name: f for f in await FieldService(kith).declared(include_archived=True)}

    fields = run_services(env, declared)
    assert {"industry", "loyalty_tier", "vat_number"} <= set(fields)
    assert "shoe_size" not in fields
    assert (fields["industry"].declared_by, fields["industry"].choices) == (
        "kith.toml",
        ["retail", "b2b"],
    )
    assert fields["loyalty_tier"].declared_by == "loyalty"
    assert (fields["vat_number"].personal, fields["vat_number"].retention) == (True, "tax_records")
    listed = _ok(kith_cli("fields", "list", env=env)).stdout
    assert "kith.toml" in listed and "loyalty" in listed

    # Run again: nothing to add, nothing said of fields that exist as declared.
    again = _ok(kith_cli("migrate", env=env)).stdout
    assert ": added" not in again and "Custom field industry (kith.toml)" not in again
    # A declaration that cannot be added is reported each time, until it is fixed.
    assert "Custom field shoe_size (loyalty): not added" in again

    # An admin changes a seeded field: the next migrate says so and leaves it.
    _ok(kith_cli("fields", "change", "industry", "--label", "Sector", env=env))
    _ok(kith_cli("fields", "archive", "loyalty_tier", env=env))
    after = _ok(kith_cli("migrate", env=env)).stdout
    assert "Custom field industry (kith.toml): exists with another label; left as it is" in after
    assert "Custom field loyalty_tier (loyalty): is archived; left so" in after
    fields = run_services(env, declared)
    assert fields["industry"].label == "Sector" and fields["loyalty_tier"].archived


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ('[[fields]]\nname = "ok"\ntype = "text"\n\n[[fields]]\nname = "bad"\n', "number 2 (bad)"),
        ('[[fields]]\nname = "x"\ntype = "colour"\n', "number 1 (x)"),
        ('[[fields]]\nname = "x"\ntype = "text"\n[[fields]]\nname = "x"\ntype = "text"\n', "twice"),
        ('[fields.industry]\ntype = "text"\n', "declare each field as a [[fields]] table"),
    ],
)
def test_a_bad_field_in_kith_toml_stops_migrate_in_one_line(
    kith_database_url: str, kith_cli: KithCli, tmp_path: Path, toml: str, says: str
) -> None:
    env = _installation(kith_database_url, tmp_path, toml)
    result = kith_cli("migrate", env=env)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kith: ") and says in lines[0], lines


def test_plugins_declaring_fields_are_checked_when_they_register() -> None:
    class Wrong:
        @hookimpl
        def kith_register_custom_fields(self, register: Callable[[Any], None]) -> None:
            register({"name": "x", "type": "text"})

    class Twice:
        @hookimpl
        def kith_register_custom_fields(self, register: Callable[[FieldCreate], None]) -> None:
            register(FieldCreate(name="loyalty_tier", type="text"))

    manager = KithPluginManager()
    with pytest.raises(PluginError, match=r"expected kith\.FieldCreate"):
        manager.register(Wrong(), "wrong")
    manager.register(LoyaltyPlugin(), "loyalty")
    with pytest.raises(PluginError, match="custom field 'loyalty_tier' is registered by plugin"):
        manager.register(Twice(), "twice")
    assert [(plugin, f.name) for plugin, f in manager.custom_fields()] == [
        ("loyalty", "loyalty_tier"),
        ("loyalty", "industry"),
        ("loyalty", "shoe_size"),
    ]


# -- retention ---------------------------------------------------------------------------------

NOW = dt.datetime.now(dt.UTC)


async def _retention_installation(kith: Kith) -> dict[str, uuid.UUID]:
    fields = FieldService(kith)
    await fields.add(
        FieldCreate(name="passport", type="text", personal=True, retention="passport_scans")
    )
    await fields.add(FieldCreate(name="birthday", type="date", personal=True))
    await fields.add(FieldCreate(name="industry", type="text"))
    contacts = ContactService(kith)
    values = {"passport": "X-1", "birthday": "1815-12-10", "industry": "retail"}
    ada = (await contacts.create(ContactCreate(name="Ada", fields=values))).id
    bob = (await contacts.create(ContactCreate(name="Bob", fields=values))).id
    # Ada's values were given two months ago.
    await (
        CustomFieldValue.update({CustomFieldValue.set_at: NOW - dt.timedelta(days=60)})
        .where(CustomFieldValue.contact == ada)
        .run()
    )
    return {"ada": ada, "bob": bob}


async def _fields_of(kith: Kith, contact_id: uuid.UUID) -> Json:
    return (await ContactService(kith).get(contact_id)).fields


async def test_a_retention_rule_on_a_fields_class_deletes_values_given_before_it(
    kith: Kith,
) -> None:
    ids = await _retention_installation(kith)
    configure_privacy(kith, retention={"passport_scans": "30d"})
    dry = await RetentionRunner(kith).run(dry_run=True)
    [rule] = dry.rules
    assert (rule.rule, rule.action, rule.matched, rule.done) == (
        "passport_scans",
        "delete custom field values",
        1,
        0,
    )
    assert "passport" in rule.applies_to
    assert "passport" in await _fields_of(kith, ids["ada"])

    [done] = (await RetentionRunner(kith).run()).rules
    assert (done.matched, done.done) == (1, 1)
    # Only the value of that field, given before the cutoff, went; the contact stays.
    assert await _fields_of(kith, ids["ada"]) == {"birthday": "1815-12-10", "industry": "retail"}
    assert (await _fields_of(kith, ids["bob"]))["passport"] == "X-1"
    # A value given again is kept for the period again.
    await ContactService(kith).update(ids["ada"], ContactPatch(fields={"passport": "X-2"}))
    await RetentionRunner(kith).run()
    assert (await _fields_of(kith, ids["ada"]))["passport"] == "X-2"


async def test_a_rule_on_the_custom_category_covers_every_personal_custom_field(
    kith: Kith,
) -> None:
    ids = await _retention_installation(kith)
    configure_privacy(kith, retention={"custom": "30d"})
    [rule] = (await RetentionRunner(kith).run()).rules
    assert rule.applies_to.startswith("values of the personal custom fields birthday, passport")
    assert rule.done == 2
    # Values of fields that are not personal are not personal data: no rule reaches them.
    assert await _fields_of(kith, ids["ada"]) == {"industry": "retail"}
    assert len(await _fields_of(kith, ids["bob"])) == 3


async def test_the_record_of_processing_gives_a_fields_retention(kith: Kith) -> None:
    await _retention_installation(kith)
    configure_privacy(kith, retention={"passport_scans": "30d"})
    record = build_record(kith, await custom_fields(kith))
    entries = {f.column: f for f in record.fields if f.table == "kith_custom_field_value"}
    assert (entries["passport"].retention_class, entries["passport"].retention) == (
        "passport_scans",
        "30 days",
    )
    assert entries["birthday"].retention_class == "contact"
    assert not [w for w in record.warnings if "passport_scans" in w]


async def test_only_personal_fields_have_a_retention_class(kith: Kith) -> None:
    with pytest.raises(InvalidInput) as refused:
        await FieldService(kith).add(FieldCreate(name="industry", type="text", retention="x"))
    assert refused.value.extra["field"] == "retention"
    assert await CustomField.count() == 0
