"""The record of processing (Art. 30): generated from every registered personal field,
purposes, recipients, retention rules and plugins; retention rules parsed with clear errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from _privacy_workflow import NEWSLETTER, cli_env, configure_privacy
from hypothesis import given
from hypothesis import strategies as st
from kith.actor import Role
from kith.cli import main
from kith.hookspecs import hookimpl
from kith.personal import PersonalField
from kith.privacy.rights.registry import personal_fields
from kith.privacy.rights.retention_rules import (
    Duration,
    RetentionError,
    parse_duration,
    parse_retention,
)
from kith.privacy.rights.ropa import build_record, to_json, to_markdown
from kith.runtime import Kith
from kith.settings import Settings, SettingsError
from kith.subjects import Purpose, Recipient

RECORDING = PersonalField(
    table="acme_call",
    column="recording_url",
    category="call_recordings",
    purposes=("call_quality",),
    retention="call_recordings",
    description="Where the provider keeps the recording",
    owner="acme",
)


class TelephonyLikePlugin:
    """A plugin recording calls and sending numbers to a provider abroad. (Its personal field
    is added to the running Kith directly: a declared field needs a real table at start-up.)"""

    @hookimpl
    def kith_register_purposes(self, register: Callable[[Purpose], None]) -> None:
        register(
            Purpose(
                name="call_quality",
                description="Recording calls to train staff",
                lawful_basis="consent",
            )
        )

    @hookimpl
    def kith_register_recipients(self, register: Callable[[Recipient], None]) -> None:
        register(
            Recipient(
                name="Acme Telephony",
                description="Carries calls and stores recordings",
                categories=("contact_details", "call_recordings"),
                purposes=("call_quality",),
                country="US",
                safeguards="standard contractual clauses",
            )
        )


@pytest.fixture
def kith_plugins() -> list[object]:
    return [TelephonyLikePlugin()]


@pytest.fixture
def configured(kith: Kith) -> Kith:
    configure_privacy(
        kith,
        controller={"name": "Example Ltd", "contact": "privacy@example.com", "dpo": "Dana P."},
        purposes={"newsletter": NEWSLETTER},
        retention={
            "call_recordings": "90d",
            "leads_without_consent": "30d",
            "inactive_contacts": {"keep": "24 months", "description": "untouched contacts"},
            "communications": "2y",
        },
    )
    kith.personal_fields = [*kith.personal_fields, RECORDING]
    return kith


async def test_ropa_lists_every_registered_field(configured: Kith) -> None:
    record = build_record(configured)
    registered = personal_fields(configured)
    assert {(f.table, f.column) for f in record.fields} == {(f.table, f.column) for f in registered}
    keys = {f"{f.table}.{f.column}" for f in record.fields}
    assert {
        "kith_contact.display_name",
        "kith_contact_point.value",
        "kith_interaction.body",
        "acme_call.recording_url",
        "kith_subject_request.note",
    } <= keys
    markdown = to_markdown(record)
    for field in registered:
        assert f"| {field.table} | {field.column} |" in markdown
    as_json = json.loads(to_json(record))
    assert len(as_json["fields"]) == len(registered)


async def test_ropa_covers_purposes_recipients_retention_and_plugins(configured: Kith) -> None:
    record = build_record(configured)
    purposes = {p.name: p for p in record.purposes}
    assert purposes["call_quality"].lawful_basis_text == "consent (Art. 6(1)(a))"
    assert purposes["newsletter"].declared_by == "kith.toml"
    assert purposes["customer_relationship"].categories == (
        "communications",
        "contact_details",
        "custom",
        "identity",
        "merge_records",
        "online_identifiers",  # the web forms plugin's submitter addresses
    )
    assert "Acme Telephony" in [r.name for r in record.recipients]
    assert "Acme Telephony" in [r.name for r in record.transfers]
    recording = next(f for f in record.fields if f.column == "recording_url")
    assert recording.retention == "90 days"
    interaction_body = next(
        f for f in record.fields if (f.table, f.column) == ("kith_interaction", "body")
    )
    assert interaction_body.retention == "2 years"  # by its category, communications
    retention = {r.target: r for r in record.retention}
    assert retention["inactive_contacts"].keep == "2 years"
    assert retention["inactive_contacts"].applies_to == "named rule"
    assert retention["call_recordings"].applies_to == "retention class / data category"
    assert record.controller.name == "Example Ltd"
    assert {"privacy.encryption", "privacy.rights", "privacy.requests"} <= {
        p.name for p in record.plugins
    }

    markdown = to_markdown(record)
    for text in (
        "# Record of processing activities (Art. 30 GDPR)",
        "- Name: Example Ltd",
        "- Data protection officer: Dana P.",
        "Acme Telephony (US): standard contractual clauses",
        "| inactive_contacts | named rule | 2 years | untouched contacts |",
        "legitimate interests (Art. 6(1)(f))",
        "## Enabled plugins",
    ):
        assert text in markdown, text


async def test_ropa_names_its_gaps(kith: Kith) -> None:
    configure_privacy(kith, retention={"call_recordigs": "90d"})
    record = build_record(kith)
    warnings = "\n".join(record.warnings)
    assert "privacy.retention.call_recordigs: not a data category" in warnings
    assert "no controller named" in warnings
    assert "no retention rule for the retention class 'contact'" in warnings


async def test_ropa_api_is_for_compliance(configured: Kith, kith_client, kith_auth) -> None:
    agent = await kith_auth(Role.AGENT)
    officer = await kith_auth(Role.COMPLIANCE)
    assert (await kith_client.get("/api/privacy/ropa", headers=agent)).status_code == 403
    as_json = await kith_client.get("/api/privacy/ropa", headers=officer)
    assert as_json.status_code == 200
    assert {f["column"] for f in as_json.json()["fields"]} >= {"display_name", "recording_url"}
    as_md = await kith_client.get("/api/privacy/ropa", params={"format": "md"}, headers=officer)
    assert as_md.headers["content-type"].startswith("text/markdown")
    assert "| acme_call | recording_url |" in as_md.text
    rules = await kith_client.get("/api/privacy/retention", headers=officer)
    assert {r["target"] for r in rules.json()} >= {"call_recordings", "inactive_contacts"}
    assert (await kith_client.get("/api/privacy/retention", headers=agent)).status_code == 403


def test_cli_prints_the_record(kith_database_url: str, tmp_path: Path) -> None:
    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(
        '[privacy.controller]\nname = "Example Ltd"\ncontact = "privacy@example.com"\n'
        '[privacy.retention]\ncall_recordings = "90d"\n'
    )
    runner, env = cli_env(kith_database_url, home)
    markdown = runner.invoke(main, ["privacy", "ropa"], env=env)
    assert markdown.exit_code == 0, markdown.output
    assert markdown.stdout.startswith("# Record of processing activities")
    assert "| kith_contact | display_name |" in markdown.stdout
    as_json = runner.invoke(main, ["privacy", "ropa", "--format", "json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["controller"]["name"] == "Example Ltd"
    rules = runner.invoke(main, ["privacy", "retention", "rules"], env=env)
    assert "call_recordings" in rules.stdout and "90 days" in rules.stdout

    (home / "kith.toml").write_text('[privacy.retention]\ncall_recordings = "90 fortnights"\n')
    broken = runner.invoke(main, ["privacy", "ropa"], env=env)
    assert broken.exit_code == 2
    assert "[privacy] retention.call_recordings: unknown unit 'fortnights'" in broken.stderr


# -- retention rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "duration", "shown"),
    [
        ("90d", Duration(90, "days"), "90 days"),
        ("30 days", Duration(30, "days"), "30 days"),
        ("1d", Duration(1, "days"), "1 day"),
        ("4 weeks", Duration(28, "days"), "28 days"),
        ("24 months", Duration(24, "months"), "2 years"),
        ("18 months", Duration(18, "months"), "18 months"),
        ("1 month", Duration(1, "months"), "1 month"),
        ("2y", Duration(24, "months"), "2 years"),
        (" 10 Years ", Duration(120, "months"), "10 years"),
    ],
)
def test_durations_parse(text: str, duration: Duration, shown: str) -> None:
    assert parse_duration(text) == duration
    assert str(duration) == shown


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("90", "is not a duration"),
        ("d90", "is not a duration"),
        ("-5d", "is not a duration"),
        ("0d", "longer than zero"),
        ("3m", "ambiguous"),
        ("3 fortnights", "unknown unit 'fortnights'"),
        ("200y", "longer than 100 years"),
        (90, "expected a duration"),
        ("", "is not a duration"),
    ],
)
def test_bad_durations_are_explained(value: object, message: str) -> None:
    with pytest.raises(RetentionError, match=message) as caught:
        parse_duration(value, "privacy.retention.calls")
    assert str(caught.value).startswith("privacy.retention.calls: ")


def test_retention_tables_and_their_errors() -> None:
    rules = parse_retention({"a_rule": "30d", "b_rule": {"keep": "2y", "description": "why"}})
    assert [(r.target, str(r.keep), r.description) for r in rules] == [
        ("a_rule", "30 days", ""),
        ("b_rule", "2 years", "why"),
    ]
    with pytest.raises(RetentionError, match=r"privacy.retention.b: missing keep"):
        parse_retention({"b": {"description": "x"}})
    with pytest.raises(RetentionError, match=r"privacy.retention.b: unknown key 'after'"):
        parse_retention({"b": {"after": "2y"}})
    with pytest.raises(RetentionError, match=r"privacy.retention.b.keep: 'soon' is not"):
        parse_retention({"b": {"keep": "soon"}})
    with pytest.raises(RetentionError, match="lower-case"):
        parse_retention({"Call Recordings": "90d"})
    with pytest.raises(RetentionError, match="expected a table"):
        parse_retention(["90d"])


def test_retention_settings_errors_are_settings_errors(tmp_path: Path) -> None:
    from kith.privacy.rights.settings import RightsSettings

    settings = Settings(
        home=tmp_path, database_url="", extra={"privacy": {"retention": {"calls": "3m"}}}
    )
    with pytest.raises(SettingsError, match=r"^\[privacy\] retention.calls: '3m' is ambiguous"):
        settings.parsed("privacy", RightsSettings)


@pytest.mark.parametrize(
    ("now", "keep", "cutoff"),
    [
        (dt.datetime(2026, 3, 31, 8, tzinfo=dt.UTC), "1 month", dt.datetime(2026, 2, 28, 8)),
        (dt.datetime(2028, 2, 29, 8, tzinfo=dt.UTC), "2y", dt.datetime(2026, 2, 28, 8)),
        (dt.datetime(2026, 1, 15, 8, tzinfo=dt.UTC), "24 months", dt.datetime(2024, 1, 15, 8)),
        (dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC), "90d", dt.datetime(2025, 12, 1, 8)),
    ],
)
def test_cutoffs(now: dt.datetime, keep: str, cutoff: dt.datetime) -> None:
    assert parse_duration(keep).cutoff(now) == cutoff.replace(tzinfo=dt.UTC)


@given(
    st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    st.integers(1, 600),
)
def test_month_cutoffs_are_calendar_months(now: dt.datetime, months: int) -> None:
    cutoff = Duration(months, "months").cutoff(now)
    assert (now.year * 12 + now.month) - (cutoff.year * 12 + cutoff.month) == months
    assert cutoff.day <= now.day and cutoff.time() == now.time()


def test_a_misspelt_privacy_setting_is_refused(kith_database_url: str, tmp_path: Path) -> None:
    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text("[privacy]\nfour_eye = true\n")
    runner, env = cli_env(kith_database_url, home)
    refused = runner.invoke(main, ["privacy", "ropa"], env=env)
    assert refused.exit_code == 2
    assert "[privacy] four_eye: unknown setting" in refused.stderr
