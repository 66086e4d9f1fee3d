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
- other targets belong to plugins' data, which the plugin that declared them applies; the
  report says so.

Besides the rules, every run releases legal holds whose time is up (the held records are
deleted, the hold's key destroyed, and the nameless contact with them when nothing is left)
and deletes export packages older than ``exports_kept_days``. A dry run changes nothing and
lists what would go. Each subject is erased by a job with a fixed id (rule and contact), so a
run that is interrupted resumes the same jobs next time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from kith.actor import SYSTEM, Actor
from kith.events import utcnow
from kith.logs import get_logger
from kith.privacy.rights.erasure import ErasureService, add_duration
from kith.privacy.rights.export import ExportService
from kith.privacy.rights.registry import personal_fields
from kith.privacy.rights.retention_rules import Duration, RetentionRule
from kith.privacy.encryption.shredding import shred
from kith.privacy.rights.settings import subject_settings
from kith.privacy.rights.tables import LegalHold
from kith.privacy.requests.settings import workflow_settings
from kith.runtime import Kith
from kith.tables import Contact, Interaction
from piccolo.querystring import QueryString

NAMESPACE = uuid.UUID("1b1e0d4e-8f7e-4a5e-a6c9-3c8f1f6f2b7d")
SUBJECT_RULES = ("inactive_contacts", "leads_without_consent")
MAX_SUBJECTS_PER_RULE = 1000
LISTED = 50

log = get_logger("kith.privacy.rights.retention")

_INACTIVE = (
    "SELECT c.id FROM kith_contact c WHERE c.updated_at < {} AND c.created_at < {} "
    "AND NOT EXISTS (SELECT 1 FROM kith_interaction i WHERE i.contact = c.id "
    "AND (i.occurred_at >= {} OR i.updated_at >= {})) "
    "AND NOT EXISTS (SELECT 1 FROM kith_privacy_restriction r WHERE r.contact_id = c.id "
    "AND r.lifted_at IS NULL) "
    "AND NOT EXISTS (SELECT 1 FROM kith_privacy_legal_hold h WHERE h.contact_id = c.id) "
    "ORDER BY c.id LIMIT {}"
)
_LEADS = (
    "SELECT c.id FROM kith_contact c WHERE c.created_at < {} "
    "AND NOT EXISTS (SELECT 1 FROM kith_interaction i WHERE i.contact = c.id "
    "AND i.kind = 'order') "
    "AND NOT EXISTS (SELECT 1 FROM kith_consent_subject s JOIN kith_consent_event e "
    "ON e.subject = s.pseudonym WHERE s.contact = c.id AND e.action = 'given') "
    "AND NOT EXISTS (SELECT 1 FROM kith_privacy_restriction r WHERE r.contact_id = c.id "
    "AND r.lifted_at IS NULL) "
    "AND NOT EXISTS (SELECT 1 FROM kith_privacy_legal_hold h WHERE h.contact_id = c.id) "
    "ORDER BY c.id LIMIT {}"
)


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


def job_id_for(rule: str, contact_id: uuid.UUID) -> uuid.UUID:
    """The erasure job of one rule and contact (the same on every run, so it resumes)."""
    return uuid.uuid5(NAMESPACE, f"{rule}|{contact_id}")


def _as_uuid(value: Any) -> uuid.UUID:
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))


