"""Erasure (Art. 17 GDPR): a preview of every location, then a resumable job that touches them.

One erasure of one subject runs as a fixed list of steps. The preview asks every step what it
would do (location, method, count, ground) without changing anything; execution runs the same
steps in order. Each step is recorded as finished (``kith_privacy_erasure_step``) in the same
transaction as its work, so a job killed at any point resumes with the first unfinished step and
a finished step is never repeated. Steps that may reach other systems (recipients, plugins) run
in a transaction each; the steps that only touch this database run together in one. The steps:

1. recipients: every registered recipient is told (Art. 19), before plugins forget who got what;
2. suppression: keyed hashes of the person's emails and phones stay on the suppression list;
3. legal holds: interactions a law requires to keep (``[privacy.legal_holds]``) are recorded
   as held; core keeps them, re-encrypted under the hold's own key and restricted, not erased;
   then the data keys of contacts merged into this one are destroyed (what they sealed lives
   on only in older backups and in records kept as evidence);
4. one step per source answering ``kith_subject_erase`` (previewed by
   ``kith_subject_erase_preview``), core's own last: core deletes the contact, its emails and
   phones with their blind indexes, its interactions and its settled events (the contact stays
   as a nameless shell while records are held); this plugin keeps the consent ledger as
   evidence, linked to nobody, and deletes restrictions;
5. exports: export packages written for the person are deleted;
6. records kept under the person's key (audit details, rectifications, suppression overrides)
   and logs (which name subjects by id only) are listed;
7. the data key is destroyed (crypto-shredding): what is left anywhere, backups included,
   becomes unreadable;
8. finish: ``subject.erased`` is published and the audit log records the erasure.

The certificate lists every entry. Retention applies the same machinery (origin ``retention``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from kith import (
    SYSTEM,
    Actor,
    ErasureOutcome,
    InteractionService,
    Kith,
    NotFound,
    SubjectHold,
    get_logger,
    utcnow,
)
from kith.merge_records import merged_subjects
from kith.privacy.encryption.errors import SubjectErased
from kith.privacy.encryption.key_usage import rows_under_subject_key
from kith.privacy.encryption.shredding import shred
from kith.privacy.encryption.tables import DataKey
from kith.privacy.rights import recipients as recipient_notices
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.consent import ConsentService
from kith.privacy.rights.export import exports_folder
from kith.privacy.rights.outcomes import CertificateEntry, PlannedAction
from kith.privacy.rights.retention_rules import Duration
from kith.privacy.rights.settings import LegalHoldRule, rights_settings
from kith.privacy.rights.suppression import SuppressionList
from kith.privacy.rights.tables import (
    AuditEntry,
    ErasureJob,
    ErasureStep,
    ExportPackage,
    LegalHold,
    Rectification,
    Restriction,
    SuppressionOverride,
)

ERASED_EVENT = "subject.erased"
SOURCE_CORE = "kith"
SOURCE_PRIVACY = "kith.privacy"
ERASURE_JOB_TABLE = ErasureJob._meta.tablename

log = get_logger("kith.privacy.rights.erasure")

Entries = list[CertificateEntry]


@dataclass(frozen=True)
class Step:
    """One step: what it would do (preview) and doing it (execute)."""

    name: str
    preview: Callable[[], Awaitable[list[PlannedAction]]]
    execute: Callable[[], Awaitable[Entries]]
    # Local steps only touch this database: consecutive ones share one transaction. Steps
    # that may reach other systems (recipients, plugins) get a transaction each.
    local: bool = True


def _planned(entry: CertificateEntry | ErasureOutcome) -> PlannedAction:
    return PlannedAction(
        source=entry.source,
        location=entry.location,
        method=entry.method,
        count=int(entry.count),
        ground=entry.ground,
    )


def _entry(
    source: str, location: str, method: str, count: int = 0, ground: str | None = None
) -> CertificateEntry:
    return CertificateEntry(
        source=source, location=location, method=method, count=int(count), ground=ground
    )


def _from_outcome(outcome: ErasureOutcome) -> CertificateEntry:
    return CertificateEntry(
        source=outcome.source,
        location=outcome.location,
        method=outcome.method,
        count=int(outcome.count),
        ground=outcome.ground,
        outcome="not_applicable" if outcome.method == "not_present" else "done",
    )


def add_duration(moment: dt.datetime, keep: Duration) -> dt.datetime:
    """``moment`` plus a retention period (calendar months clamp to the month's end)."""
    if keep.unit == "days":
        return moment + dt.timedelta(days=keep.amount)
    year, month = divmod(moment.year * 12 + (moment.month - 1) + keep.amount, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last))


