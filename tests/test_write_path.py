"""The writes every integration makes (a contact, an interaction, a consent) do their work in
one transaction, with the record of the access, and answer with what they wrote."""

from __future__ import annotations

import decimal
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _privacy_subjects import make_person, run_request
from _privacy_workflow import NEWSLETTER, configure_privacy, make_contact, make_user
from kith.privacy.rights.consent import ConsentService
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, InteractionCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.interactions import InteractionService
from kith.services.tiers import TierService
from kith.tables import Interaction

_TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)


@dataclass
class Statement:
    sql: str
    in_transaction: bool

    @property
    def verb(self) -> str:
        return self.sql.split()[0].upper()

    @property
    def table(self) -> str:
        match = _TABLE.search(self.sql)
        return match.group(1) if match else ""


@dataclass
class Recorder:
    statements: list[Statement] = field(default_factory=list)

    def of(self, table: str, verb: str | None = None) -> list[Statement]:
        return [s for s in self.statements if s.table == table and (verb is None or s.verb == verb)]


@pytest.fixture
def recorded(kith: Kith, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """Every statement the engine runs, and whether it ran inside a transaction."""
    engine = kith.database.engine
    recorder = Recorder()
    real = engine.run_querystring

    async def run_querystring(querystring: Any, in_pool: bool = True) -> Any:
        sql, _ = querystring.compile_string(engine_type=engine.engine_type)
        inside = engine.current_transaction.get() is not None
        recorder.statements.append(Statement(sql, inside))
        return await real(querystring, in_pool)

    monkeypatch.setattr(engine, "run_querystring", run_querystring)
    yield recorder


async def test_a_contact_is_created_in_one_commit_and_not_read_back(
    kith: Kith, recorded: Recorder
) -> None:
    # A process's first contact also settles, once, whether the name search index is complete
    # (a new installation's is); what is asserted is every later create.
    await make_contact(kith)
    recorded.statements.clear()
    created = await ContactService(kith).create(
        ContactCreate(
            given_name="Ada",
            family_name="Lovelace",
            emails=[EmailIn("ada@example.com", label="work"), EmailIn("ada@home.example")],
            phones=[PhoneIn("+44 20 7946 0018")],
            tags=["vip", "vip", " lead "],
        )
    )
    # The access record commits with the contact: nothing ran on its own outside.
    assert recorded.statements
    assert all(s.in_transaction for s in recorded.statements), [
        s.sql[:60] for s in recorded.statements if not s.in_transaction
    ]
    # A new contact's data key: one statement, no look for a key or a tombstone first.
    keys = recorded.of("kith_privacy_data_key") + recorded.of("kith_privacy_tombstone")
    if kith.database.kind == "postgresql":
        # Every row of the create in one statement that commits by itself: its data key, the
        # contact, its emails and phones (one insert for all three), name tokens, the audit
        # entry and the event; before it only reads (the checks), no BEGIN or COMMIT.
        writes = [s for s in recorded.statements if s.verb != "SELECT"]
        assert [s.verb for s in writes] == ["WITH"]
        combined = writes[0].sql
        for table in ("kith_privacy_data_key", "kith_contact", "kith_contact_point"):
            assert combined.count(f'INTO "{table}"') == 1, table
        assert [s.verb for s in keys] == ["WITH"]  # no look for a key or a tombstone first
        assert recorded.of("kith_contact", "SELECT") == []
    else:
        # A new contact's data key: one statement, no look for a key or a tombstone first.
        assert [s.verb for s in keys] == ["INSERT"]
        # Its emails and phones: one statement for all three.
        assert [s.verb for s in recorded.of("kith_contact_point", "INSERT")] == ["INSERT"]
        # The answer is what was written, not a read of it ...
        assert recorded.of("kith_contact", "SELECT") == []
        assert [s.verb for s in recorded.of("kith_contact_point")] == ["INSERT"]
        # The primary-email holder is asked in the one read of the field declarations' version.
        checks = [s for s in recorded.statements if "kith_contact_point" in s.sql]
        assert [s.verb for s in checks] == ["SELECT", "INSERT"]
        assert "kith_custom_field_version" in checks[0].sql
    # ... and it is what a read gives.
    assert created == await ContactService(kith).get(created.id)
    assert created.tags == ["vip", "lead"]


async def test_an_interaction_is_logged_in_one_commit_and_not_read_back(
    kith: Kith, recorded: Recorder
) -> None:
    contact_id = await make_contact(kith)
    recorded.statements.clear()
    logged, new = await InteractionService(kith).log(
        contact_id,
        InteractionCreate(kind="call", summary="Call 7", amount=decimal.Decimal(7)),
    )
    assert new
    assert all(s.in_transaction for s in recorded.statements), [
        s.sql[:60] for s in recorded.statements if not s.in_transaction
    ]
    # On PostgreSQL written with the audit entry and the outbox event, in one statement that
    # commits by itself (no BEGIN, no COMMIT).
    together = kith.database.kind == "postgresql"
    assert [s.verb for s in recorded.of("kith_interaction")] == ["WITH" if together else "INSERT"]
    # The contact is not looked up first: its foreign key refuses a missing one.
    assert recorded.of("kith_contact") == []
    assert logged == await InteractionService(kith).get(logged.id)
    assert str(logged.amount) == "7.00"


async def test_an_order_is_written_before_its_tier_reads_it(kith: Kith) -> None:
    contact_id = await make_contact(kith)
    await InteractionService(kith).log(
        contact_id, InteractionCreate(kind="order", summary="Order 7", amount=decimal.Decimal(7))
    )
    # The value is stored by the order's own transaction, not computed when asked.
    value = await TierService(kith).value(contact_id)
    assert [(c.orders, str(c.monetary)) for c in value.currencies] == [(1, "7.00")]


async def test_consent_given_is_not_read_back(kith: Kith, recorded: Recorder) -> None:
    configure_privacy(kith, purposes={"newsletter": NEWSLETTER})
    ledger = ConsentService(kith)
    contact_id = await make_contact(kith)
    await ledger.current_notice("newsletter")  # publishes it, in a write of its own
    recorded.statements.clear()
    given = await ledger.give(contact_id, "newsletter", channel="web")
    assert all(s.in_transaction for s in recorded.statements if s.verb != "SELECT")
    # On PostgreSQL written with the audit entry and the outbox event, in one statement.
    together = kith.database.kind == "postgresql"
    assert [s.verb for s in recorded.of("kith_consent_event")] == ["WITH" if together else "INSERT"]
    # A contact's second consent: its pseudonym shows it is there, no look at the contact.
    recorded.statements.clear()
    again = await ledger.give(contact_id, "newsletter", channel="email")
    assert recorded.of("kith_contact") == []
    assert [s.verb for s in recorded.of("kith_consent_subject")] == ["SELECT"]
    assert await ledger.history(contact_id) == [given, again]


async def test_an_interaction_for_a_missing_or_erased_contact_is_404_and_stores_nothing(
    kith: Kith, kith_client: Any, kith_auth: Any
) -> None:
    headers = await kith_auth("agent")
    erased = await make_person(kith, notes=1, orders=0)
    await run_request(kith, "erasure", erased, await make_user(kith))
    before = await Interaction.count()
    for contact_id in (uuid.uuid4(), erased):
        answer = await kith_client.post(
            f"/api/contacts/{contact_id}/interactions",
            json={"kind": "note", "summary": "Called back"},
            headers=headers,
        )
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["detail"] == f"contact {contact_id} does not exist"
    assert await Interaction.count() == before


async def test_the_suppression_check_is_one_statement(kith: Kith, recorded: Recorder) -> None:
    service = ContactService(kith)
    await service.create(ContactCreate(name="First", emails=[EmailIn("first@example.com")]))
    recorded.statements.clear()
    await service.create(
        ContactCreate(
            name="Ada",
            emails=[EmailIn("ada@example.com"), EmailIn("ada@home.example")],
            phones=[PhoneIn("+44 20 7946 0018")],
        )
    )
    # All three values in one look-up; the suppression root keys are remembered, not read.
    assert [s.verb for s in recorded.of("kith_privacy_suppression")] == ["SELECT"]
    assert recorded.of("kith_privacy_root_key") == []