class RetentionRunner:
    def __init__(self, kith: Kith, now: dt.datetime | None = None) -> None:
        self.kith = kith
        self.now = now or utcnow()
        self.holds = subject_settings(kith.settings).legal_holds

    async def _ids(self, sql: str, *args: Any) -> list[uuid.UUID]:
        rows = await self.kith.database.engine.run_querystring(QueryString(sql, *args))
        return [_as_uuid(dict(row)["id"]) for row in rows or []]

    def _interaction_targets(self) -> set[str]:
        targets = set()
        for field in personal_fields(self.kith):
            if field.table == Interaction._meta.tablename:
                targets |= {field.category, field.retention}
        return targets

    async def run(
        self, *, dry_run: bool = False, actor: Actor = SYSTEM, channel: str = "cli"
    ) -> RetentionReport:
        rules = list(workflow_settings(self.kith.settings).retention)
        reports = [await self._rule(rule, dry_run, actor, channel) for rule in rules]
        report = RetentionReport(ran_at=self.now, dry_run=dry_run, rules=reports)
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

    async def _rule(
        self, rule: RetentionRule, dry_run: bool, actor: Actor, channel: str
    ) -> RuleReport:
        cutoff = rule.keep.cutoff(self.now)
        if rule.target in SUBJECT_RULES:
            return await self._subjects(rule, cutoff, dry_run, actor, channel)
        if rule.target in self._interaction_targets():
            return await self._interactions(rule, cutoff, dry_run)
        return RuleReport(
            rule=rule.target,
            keep=str(rule.keep),
            applies_to="plugin data",
            cutoff=cutoff,
            action="none",
            note="no data of Kith's own falls under this target; the plugin that declared it "
            "applies it",
        )

    async def _subjects(
        self, rule: RetentionRule, cutoff: dt.datetime, dry_run: bool, actor: Actor, channel: str
    ) -> RuleReport:
        limit = MAX_SUBJECTS_PER_RULE + 1
        if rule.target == "inactive_contacts":
            ids = await self._ids(_INACTIVE, cutoff, cutoff, cutoff, cutoff, limit)
            applies_to = "contacts untouched, with no interaction, since the cutoff"
        else:
            ids = await self._ids(_LEADS, cutoff, limit)
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

    def _hold_cutoffs(self) -> list[tuple[tuple[str, ...], dt.datetime]]:
        return [(hold.kinds, hold.keep.cutoff(self.now)) for hold in self.holds]

    async def _interactions(
        self, rule: RetentionRule, cutoff: dt.datetime, dry_run: bool
    ) -> RuleReport:
        held_kinds = [kind for kinds, _ in self._hold_cutoffs() for kind in kinds]
        where = (Interaction.occurred_at < cutoff) & Interaction.kind.not_in(held_kinds or [""])
        conditions = [where]
        # Held kinds go only once their legal hold has run out too.
        for kinds, hold_cutoff in self._hold_cutoffs():
            conditions.append(
                (Interaction.occurred_at < min(cutoff, hold_cutoff))
                & Interaction.kind.is_in(list(kinds))
            )
        # Interactions of erased contacts are the legal holds' business.
        shells = LegalHold.select(LegalHold.contact_id).where(LegalHold.released_at.is_null())
        matched = 0
        for condition in conditions:
            query = Interaction.count().where(condition).where(Interaction.contact.not_in(shells))
            matched += int(await query.run())
        report = RuleReport(
            rule=rule.target,
            keep=str(rule.keep),
            applies_to="interactions (calls, emails, notes...) older than the cutoff",
            cutoff=cutoff,
            action="delete interactions",
            matched=matched,
        )
        if dry_run or not matched:
            return report
        for condition in conditions:
            await (
                Interaction.delete()
                .where(condition)
                .where(Interaction.contact.not_in(shells))
                .run()
            )
        report.done = matched
        return report

    async def _release_holds(self, dry_run: bool) -> tuple[int, int]:
        """Delete records whose legal hold ran out; returns (holds released, records)."""
        rows = await LegalHold.select().where(
            (LegalHold.held_until < self.now) & LegalHold.released_at.is_null()
        )
        released = deleted = 0
        for row in rows:
            kinds = row["kinds"]
            if isinstance(kinds, str):
                kinds = msgspec.json.decode(kinds)
            records = Interaction.count().where(
                (Interaction.contact == row["contact_id"]) & Interaction.kind.is_in(list(kinds))
            )
            count = int(await records.run())
            released += 1
            deleted += count
            if dry_run:
                continue
            async with self.kith.unit_of_work():
                await (
                    Interaction.delete()
                    .where(
                        (Interaction.contact == row["contact_id"])
                        & Interaction.kind.is_in(list(kinds))
                    )
                    .run()
                )
                await (
                    LegalHold.update({LegalHold.released_at: self.now})
                    .where(LegalHold.id == row["id"])
                    .run()
                )
                left = await LegalHold.exists().where(
                    (LegalHold.contact_id == row["contact_id"]) & LegalHold.released_at.is_null()
                )
                if not left:
                    await Interaction.delete().where(Interaction.contact == row["contact_id"]).run()
                    await Contact.delete().where(Contact.id == row["contact_id"]).run()
                await shred(self.kith, row["id"], reason="legal hold ended")
        return released, deleted


def hold_end(occurred_at: dt.datetime, keep: Duration) -> dt.datetime:
    """When a record of ``occurred_at`` leaves a hold of ``keep``."""
    return add_duration(occurred_at, keep)


async def periodic(kith: Kith) -> None:
    """The worker's periodic job: apply the rules (and release ended holds)."""
    await RetentionRunner(kith).run(channel="worker")
