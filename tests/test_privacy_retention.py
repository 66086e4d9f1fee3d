"""Retention: ``kith privacy retention run [--dry-run]`` and the worker's job apply the rules of
``[privacy.retention]`` through the erasure machinery, with a report; legal holds that ran out
are released; a dry run changes nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from _privacy_subjects import make_person
from _privacy_workflow import NEWSLETTER, cli_env, configure_privacy, make_user, run_services
from kith.privacy.encryption.tables import DataKey, Tombstone
from kith.privacy.rights.consent import ConsentService
from kith.privacy.rights.erasure import ErasureService, SubjectErasure
from kith.privacy.rights.retention import RetentionRunner, job_id_for
from kith.privacy.rights.tables import ErasureJob, LegalHold
from kith.runtime import Kith
from kith.schemas import InteractionCreate
from kith.services.interactions import InteractionService
from kith.tables import Contact, Interaction

NOW = dt.datetime.now(dt.UTC)
RULES = {
    "inactive_contacts": "24 months",
    "leads_without_consent": "30d",
    "communications": {"keep": "1y", "description": "Notes, calls and emails"},
}


async def _age(contact_id: uuid.UUID, days: int) -> None:
    then = NOW - dt.timedelta(days=days)
    await Contact.update({Contact.created_at: then, Contact.updated_at: then}).where(
        Contact.id == contact_id
    )
    await Interaction.update(
        {Interaction.occurred_at: then, Interaction.created_at: then, Interaction.updated_at: then}
    ).where(Interaction.contact == contact_id)


async def _people(kith: Kith) -> dict[str, uuid.UUID]:
    configure_privacy(kith, retention=RULES, purposes={"newsletter": NEWSLETTER})
    people = {
        "inactive": await make_person(kith, notes=1, orders=0, name_suffix=" A"),
        "lead": await make_person(kith, notes=1, orders=0, name_suffix=" B"),
        "customer": await make_person(kith, notes=0, orders=0, name_suffix=" C"),
        "subscriber": await make_person(kith, notes=0, orders=0, name_suffix=" D"),
    }
    await _age(people["inactive"], 3 * 365)
    await _age(people["lead"], 60)
    await _age(people["customer"], 60)
    await _age(people["subscriber"], 60)
    interactions = InteractionService(kith)
    old = NOW - dt.timedelta(days=2 * 365)
    await interactions.log(
        people["customer"], InteractionCreate(kind="note", summary="old note", occurred_at=old)
    )
    await interactions.log(
        people["customer"],
        InteractionCreate(kind="order", summary="old order", amount=None, occurred_at=old),
    )
    await interactions.log(people["customer"], InteractionCreate(kind="order", summary="new"))
    await ConsentService(kith).give(people["subscriber"], "newsletter", channel="form")
    return people


async def test_a_dry_run_lists_and_a_run_erases(kith: Kith) -> None:
    people = await _people(kith)
    dry = await RetentionRunner(kith).run(dry_run=True)
    by_rule = {r.rule: r for r in dry.rules}
    assert set(by_rule["inactive_contacts"].contacts) == {people["inactive"]}
    assert set(by_rule["leads_without_consent"].contacts) == {people["inactive"], people["lead"]}
    # The old notes of the inactive person and the customer; not the customer's old order.
    assert by_rule["communications"].matched == 2
    assert all(r.done == 0 for r in dry.rules)
    assert await Contact.count() == 4 and await ErasureJob.count() == 0

    report = await RetentionRunner(kith).run()
    by_rule = {r.rule: r for r in report.rules}
    assert by_rule["inactive_contacts"].done == 1
    assert by_rule["leads_without_consent"].done == 1  # the inactive one went already
    assert by_rule["communications"].done == 2
    remaining = {row["id"] for row in await Contact.select(Contact.id)}
    assert remaining == {people["customer"], people["subscriber"]}
    jobs = await ErasureJob.select().where(ErasureJob.origin == "retention")
    assert {(j["rule"], j["contact_id"]) for j in jobs} == {
        ("inactive_contacts", people["inactive"]),
        ("leads_without_consent", people["lead"]),
    }
    assert all(j["id"] == job_id_for(j["rule"], j["contact_id"]) for j in jobs)
    kept = await InteractionService(kith).timeline(people["customer"])
    assert sorted(i.summary for i in kept.items) == ["new", "old order"]
    # A second run finds nothing more to do.
    again = await RetentionRunner(kith).run()
    assert all(r.matched == 0 for r in again.rules)


async def test_legal_holds_are_released_when_they_run_out(kith: Kith) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=1, orders=1)
    await ErasureService(kith).run(contact_id, job_id=uuid.uuid4(), actor=officer)
    hold = (await LegalHold.select().where(LegalHold.contact_id == contact_id))[0]
    assert await Contact.exists().where(Contact.id == contact_id)

    soon = await RetentionRunner(kith).run()
    assert soon.holds_released == 0
    later = await RetentionRunner(kith, now=NOW + dt.timedelta(days=11 * 366)).run(dry_run=True)
    assert (later.holds_released, later.held_records_deleted) == (1, 1)
    assert await Contact.exists().where(Contact.id == contact_id)

    done = await RetentionRunner(kith, now=NOW + dt.timedelta(days=11 * 366)).run()
    assert (done.holds_released, done.held_records_deleted) == (1, 1)
    assert not await Contact.exists().where(Contact.id == contact_id)
    assert not await Interaction.exists().where(Interaction.contact == contact_id)
    assert not await DataKey.exists().where(DataKey.subject == hold["id"])
    assert await Tombstone.exists().where(Tombstone.subject == hold["id"])


async def test_the_worker_applies_retention_periodically(kith: Kith) -> None:
    jobs = kith.bus.jobs
    assert "privacy.retention" in jobs
    interval, job, _ = jobs["privacy.retention"]
    assert interval == 3600.0
    configure_privacy(kith, retention={"inactive_contacts": "24 months"})
    contact_id = await make_person(kith, notes=0, orders=0)
    await _age(contact_id, 3 * 365)
    await job()
    assert not await Contact.exists().where(Contact.id == contact_id)


def test_cli_retention_run(kith_database_url: str, tmp_path: Path) -> None:
    from kith.cli import main

    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text('[privacy.retention]\ninactive_contacts = "24 months"\n')
    runner, env = cli_env(kith_database_url, home)

    async def setup(kith: Kith) -> uuid.UUID:
        contact_id = await make_person(kith, notes=0, orders=0)
        await _age(contact_id, 3 * 365)
        return contact_id

    contact_id = run_services(env, setup)
    dry = runner.invoke(main, ["privacy", "retention", "run", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "Dry run" in dry.output and f"would erase: {contact_id}" in dry.output
    rules = runner.invoke(main, ["privacy", "retention", "rules"], env=env)
    assert rules.exit_code == 0 and "inactive_contacts" in rules.output
    done = runner.invoke(main, ["privacy", "retention", "run"], env=env)
    assert done.exit_code == 0, done.output
    assert f"erased: {contact_id}" in done.output
    jobs = runner.invoke(main, ["privacy", "erasure", "jobs"], env=env)
    assert "inactive_contacts" in jobs.output and "done" in jobs.output


async def test_an_erasure_a_run_left_half_done_is_finished_by_the_next_run(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_privacy(kith, retention={"inactive_contacts": "24 months"})
    contact_id = await make_person(kith, notes=1, orders=0)
    await _age(contact_id, 3 * 365)
    # The run stops after core erased the contact, before the data key goes.
    original = SubjectErasure._records

    async def stop(self: SubjectErasure) -> list:
        raise RuntimeError("the process stopped here")

    monkeypatch.setattr(SubjectErasure, "_records", stop)
    first = await RetentionRunner(kith).run()
    assert first.rules[0].done == 0
    assert not await Contact.exists().where(Contact.id == contact_id)
    assert await DataKey.exists().where(DataKey.subject == contact_id)

    # The contact matches no rule any more; the next run finishes its erasure all the same.
    monkeypatch.setattr(SubjectErasure, "_records", original)
    second = await RetentionRunner(kith).run()
    [job] = await ErasureJob.select().where(ErasureJob.contact_id == contact_id)
    assert job["state"] == "done"
    assert not await DataKey.exists().where(DataKey.subject == contact_id)
    assert second.erasures_resumed == 1
    assert (await RetentionRunner(kith).run()).erasures_resumed == 0