async def _count(query: Any) -> int:
    return int(await query.run())


def hold_id(job_id: uuid.UUID, rule: LegalHoldRule) -> uuid.UUID:
    """The legal hold of one rule in one erasure job: the subject its records are sealed for."""
    return uuid.uuid5(job_id, f"legal-hold:{rule.name}")


# -- this plugin's answers for erasure -------------------------------------------------------


async def legal_holds(kith: Kith, contact_id: uuid.UUID) -> list[SubjectHold]:
    """``kith_subject_holds``: what the legal holds keep of this subject. Once an erasure
    recorded holds for the subject, those still running (the records they held then);
    before, what each rule of ``[privacy.legal_holds]`` would keep now (a preview)."""
    rules = {rule.name: rule for rule in rights_settings(kith.settings).holds()}
    recorded = await LegalHold.select().where(LegalHold.contact_id == contact_id)
    if not recorded:
        now = utcnow()
        return [
            SubjectHold(
                kinds=rule.kinds, since=rule.keep.cutoff(now), seal_for=hold_id(contact_id, rule)
            )
            for rule in rules.values()
        ]
    holds = []
    for row in recorded:
        if row["released_at"] is not None:
            continue
        rule = rules.get(row["rule"])
        holds.append(
            SubjectHold(
                kinds=tuple(_kinds(row["kinds"])),
                # The records the hold kept when it was made; all of its kinds if its rule
                # has gone from the settings since.
                since=rule.keep.cutoff(_aware(row["created_at"])) if rule else None,
                seal_for=row["id"],
            )
        )
    return holds


def _kinds(value: Any) -> list[str]:
    return list(msgspec.json.decode(value) if isinstance(value, str) else value)


