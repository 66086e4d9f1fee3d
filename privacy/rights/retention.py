"""Applying the retention rules of ``[privacy.retention]``: ``kith privacy retention run`` and a
periodic job of the worker (and of ``kith serve`` when it dispatches).

What each rule does:

- ``inactive_contacts``: a contact nobody changed, and with no interaction, for the period is
  erased through the erasure machinery (legal holds apply; restricted contacts are kept);
- ``leads_without_consent``: a contact created before the period that never gave consent for
  any purpose and never ordered is erased the same way;
- a rule naming a data category or retention class of Kith's interactions (``communications``,
  ``contact``) deletes interactions older than the period, except records under a legal hold
  that is still running;
- a rule naming the data category or retention class of a personal custom field (``custom``,
  ``contact``, or the class the field declares) deletes the values of that field given
  before the period (a value given again starts again);
- other targets belong to plugins' data, which the plugin that declared them applies; the
  report says so.

Besides the rules, every run releases legal holds whose time is up (the held records are
deleted, the hold's key destroyed, and the nameless contact with them when nothing is left)
and deletes export packages older than ``exports_kept_days``. A dry run changes nothing and
lists what would go. Each subject is erased by a job with a fixed id (rule and contact), and
every run first finishes the erasures an earlier run left unfinished (a crash, a failed step),
also those whose contact is already gone and so matches no rule any more.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
from kith import (
    SYSTEM,
    Actor,
    ContactService,
    ErasureOutcome,
    FieldOut,
    FieldService,
    InteractionService,
    Kith,
    get_logger,
    utcnow,
)
from kith.privacy.encryption.shredding import shred
from kith.privacy.rights.erasure import ErasureService, _kinds, add_duration
from kith.privacy.rights.export import ExportService
from kith.privacy.rights.registry import personal_fields
from kith.privacy.rights.retention_rules import Duration, RetentionRule
from kith.privacy.rights.settings import rights_settings
from kith.privacy.rights.tables import (
    ConsentEvent,
    ConsentSubject,
    ErasureJob,
    LegalHold,
    Restriction,
)

NAMESPACE = uuid.UUID("1b1e0d4e-8f7e-4a5e-a6c9-3c8f1f6f2b7d")
SUBJECT_RULES = ("inactive_contacts", "leads_without_consent")
MAX_SUBJECTS_PER_RULE = 1000
LISTED = 50
# Core's interaction table, as the registry of personal fields names it.
INTERACTION_TABLE = "kith_interaction"
# Candidates are read from core a page at a time and filtered here.
PAGE = 500

log = get_logger("kith.privacy.rights.retention")


class RuleReport(msgspec.Struct, kw_only=True):
    rule: str
    keep: str
    applies_to: str
    cutoff: dt.datetime | None
    action: str
    matched: int = 0
    done: int = 0
    contacts: list[uuid.UUID] = []
    more: bool = False
    note: str | None = None


class RetentionReport(msgspec.Struct, kw_only=True):
    ran_at: dt.datetime
    dry_run: bool
    rules: list[RuleReport]
    holds_released: int = 0
    held_records_deleted: int = 0
    exports_deleted: int = 0
    erasures_resumed: int = 0


def job_id_for(rule: str, contact_id: uuid.UUID) -> uuid.UUID:
    """The erasure job of one rule and contact (the same on every run, so it resumes)."""
    return uuid.uuid5(NAMESPACE, f"{rule}|{contact_id}")


class RetentionRunner:
    def __init__(self, kith: Kith, now: dt.datetime | None = None) -> None:
        self.kith = kith
        self.now = now or utcnow()
        self.holds = rights_settings(kith.settings).holds()

    def _interaction_targets(self) -> set[str]:
        targets = set()
        for field in personal_fields(self.kith):
            if field.table == INTERACTION_TABLE:
                targets |= {field.category, field.retention}
        return targets

    async def _kept(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Of ``ids``, the contacts a rule must not erase: restricted ones (only storage is
        allowed) and erased ones whose records a legal hold keeps."""
        restricted = await Restriction.select(Restriction.contact_id).where(
            Restriction.contact_id.is_in(ids) & Restriction.lifted_at.is_null()
        )
        held = await LegalHold.select(LegalHold.contact_id).where(LegalHold.contact_id.is_in(ids))
        return {row["contact_id"] for row in [*restricted, *held]}

    async def _consented(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Of ``ids``, the contacts that ever gave consent for any purpose."""
        given = ConsentEvent.select(ConsentEvent.subject).where(ConsentEvent.action == "given")
        rows = await ConsentSubject.select(ConsentSubject.contact).where(
            ConsentSubject.contact.is_in(ids) & ConsentSubject.pseudonym.is_in(given)
        )
        return {row["contact"] for row in rows}

    async def _candidates(self, rule: str, cutoff: dt.datetime, limit: int) -> list[uuid.UUID]:
        """Up to ``limit`` contacts a subject rule erases, in id order."""
        contacts = ContactService(self.kith)
        found: list[uuid.UUID] = []
        after: uuid.UUID | None = None
        while len(found) < limit:
            if rule == "inactive_contacts":
                page = await contacts.untouched_since(cutoff, after=after, limit=PAGE)
            else:
                page = await contacts.created_before_without(
                    cutoff, "order", after=after, limit=PAGE
                )
            if not page:
                break
            excluded = await self._kept(page)
            if rule == "leads_without_consent":
                excluded |= await self._consented(page)
            found += [contact for contact in page if contact not in excluded]
            after = page[-1]
        return found[:limit]

    async def run(
        self, *, dry_run: bool = False, actor: Actor = SYSTEM, channel: str = "cli"
    ) -> RetentionReport:
        rules = rights_settings(self.kith.settings).retention_rules()
        resumed = 0 if dry_run else await self._resume(actor, channel)
        reports = [
            report for rule in rules for report in await self._rule(rule, dry_run, actor, channel)
        ]
        report = RetentionReport(
            ran_at=self.now, dry_run=dry_run, rules=reports, erasures_resumed=resumed
        )
        released, deleted = await self._release_holds(dry_run)
        report.holds_released, report.held_records_deleted = released, deleted
        if not dry_run:
            report.exports_deleted = await ExportService(self.kith).prune(self.now)
        log.info(
            "retention run",
            dry_run=dry_run,
            rules=len(reports),
            subjects_erased=sum(r.done for r in reports if r.action == "erase subjects"),
            holds_released=released,
        )
        return report

    async def _resume(self, actor: Actor, channel: str) -> int:
        """Finish the erasures of earlier runs that stopped half-way; returns how many."""
        rows = await ErasureJob.select().where(
            (ErasureJob.origin == "retention") & (ErasureJob.state == "running")
        )
        resumed = 0
        for row in rows:
            try:
                await ErasureService(self.kith).run(
                    row["contact_id"],
                    job_id=row["id"],
                    actor=actor,
                    origin="retention",
                    rule=row["rule"],
                    channel=channel,
                )
            except Exception:
                log.exception("retention erasure failed", contact_id=str(row["contact_id"]))
                continue
            resumed += 1
        return resumed

    async def _rule(
        self, rule: RetentionRule, dry_run: bool, actor: Actor, channel: str
    ) -> list[RuleReport]:
        cutoff = rule.keep.cutoff(self.now)
        if rule.target in SUBJECT_RULES:
            return [await self._subjects(rule, cutoff, dry_run, actor, channel)]
        reports = []
        if rule.target in self._interaction_targets():
            reports.append(await self._interactions(rule, cutoff, dry_run))
        fields = await self._custom_field_targets()
        if rule.target in fields:
            reports.append(await self._custom_values(rule, fields[rule.target], cutoff, dry_run))
        if reports:
            return reports
        return [
            RuleReport(
                rule=rule.target,
                keep=str(rule.keep),
                applies_to="plugin data",
                cutoff=cutoff,
                action="none",
                note="no data of Kith's own falls under this target; the plugin that declared "
                "it applies it",
            )
        ]

    async def _custom_field_targets(self) -> dict[str, list[FieldOut]]:
        """The personal custom fields under each target: their data category and their
        retention class (``contact`` unless declared), as the record of processing lists
        them."""
        targets: dict[str, list[FieldOut]] = {}
        for declared in await FieldService(self.kith).declared(include_archived=True):
            if declared.personal:
                for target in {declared.category or "custom", declared.retention or "contact"}:
                    targets.setdefault(target, []).append(declared)
        return targets

    async def _custom_values(
        self, rule: RetentionRule, fields: list[FieldOut], cutoff: dt.datetime, dry_run: bool
    ) -> RuleReport:
        matched = await FieldService(self.kith).clear_set_before(
            [declared.id for declared in fields], cutoff, dry_run=dry_run
        )
        return RuleReport(
            rule=rule.target,
            keep=str(rule.keep),
            applies_to="values of the personal custom fields "
            + ", ".join(sorted(declared.name for declared in fields))
            + " given before the cutoff",
            cutoff=cutoff,
            action="delete custom field values",
            matched=matched,
            done=0 if dry_run else matched,
        )

    async def _subjects(
        self, rule: RetentionRule, cutoff: dt.datetime, dry_run: bool, actor: Actor, channel: str
    ) -> RuleReport:
        limit = MAX_SUBJECTS_PER_RULE + 1
        ids = await self._candidates(rule.target, cutoff, limit)
        if rule.target == "inactive_contacts":
            applies_to = "contacts untouched, with no interaction, since the cutoff"
        else:
            applies_to = "contacts created before the cutoff that never consented or ordered"
        more = len(ids) > MAX_SUBJECTS_PER_RULE
        ids = ids[:MAX_SUBJECTS_PER_RULE]
        report = RuleReport(
            rule=rule.target,
            keep=str(rule.keep),
            applies_to=applies_to,
            cutoff=cutoff,
            action="erase subjects",
            matched=len(ids),
            contacts=ids[:LISTED],
            more=more,
        )
        if dry_run:
            return report
        service = ErasureService(self.kith)
        for contact_id in ids:
            try:
                await service.run(
                    contact_id,
                    job_id=job_id_for(rule.target, contact_id),
                    actor=actor,
                    origin="retention",
                    rule=rule.target,
                    channel=channel,
                )
            except Exception:
                # One subject's failure must not stop the others; its job resumes next run.
                log.exception(
                    "retention erasure failed", contact_id=str(contact_id), rule=rule.target
                )
                continue
            report.done += 1
        return report

    async def _interactions(
        self, rule: RetentionRule, cutoff: dt.datetime, dry_run: bool
    ) -> RuleReport:
        interactions = InteractionService(self.kith)
        # Interactions of erased contacts are the legal holds' business.
        shells = [
            row["contact_id"]
            for row in await LegalHold.select(LegalHold.contact_id).where(
                LegalHold.released_at.is_null()
            )
        ]
        held_kinds = [kind for hold in self.holds for kind in hold.kinds]
        matched = await interactions.delete_older_than(
            cutoff, except_kinds=held_kinds, except_contacts=shells, dry_run=dry_run
        )
        # Held kinds go only once their legal hold has run out too.
        for hold in self.holds:
            matched += await interactions.delete_older_than(
                min(cutoff, hold.keep.cutoff(self.now)),
                kinds=hold.kinds,
                except_contacts=shells,
                dry_run=dry_run,
            )
        return RuleReport(
            rule=rule.target,
            keep=str(rule.keep),
            applies_to="interactions (calls, emails, notes...) older than the cutoff",
            cutoff=cutoff,
            action="delete interactions",
            matched=matched,
            done=0 if dry_run else matched,
        )

    async def _release_holds(self, dry_run: bool) -> tuple[int, int]:
        """Delete records whose legal hold ran out; returns (holds released, records)."""
        rows = await LegalHold.select().where(
            (LegalHold.held_until < self.now) & LegalHold.released_at.is_null()
        )
        released = deleted = 0
        for row in rows:
            released += 1
            if dry_run:
                count, _ = await InteractionService(self.kith).count_and_latest(
                    row["contact_id"], kinds=_kinds(row["kinds"])
                )
                deleted += count
                continue
            async with self.kith.unit_of_work():
                await (
                    LegalHold.update({LegalHold.released_at: self.now})
                    .where(LegalHold.id == row["id"])
                    .run()
                )
                # What is left of the erased subject goes the way the rest went: through
                # every source's erasure, which now keeps only the holds still running.
                deleted += await self._erase_remains(row["contact_id"])
                await shred(self.kith, row["id"], reason="legal hold ended")
        return released, deleted

    async def _erase_remains(self, contact_id: uuid.UUID) -> int:
        assert self.kith.plugins is not None
        results = await self.kith.plugins.call_async(
            "kith_subject_erase", kith=self.kith, contact_id=contact_id
        )
        return sum(
            outcome.count
            for result in results
            for outcome in (result.value if isinstance(result.value, list) else [result.value])
            if isinstance(outcome, ErasureOutcome)
            and outcome.source == "kith"
            and outcome.location == INTERACTION_TABLE
        )


def hold_end(occurred_at: dt.datetime, keep: Duration) -> dt.datetime:
    """When a record of ``occurred_at`` leaves a hold of ``keep``."""
    return add_duration(occurred_at, keep)


async def periodic(kith: Kith) -> None:
    """The worker's periodic job: apply the rules (and release ended holds)."""
    await RetentionRunner(kith).run(channel="worker")
