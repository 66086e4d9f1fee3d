"""Erasure (Art. 17 GDPR): a preview of every location, then a resumable job that touches them.

One erasure of one subject runs as a fixed list of steps. The preview asks every step what it
would do (location, method, count, ground) without changing anything; execution runs the same
steps in order. Each step is recorded as finished (``kith_privacy_erasure_step``) in the same
transaction as its work, so a job killed at any point resumes with the first unfinished step and
a finished step is never repeated. Steps that may reach other systems (recipients, plugins) run
in a transaction each; the steps that only touch this database run together in one. The steps:

1. recipients: every registered recipient is told (Art. 19), before plugins forget who got what;
2. one step per plugin answering ``kith_subject_erase`` (previewed by
   ``kith_subject_erase_preview``); the privacy plugin's own keeps the consent ledger as
   evidence, linked to nobody;
3. suppression: keyed hashes of the person's emails and phones stay on the suppression list;
4. legal holds: interactions a law requires to keep (settings: ``[privacy.legal_holds]``) are
   re-encrypted under a key of their own and restricted, not erased;
5. core: contact points and their blind indexes, interactions and the contact are deleted (the
   contact stays as a nameless shell while records are held), restrictions with it;
6. outbox: settled events about the person (ids only) and their deliveries are deleted;
7. exports: export packages written for the person are deleted;
8. records kept under the person's key (audit details, request notes, rectifications,
   suppression overrides) and logs (which name subjects by id only) are listed;
9. the data key is destroyed (crypto-shredding): what is left anywhere, backups included,
   becomes unreadable;
10. finish: ``subject.erased`` is published and the audit log records the erasure.

The certificate lists every entry. Retention applies the same machinery (origin ``retention``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from kith.actor import SYSTEM, Actor
from kith.errors import NotFound
from kith.events import EventType, utcnow
from kith.logs import get_logger
from kith.privacy.rights import recipients as recipient_notices
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.export import exports_folder
from kith.privacy.requests.service import CertificateEntry, PlannedAction, RequestJob
from kith.privacy.rights.retention_rules import Duration
from kith.privacy.encryption.shredding import shred
from kith.privacy.rights.settings import LegalHoldRule, subject_settings
from kith.privacy.rights.tables import (
    ErasureJob,
    ErasureStep,
    ExportPackage,
    LegalHold,
    Rectification,
    Restriction,
    SuppressionOverride,
)
from kith.privacy.rights.suppression import SuppressionList
from kith.privacy.encryption.tables import DataKey
from kith.privacy.requests.tables import SubjectRequest
from kith.runtime import Kith
from kith.subjects import ErasureOutcome
from kith.tables import Contact, ContactPoint, EventSubscription, Interaction
from piccolo.querystring import QueryString

ERASED_EVENT = EventType(
    "subject.erased",
    "A data subject was erased (records under a legal hold may remain, restricted).",
    ("contact_id", "job_id"),
)
SOURCE_CORE = "kith"
SOURCE_PRIVACY = "kith.privacy"
ERASED_NAME = "[erased]"
# Events of the request workflow and of subject rights stay: they document the request itself.
_KEPT_EVENT_PREFIX = "subject"

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


async def _raw(kith: Kith, sql: str, *args: Any) -> list[dict[str, Any]]:
    rows = await kith.database.engine.run_querystring(QueryString(sql, *args))
    return [dict(row) for row in rows or []]


async def _settle_plugin_answer(value: Any) -> list[ErasureOutcome]:
    if inspect.isawaitable(value):
        value = await value
    if value is None:
        return []
    if isinstance(value, ErasureOutcome):
        return [value]
    return [v for v in value if isinstance(v, ErasureOutcome)]


class SubjectErasure:
    """The steps of erasing one subject; :meth:`preview` and :meth:`run` use the same list."""

    def __init__(self, kith: Kith, contact_id: uuid.UUID, job_id: uuid.UUID) -> None:
        self.kith = kith
        self.contact_id = contact_id
        self.job_id = job_id
        self.settings = subject_settings(kith.settings)
        self.now = utcnow()

    # -- the steps -------------------------------------------------------------------------

    def steps(self) -> list[Step]:
        steps = [Step("recipients", self._recipients_preview, self._recipients, local=False)]
        for plugin_name, erase, preview in self._plugins():
            steps.append(
                Step(
                    f"plugin:{plugin_name}",
                    self._plugin_preview(plugin_name, preview),
                    self._plugin_execute(plugin_name, erase),
                    local=False,
                )
            )
        steps += [
            Step("suppression", self._suppression_preview, self._suppression),
            Step("legal_holds", self._holds_preview, self._holds),
            Step("core", self._core_preview, self._core),
            Step("outbox", self._outbox_preview, self._outbox),
            Step("exports", self._exports_preview, self._exports),
            Step("records", self._records_preview, self._records),
            Step("data_key", self._key_preview, self._key),
        ]
        return steps

    # suppression

    async def _suppression_preview(self) -> list[PlannedAction]:
        points = await _count(ContactPoint.count().where(ContactPoint.contact == self.contact_id))
        return [_planned(self._suppression_entry(points))]

    def _suppression_entry(self, count: int) -> CertificateEntry:
        return _entry(
            SOURCE_PRIVACY,
            "kith_privacy_suppression",
            "keyed_hash_kept",
            count,
            "a keyed hash of each email and phone is kept so that the person is not added "
            "again by accident (it identifies nobody)",
        )

    async def _suppression(self) -> Entries:
        suppression = SuppressionList(self.kith)
        values = await suppression.values_of(self.contact_id)
        for kind, value in values:
            await suppression.add(kind, value, "erasure")
        return [self._suppression_entry(len(values))]

    # recipients

    async def _recipients_preview(self) -> list[PlannedAction]:
        return recipient_notices.preview(self.kith, "erasure")

    async def _recipients(self) -> Entries:
        return await recipient_notices.notify(
            self.kith, self.contact_id, "erasure", key=f"erasure:{self.job_id}"
        )

    # plugins

    def _plugins(self) -> list[tuple[str, Callable[..., Any], Callable[..., Any] | None]]:
        manager = self.kith.plugins
        if manager is None:
            return []
        previews = {
            impl.plugin_name: impl
            for impl in manager.hook.kith_subject_erase_preview.get_hookimpls()
        }
        found = []
        # pluggy lists implementations last-called first; erase in call order.
        for impl in reversed(manager.hook.kith_subject_erase.get_hookimpls()):
            preview = previews.get(impl.plugin_name)
            found.append(
                (
                    impl.plugin_name,
                    self._bind(impl),
                    self._bind(preview) if preview is not None else None,
                )
            )
        return found

    def _bind(self, impl: Any) -> Callable[[], Any]:
        arguments = {"kith": self.kith, "contact_id": self.contact_id}

        def call() -> Any:
            return impl.function(**{name: arguments[name] for name in impl.argnames})

        return call

    def _plugin_preview(
        self, name: str, preview: Callable[[], Any] | None
    ) -> Callable[[], Awaitable[list[PlannedAction]]]:
        async def run() -> list[PlannedAction]:
            if preview is None:
                return [
                    PlannedAction(
                        source=name,
                        location="(whatever the plugin holds)",
                        method="plugin_decides",
                        ground="the plugin offers no preview (kith_subject_erase_preview); "
                        "what it did is in the certificate",
                    )
                ]
            return [_planned(o) for o in await _settle_plugin_answer(preview())]

        return run

    def _plugin_execute(
        self, name: str, erase: Callable[[], Any]
    ) -> Callable[[], Awaitable[Entries]]:
        async def run() -> Entries:
            outcomes = await _settle_plugin_answer(erase())
            if not outcomes:
                return [_entry(name, "(nothing reported)", "not_present")]
            return [_from_outcome(o) for o in outcomes]

        return run

    # legal holds

    def _hold_query(self, rule: LegalHoldRule, columns: tuple[Any, ...] = ()) -> Any:
        cutoff = rule.keep.cutoff(self.now)
        query = Interaction.select(*columns) if columns else Interaction.count()
        return query.where(
            (Interaction.contact == self.contact_id)
            & Interaction.kind.is_in(list(rule.kinds))
            & (Interaction.occurred_at >= cutoff)
        )

    def _hold_entry(self, rule: LegalHoldRule, count: int) -> CertificateEntry:
        return _entry(
            SOURCE_CORE,
            f"kith_interaction ({', '.join(rule.kinds)})",
            "legal_hold",
            count,
            f"{rule.ground} (rule {rule.name}: kept {rule.keep} from their date, restricted, "
            "then erased)",
        )

    async def _holds_preview(self) -> list[PlannedAction]:
        planned = []
        for rule in self.settings.legal_holds:
            count = await _count(self._hold_query(rule))
            if count:
                planned.append(_planned(self._hold_entry(rule, count)))
        return planned

    def hold_id(self, rule: LegalHoldRule) -> uuid.UUID:
        return uuid.uuid5(self.job_id, f"legal-hold:{rule.name}")

    async def _holds(self) -> Entries:
        entries = []
        table = Interaction._meta.tablename
        for rule in self.settings.legal_holds:
            rows = await self._hold_query(
                rule,
                (Interaction.id, Interaction.summary, Interaction.body, Interaction.occurred_at),
            ).run()
            if not rows:
                continue
            hold_id = self.hold_id(rule)
            latest = max(row["occurred_at"] for row in rows)
            if isinstance(latest, str):
                latest = dt.datetime.fromisoformat(latest)
            # Re-encrypted under the hold's own key, so the person's key can be destroyed.
            for row in rows:
                text = await self.kith.protector.reveal(
                    self.contact_id,
                    table,
                    row["id"],
                    {"summary": row["summary"], "body": row["body"]},
                )
                sealed = await self.kith.protector.protect(hold_id, table, row["id"], text)
                await (
                    Interaction.update(
                        {Interaction.summary: sealed["summary"], Interaction.body: sealed["body"]}
                    )
                    .where(Interaction.id == row["id"])
                    .run()
                )
            await (
                LegalHold.insert(
                    LegalHold(
                        id=hold_id,
                        contact_id=self.contact_id,
                        rule=rule.name,
                        ground=rule.ground,
                        kinds=list(rule.kinds),
                        held_count=len(rows),
                        held_until=add_duration(latest, rule.keep),
                        created_at=self.now,
                        job_id=self.job_id,
                    )
                )
                .on_conflict(action="DO NOTHING")
                .run()
            )
            entries.append(self._hold_entry(rule, len(rows)))
        return entries

    async def held_ids(self) -> list[uuid.UUID]:
        rows = await (
            LegalHold.select(LegalHold.id)
            .where((LegalHold.contact_id == self.contact_id) & LegalHold.released_at.is_null())
            .run()
        )
        return [row["id"] for row in rows]

    async def _held_interactions(self) -> list[uuid.UUID]:
        """Interactions sealed under a hold key (after the holds step) or due to be."""
        ids: list[uuid.UUID] = []
        for rule in self.settings.legal_holds:
            ids += [row["id"] for row in await self._hold_query(rule, (Interaction.id,)).run()]
        return ids

    # core

    async def _core_counts(self) -> dict[str, int]:
        held = len(await self._held_interactions()) if await self._will_hold() else 0
        total = await _count(Interaction.count().where(Interaction.contact == self.contact_id))
        return {
            "points": await _count(
                ContactPoint.count().where(ContactPoint.contact == self.contact_id)
            ),
            "interactions": total - held,
            "held": held,
            "contact": await _count(Contact.count().where(Contact.id == self.contact_id)),
            "restrictions": await _count(
                Restriction.count().where(Restriction.contact_id == self.contact_id)
            ),
        }

    async def _will_hold(self) -> bool:
        return bool(self.settings.legal_holds)

    def _core_entries(self, counts: dict[str, int]) -> Entries:
        contact_method = "deleted"
        ground = None
        if counts["held"] and counts["contact"]:
            contact_method = "anonymised"
            ground = (
                "kept as a nameless shell for the records under legal hold: name, tags, "
                "owner and organization link erased"
            )
        return [
            _entry(SOURCE_CORE, "kith_contact_point", "deleted", counts["points"]),
            _entry(
                SOURCE_CORE,
                "blind indexes (kith_contact_point.lookup)",
                "deleted",
                counts["points"],
            ),
            _entry(SOURCE_CORE, "kith_interaction", "deleted", counts["interactions"]),
            _entry(SOURCE_CORE, "kith_contact", contact_method, counts["contact"], ground),
            _entry(SOURCE_PRIVACY, "kith_privacy_restriction", "deleted", counts["restrictions"]),
        ]

    async def _core_preview(self) -> list[PlannedAction]:
        return [_planned(e) for e in self._core_entries(await self._core_counts())]

    async def _core(self) -> Entries:
        counts = await self._core_counts()
        held = await self._held_interactions() if counts["held"] else []
        await ContactPoint.delete().where(ContactPoint.contact == self.contact_id).run()
        await Restriction.delete().where(Restriction.contact_id == self.contact_id).run()
        if held:
            await (
                Interaction.delete()
                .where((Interaction.contact == self.contact_id) & Interaction.id.not_in(held))
                .run()
            )
            hold_ids = await self.held_ids()
            names = await self.kith.protector.protect(
                hold_ids[0],
                Contact._meta.tablename,
                self.contact_id,
                {"display_name": ERASED_NAME},
            )
            await (
                Contact.update(
                    {
                        Contact.display_name: names["display_name"],
                        Contact.given_name: None,
                        Contact.family_name: None,
                        Contact.tags: [],
                        Contact.owner: None,
                        Contact.organization: None,
                        Contact.archived: True,
                        Contact.updated_at: self.now,
                    }
                )
                .where(Contact.id == self.contact_id)
                .run()
            )
        else:
            await Interaction.delete().where(Interaction.contact == self.contact_id).run()
            await Contact.delete().where(Contact.id == self.contact_id).run()
        return self._core_entries(counts)

    # outbox

    async def _unsettled_events(self) -> list[Any]:
        """Events of the subject still being delivered (a pending or queued delivery). Found
        through the outbox's partial indexes on (subscriber, contact), so this stays cheap
        however many events the subject had."""
        names = [row["name"] for row in await EventSubscription.select(EventSubscription.name)]
        if not names:
            return []
        marks = ", ".join(["{}"] * len(names))
        found: list[Any] = []
        for state in ("pending", "queued"):
            rows = await _raw(
                self.kith,
                f"SELECT event FROM kith_event_delivery WHERE state = '{state}' "
                f"AND subscriber IN ({marks}) AND contact_id = {{}}",
                *names,
                self.contact_id,
            )
            found += [row["event"] for row in rows]
        return found

    async def _settled(self) -> tuple[str, list[Any]]:
        """The WHERE clause (and its arguments) of the subject's settled events."""
        unsettled = await self._unsettled_events()
        where = "contact_id = {} AND fanned_out_at IS NOT NULL AND name NOT LIKE 'subject%'"
        if unsettled:
            where += f" AND id NOT IN ({', '.join(['{}'] * len(unsettled))})"
        return where, [self.contact_id, *unsettled]

    async def _outbox_counts(self, where: str, args: list[Any]) -> tuple[int, int]:
        events = await _raw(self.kith, f"SELECT count(*) AS n FROM kith_event WHERE {where}", *args)
        deliveries = await _raw(
            self.kith,
            "SELECT count(*) AS n FROM kith_event_delivery WHERE event IN "
            f"(SELECT id FROM kith_event WHERE {where})",
            *args,
        )
        return int(events[0]["n"]), int(deliveries[0]["n"])

    def _outbox_entries(self, events: int, deliveries: int) -> Entries:
        ground = "ids only; events still being delivered are left to finish"
        return [
            _entry(SOURCE_CORE, "kith_event", "deleted", events, ground),
            _entry(SOURCE_CORE, "kith_event_delivery", "deleted", deliveries),
        ]

    async def _outbox_preview(self) -> list[PlannedAction]:
        counts = await self._outbox_counts(*await self._settled())
        return [_planned(e) for e in self._outbox_entries(*counts)]

    async def _outbox(self) -> Entries:
        where, args = await self._settled()
        counts = await self._outbox_counts(where, args)
        # Their deliveries go with them (the foreign key cascades).
        await _raw(self.kith, f"DELETE FROM kith_event WHERE {where}", *args)
        return self._outbox_entries(*counts)

    # exports

    def _exports_query(self) -> Any:
        return ExportPackage.select(ExportPackage.id, ExportPackage.file_name).where(
            (ExportPackage.contact_id == self.contact_id) & ExportPackage.deleted_at.is_null()
        )

    def _exports_entry(self, count: int) -> CertificateEntry:
        return _entry(SOURCE_PRIVACY, "export packages (KITH_HOME/exports)", "deleted", count)

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
        audit = await AuditLog(self.kith).readable(self.contact_id)
        requests = await _count(
            SubjectRequest.count().where(SubjectRequest.sealed_for == self.contact_id)
        )
        rectifications = await _count(
            Rectification.count().where(Rectification.contact_id == self.contact_id)
        )
        overrides = await _count(
            SuppressionOverride.count().where(SuppressionOverride.contact_id == self.contact_id)
        )
        kept = "the record is kept as evidence; its text becomes unreadable with the data key"
        return [
            _entry(SOURCE_PRIVACY, "kith_privacy_audit (details)", shredded, audit, kept),
            _entry(SOURCE_PRIVACY, "kith_subject_request (notes)", shredded, requests, kept),
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
                await (
                    ErasureJob.update(
                        {ErasureJob.last_error: f"{current}: {type(exc).__name__}: {exc}"[:2000]}
                    )
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
                        ERASED_EVENT.name,
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

    async def jobs(self, contact_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
        query = ErasureJob.select().order_by(ErasureJob.started_at, ascending=False)
        if contact_id is not None:
            query = query.where(ErasureJob.contact_id == contact_id)
        return list(await query.run())


class ErasureExecutor:
    """The request workflow's executor for erasure requests."""

    async def preview(self, job: RequestJob) -> list[PlannedAction]:
        if job.contact_id is None:
            return [
                PlannedAction(
                    source=SOURCE_CORE,
                    location="(no contact holds this email or phone)",
                    method="not_present",
                )
            ]
        return await ErasureService(job.kith).preview(job.contact_id, job.request.id)

    async def execute(self, job: RequestJob) -> list[CertificateEntry]:
        if job.contact_id is None:
            return [
                CertificateEntry(
                    source=SOURCE_CORE,
                    location="(no contact holds this email or phone)",
                    method="not_present",
                    outcome="not_applicable",
                )
            ]
        result = await ErasureService(job.kith).run(
            job.contact_id,
            job_id=job.request.id,
            actor=job.actor,
            origin="request",
            request_id=job.request.id,
            channel="cli" if job.actor.kind != "user" else "request",
        )
        return result.entries