def _aware(value: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


async def erase_rights_records(
    kith: Kith, contact_id: uuid.UUID, *, dry_run: bool = False
) -> list[ErasureOutcome]:
    """``kith_subject_erase`` (or its preview): the consent ledger is kept as evidence but
    linked to nobody; the person's restrictions go."""
    outcomes = await ConsentService(kith).anonymise_subject(contact_id, dry_run=dry_run)
    where = Restriction.contact_id == contact_id
    restrictions = await _count(Restriction.count().where(where))
    if not dry_run:
        await Restriction.delete().where(where).run()
    outcomes.append(
        ErasureOutcome(
            source=SOURCE_PRIVACY,
            location=Restriction._meta.tablename,
            method="deleted",
            count=restrictions,
        )
    )
    return outcomes


# -- the steps of one erasure ----------------------------------------------------------------


class SubjectErasure:
    """The steps of erasing one subject; :meth:`preview` and :meth:`run` use the same list."""

    def __init__(self, kith: Kith, contact_id: uuid.UUID, job_id: uuid.UUID) -> None:
        self.kith = kith
        self.contact_id = contact_id
        self.job_id = job_id
        self.holds = rights_settings(kith.settings).holds()
        self.now = utcnow()

    def steps(self) -> list[Step]:
        steps = [
            Step("recipients", self._recipients_preview, self._recipients, local=False),
            Step("suppression", self._suppression_preview, self._suppression),
            Step("legal_holds", self._holds_preview, self._holds),
            Step("merged_keys", self._merged_keys_preview, self._merged_keys),
        ]
        for name in self._sources():
            steps.append(
                Step(
                    f"plugin:{name}",
                    self._source_preview(name),
                    self._source_erase(name),
                    local=False,
                )
            )
        steps += [
            Step("exports", self._exports_preview, self._exports),
            Step("records", self._records_preview, self._records),
            Step("data_key", self._key_preview, self._key),
        ]
        return steps

    # recipients

    async def _recipients_preview(self) -> list[PlannedAction]:
        return await recipient_notices.preview(self.kith, self.contact_id, "erasure")

    async def _recipients(self) -> Entries:
        return await recipient_notices.notify(
            self.kith, self.contact_id, "erasure", key=f"erasure:{self.job_id}"
        )

    # suppression

    def _suppression_entry(self, count: int) -> CertificateEntry:
        return _entry(
            SOURCE_PRIVACY,
            "kith_privacy_suppression",
            "keyed_hash_kept",
            count,
            "a keyed hash of each email and phone is kept so that the person is not added "
            "again by accident (it identifies nobody)",
        )

    async def _suppression_preview(self) -> list[PlannedAction]:
        values = await SuppressionList(self.kith).values_of(self.contact_id)
        return [_planned(self._suppression_entry(len(values)))]

    async def _suppression(self) -> Entries:
        suppression = SuppressionList(self.kith)
        values = await suppression.values_of(self.contact_id)
        for kind, value in values:
            await suppression.add(kind, value, "erasure")
        return [self._suppression_entry(len(values))]

    # legal holds: recorded here, kept by core (kith_subject_holds)

    def _hold_entry(self, rule: LegalHoldRule, count: int) -> CertificateEntry:
        return _entry(
            SOURCE_CORE,
            f"kith_interaction ({', '.join(rule.kinds)})",
            "legal_hold",
            count,
            f"{rule.ground} (rule {rule.name}: kept {rule.keep} from their date, restricted, "
            "then erased)",
        )

    async def _held(self, rule: LegalHoldRule) -> tuple[int, dt.datetime | None]:
        return await InteractionService(self.kith).count_and_latest(
            self.contact_id, kinds=rule.kinds, since=rule.keep.cutoff(self.now)
        )

    async def _holds_preview(self) -> list[PlannedAction]:
        planned = []
        for rule in self.holds:
            count, _ = await self._held(rule)
            if count:
                planned.append(_planned(self._hold_entry(rule, count)))
        return planned

    async def _holds(self) -> Entries:
        entries = []
        for rule in self.holds:
            count, latest = await self._held(rule)
            if not count or latest is None:
                continue
            await (
                LegalHold.insert(
                    LegalHold(
                        id=hold_id(self.job_id, rule),
                        contact_id=self.contact_id,
                        rule=rule.name,
                        ground=rule.ground,
                        kinds=list(rule.kinds),
                        held_count=count,
                        held_until=add_duration(latest, rule.keep),
                        created_at=self.now,
                        job_id=self.job_id,
                    )
                )
                .on_conflict(action="DO NOTHING")
                .run()
            )
            entries.append(self._hold_entry(rule, count))
        return entries

    # contacts merged into this one: their data keys go now, before core deletes the merges

    def _merged_keys_entry(self, count: int) -> CertificateEntry:
        return _entry(
            SOURCE_PRIVACY,
            "kith_privacy_data_key (contacts merged into this one)",
            "crypto_shredded",
            count,
            "the data keys of the duplicate records merged into this contact are destroyed: "
            "what was sealed under them (older backups, kept records) can never be read again",
        )

    async def _merged_keys_preview(self) -> list[PlannedAction]:
        merged = await merged_subjects(self.contact_id)
        if not merged:
            return []
        count = await _count(DataKey.count().where(DataKey.subject.is_in(merged)))
        return [_planned(self._merged_keys_entry(count))]

    async def _merged_keys(self) -> Entries:
        merged = await merged_subjects(self.contact_id)
        if not merged:
            return []
        count = await _count(DataKey.count().where(DataKey.subject.is_in(merged)))
        for subject in merged:
            try:
                await shred(self.kith, subject, reason=f"erasure {self.job_id} (merged)")
            except NotFound:
                continue
        return [self._merged_keys_entry(count)]

    # every source answering kith_subject_erase, core's own last

    def _sources(self) -> list[str]:
        plugins = self.kith.plugins
        return [] if plugins is None else plugins.implementers("kith_subject_erase")

    def _source_preview(self, name: str) -> Callable[[], Awaitable[list[PlannedAction]]]:
        async def run() -> list[PlannedAction]:
            assert self.kith.plugins is not None
            if name not in self.kith.plugins.implementers("kith_subject_erase_preview"):
                return [
                    PlannedAction(
                        source=name,
                        location="(whatever the plugin holds)",
                        method="plugin_decides",
                        ground="the plugin offers no preview (kith_subject_erase_preview); "
                        "what it did is in the certificate",
                    )
                ]
            outcomes = await self.kith.plugins.call_one(
                name, "kith_subject_erase_preview", kith=self.kith, contact_id=self.contact_id
            )
            return [_planned(o) for o in _outcomes(outcomes)]

        return run

    def _source_erase(self, name: str) -> Callable[[], Awaitable[Entries]]:
        async def run() -> Entries:
            assert self.kith.plugins is not None
            answer = await self.kith.plugins.call_one(
                name, "kith_subject_erase", kith=self.kith, contact_id=self.contact_id
            )
            outcomes = _outcomes(answer)
            if not outcomes:
                return [_entry(name, "(nothing reported)", "not_present")]
            return [_from_outcome(o) for o in outcomes]

        return run

    # exports

    def _exports_query(self) -> Any:
        return ExportPackage.select(ExportPackage.id, ExportPackage.file_name).where(
            (ExportPackage.contact_id == self.contact_id) & ExportPackage.deleted_at.is_null()
        )

    def _exports_entry(self, count: int) -> CertificateEntry:
        return _entry(
            SOURCE_PRIVACY,
            "export packages (KITH_HOME/exports)",
            "deleted",
            count,
            "packages are sealed under a key the person's data key protects: a copy kept "
            "anywhere else can no longer be opened",
        )

    async def _exports_preview(self) -> list[PlannedAction]:
        return [_planned(self._exports_entry(len(await self._exports_query().run())))]

    async def _exports(self) -> Entries:
        rows = await self._exports_query().run()
        folder = exports_folder(self.kith)
        for row in rows:
            (folder / row["file_name"]).unlink(missing_ok=True)
        if rows:
            await (
                ExportPackage.update({ExportPackage.deleted_at: self.now})
                .where(ExportPackage.id.is_in([row["id"] for row in rows]))
                .run()
            )
        return [self._exports_entry(len(rows))]

    # records kept under the person's key, and logs

    async def _records_entries(self) -> Entries:
        shredded = "crypto_shredded"
        # Reports still queued are written first, so that they are counted.
        await AuditLog(self.kith).settle()
        # Counted by the key inside each record: those are what destroying the key makes
        # unreadable, whichever subject a row names.
        audit = await rows_under_subject_key(self.contact_id, AuditEntry, [AuditEntry.details])
        rectifications = await rows_under_subject_key(
            self.contact_id, Rectification, [Rectification.patch]
        )
        overrides = await rows_under_subject_key(
            self.contact_id, SuppressionOverride, [SuppressionOverride.reason]
        )
        kept = "the record is kept as evidence; its text becomes unreadable with the data key"
        return [
            _entry(SOURCE_PRIVACY, "kith_privacy_audit (details)", shredded, audit, kept),
            _entry(SOURCE_PRIVACY, "kith_privacy_rectification", shredded, rectifications, kept),
            _entry(SOURCE_PRIVACY, "kith_privacy_suppression_override", shredded, overrides, kept),
            _entry(
                SOURCE_CORE,
                "logs",
                "redacted_at_source",
                0,
                "logs name data subjects by id only; personal fields, emails and phone numbers "
                "are removed before a line is written",
            ),
        ]

    async def _records_preview(self) -> list[PlannedAction]:
        return [_planned(e) for e in await self._records_entries()]

    async def _records(self) -> Entries:
        return await self._records_entries()

    # the data key

    def _key_entry(self, count: int) -> CertificateEntry:
        return _entry(
            SOURCE_PRIVACY,
            "kith_privacy_data_key",
            "crypto_shredded",
            count,
            "the person's data key is destroyed: whatever was encrypted under it, here and in "
            "backups, can never be read again",
        )

    async def _key_preview(self) -> list[PlannedAction]:
        keys = await _count(DataKey.count().where(DataKey.subject == self.contact_id))
        return [_planned(self._key_entry(keys))]

    async def _key(self) -> Entries:
        keys = await _count(DataKey.count().where(DataKey.subject == self.contact_id))
        try:
            await shred(self.kith, self.contact_id, reason=f"erasure {self.job_id}")
        except NotFound:
            keys = 0
        return [self._key_entry(keys)]


def _outcomes(answer: Any) -> list[ErasureOutcome]:
    if answer is None:
        return []
    if isinstance(answer, ErasureOutcome):
        return [answer]
    return [value for value in answer if isinstance(value, ErasureOutcome)]


# -- the job ---------------------------------------------------------------------------------


def _groups(steps: list[tuple[int, Step]]) -> list[list[tuple[int, Step]]]:
    """Consecutive local steps together, every other step on its own."""
    groups: list[list[tuple[int, Step]]] = []
    for item in steps:
        if item[1].local and groups and groups[-1][-1][1].local:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


class ErasureOut(msgspec.Struct, kw_only=True):
    job_id: uuid.UUID
    contact_id: uuid.UUID
    state: str
    entries: list[CertificateEntry]
    resumed_steps: int = 0


class ErasureService:
    """Previews and runs erasures. A job is named by its id: the request id for a request,
    a fixed id for a retention rule and contact, so running it again resumes it."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    async def preview(
        self, contact_id: uuid.UUID, job_id: uuid.UUID | None = None
    ) -> list[PlannedAction]:
        # Reports still queued count among the records the erasure lists.
        await AuditLog(self.kith).settle()
        erasure = SubjectErasure(self.kith, contact_id, job_id or uuid.uuid4())
        planned: list[PlannedAction] = []
        for step in erasure.steps():
            planned += await step.preview()
        return planned

    async def run(
        self,
        contact_id: uuid.UUID,
        *,
        job_id: uuid.UUID,
        actor: Actor = SYSTEM,
        origin: str = "request",
        request_id: uuid.UUID | None = None,
        rule: str | None = None,
        channel: str = "cli",
        after_step: Callable[[str], Awaitable[None]] | None = None,
    ) -> ErasureOut:
        """Run (or resume) erasure job ``job_id``; returns every entry for the certificate.
        ``after_step`` is awaited after each step, inside its transaction (tests stop the
        process there)."""
        # Reports still queued are written before the steps count them and the key goes.
        await AuditLog(self.kith).settle()
        job = await ErasureJob.select().where(ErasureJob.id == job_id).first().run()
        if job is None:
            await (
                ErasureJob.insert(
                    ErasureJob(
                        id=job_id,
                        contact_id=contact_id,
                        origin=origin,
                        request_id=request_id,
                        rule=rule,
                        state="running",
                        actor=actor.ref,
                        started_at=utcnow(),
                    )
                )
                .on_conflict(action="DO NOTHING")
                .run()
            )
        elif job["contact_id"] != contact_id:
            raise ValueError(f"erasure job {job_id} is about another contact")
        finished = {
            row["step"]: row
            for row in await ErasureStep.select().where(ErasureStep.job == job_id).run()
        }
        erasure = SubjectErasure(self.kith, contact_id, job_id)
        entries: Entries = []
        resumed = 0
        for group in _groups(list(enumerate(erasure.steps()))):
            todo = []
            for position, step in group:
                done = finished.get(step.name)
                if done is None:
                    todo.append((position, step))
                    continue
                resumed += 1
                stored = done["entries"]
                if isinstance(stored, str):
                    stored = msgspec.json.decode(stored)
                entries += msgspec.convert(stored, list[CertificateEntry])
            if not todo:
                continue
            current = todo[0][1].name
            try:
                async with self.kith.unit_of_work(actor):
                    records = []
                    for position, step in todo:
                        current = step.name
                        produced = await step.execute()
                        records.append(
                            ErasureStep(
                                job=job_id,
                                step=step.name,
                                position=position,
                                entries=msgspec.to_builtins(produced),
                                finished_at=utcnow(),
                            )
                        )
                        entries += produced
                        if after_step is not None:
                            await after_step(step.name)
                    await ErasureStep.insert(*records).run()
            except Exception as exc:
                error = await self._sealed_error(
                    contact_id, job_id, f"{current}: {type(exc).__name__}: {exc}"[:2000]
                )
                await (
                    ErasureJob.update({ErasureJob.last_error: error})
                    .where(ErasureJob.id == job_id)
                    .run()
                )
                log.warning(
                    "erasure step failed",
                    job_id=str(job_id),
                    contact_id=str(contact_id),
                    step=current,
                    error_type=type(exc).__name__,
                )
                raise
        if job is None or job["state"] != "done":
            async with self.kith.unit_of_work(actor) as uow:
                await AuditLog(self.kith).record(
                    contact_id,
                    "erase",
                    actor=actor,
                    channel=channel,
                    request_id=request_id,
                )
                updated = (
                    await ErasureJob.update(
                        {
                            ErasureJob.state: "done",
                            ErasureJob.finished_at: utcnow(),
                            ErasureJob.last_error: None,
                        }
                    )
                    .where((ErasureJob.id == job_id) & (ErasureJob.state != "done"))
                    .returning(ErasureJob.id)
                    .run()
                )
                if updated:
                    uow.publish(
                        ERASED_EVENT,
                        contact_id,
                        contact_id=str(contact_id),
                        job_id=str(job_id),
                    )
            log.info(
                "subject erased", contact_id=str(contact_id), job_id=str(job_id), origin=origin
            )
        return ErasureOut(
            job_id=job_id,
            contact_id=contact_id,
            state="done",
            entries=entries,
            resumed_steps=resumed,
        )

    async def _sealed_error(
        self, contact_id: uuid.UUID, job_id: uuid.UUID, text: str
    ) -> str | None:
        """A step's error sealed under the person's key, like a request's. When their key is
        already destroyed nothing new can be sealed for them: the text is dropped (the log
        names the step and the error's type)."""
        try:
            sealed = await self.kith.protector.protect(
                contact_id, ERASURE_JOB_TABLE, job_id, {"last_error": text}
            )
        except SubjectErased:
            return None
        return sealed["last_error"]

    async def jobs(self, contact_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
        """Erasure jobs, newest first, their last error opened (``[erased]`` once the
        person's key is destroyed)."""
        query = ErasureJob.select().order_by(ErasureJob.started_at, ascending=False)
        if contact_id is not None:
            query = query.where(ErasureJob.contact_id == contact_id)
        rows = list(await query.run())
        for row in rows:
            if row["last_error"] is not None:
                opened = await self.kith.protector.reveal(
                    row["contact_id"],
                    ERASURE_JOB_TABLE,
                    row["id"],
                    {"last_error": row["last_error"]},
                )
                row["last_error"] = opened["last_error"]
        return rows
