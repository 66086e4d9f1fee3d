"""Trigger rules: a condition over events or state, and an action (a task, a notification, a
tag, an event), each firing recorded once per rule, contact and period.

Rules come from ``[[triggers.rules]]`` in ``kith.toml`` and from the API or CLI. The
conditions are found in SQL (ids and times only); a dry run lists whom a rule would hit now.
A contact a plugin refuses processing for (a restricted one) triggers nothing, and every firing
publishes ``trigger.fired`` so webhooks and plugins can react.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from kith.actor import SYSTEM, Actor
from kith.errors import Conflict, InvalidInput, NotFound
from kith.events import utcnow
from kith.logs import get_logger
from kith.loop_settings import RuleSpec, TriggerSettings
from kith.loop_sql import Dialect, missed
from kith.loop_tables import Firing, TriggerRule
from kith.notices import add_notice
from kith.runtime import Kith
from kith.schemas import ContactPatch, InteractionCreate
from kith.subject_checks import refused_among
from kith.tables import Contact, User
from piccolo.querystring import QueryString

_log = get_logger("kith.triggers")
# How far back event and missed-call conditions look.
LOOKBACK = dt.timedelta(days=30)


class RuleOut(msgspec.Struct, kw_only=True):
    rule: RuleSpec
    origin: str


class Hit(msgspec.Struct, kw_only=True):
    """A contact a rule would fire for, in which period, and why."""

    contact_id: uuid.UUID
    period: str
    reason: str
    name: str | None = None


class DryRun(msgspec.Struct, kw_only=True):
    rule: str
    hits: list[Hit]
    # Contacts the condition holds for that a plugin refuses processing for (restricted).
    refused: int
    # Contacts the condition holds for that the rule already fired for in this period.
    already_fired: int


def _time(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def working_hours_between(
    start: dt.datetime, end: dt.datetime, settings: TriggerSettings, zone: dt.tzinfo
) -> float:
    """Working hours (``working_hours`` on ``working_days``, local time) from start to end."""
    if end <= start:
        return 0.0
    open_min, close_min = settings.hours_span()
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    total = 0.0
    day = local_start.date()
    while day <= local_end.date():
        if day.isoweekday() in settings.working_days:
            midnight = dt.datetime.combine(day, dt.time(), tzinfo=zone)
            opens = midnight + dt.timedelta(minutes=open_min)
            closes = midnight + dt.timedelta(minutes=close_min)
            span_start, span_end = max(opens, local_start), min(closes, local_end)
            if span_end > span_start:
                total += (span_end - span_start).total_seconds() / 3600
        day += dt.timedelta(days=1)
    return total


class TriggerService:
    """Trigger rules: stored ones and those of ``kith.toml``."""

    def __init__(
        self, kith: Kith, channel: str | None = None, context: dict[str, Any] | None = None
    ) -> None:
        self.kith = kith
        self.channel = channel
        self.context = context
        self.settings = TriggerSettings.from_settings(kith.settings)
        self.sql = Dialect(kith.database)

    # -- the rules -------------------------------------------------------------------------

    async def rules(self) -> list[RuleOut]:
        found = [RuleOut(rule=rule, origin="kith.toml") for rule in self.settings.rules]
        for row in await TriggerRule.select().order_by(TriggerRule.name).run():
            definition = row["definition"]
            if isinstance(definition, str):
                definition = msgspec.json.decode(definition)
            spec = msgspec.convert(definition, RuleSpec)
            found.append(
                RuleOut(rule=msgspec.structs.replace(spec, enabled=row["enabled"]), origin="api")
            )
        return found

    async def rule(self, name: str) -> RuleSpec:
        for item in await self.rules():
            if item.rule.name == name:
                return item.rule
        raise NotFound(f"there is no trigger rule {name!r}")

    async def add(self, spec: RuleSpec) -> RuleOut:
        problems = spec.problems()
        if problems:
            raise InvalidInput("; ".join(problems), field="rule")
        if spec.user is not None:
            await self._user(spec.user)
        if any(r.rule.name == spec.name for r in await self.rules()):
            raise Conflict(f"a trigger rule named {spec.name!r} exists", field="name")
        await TriggerRule.insert(
            TriggerRule(
                name=spec.name,
                definition=msgspec.json.encode(spec).decode(),
                enabled=spec.enabled,
                created_at=utcnow(),
            )
        ).run()
        return RuleOut(rule=spec, origin="api")

    async def remove(self, name: str) -> None:
        if not await TriggerRule.exists().where(TriggerRule.name == name):
            if any(r.name == name for r in self.settings.rules):
                raise Conflict(f"rule {name!r} is in kith.toml; remove it there")
            raise NotFound(f"there is no trigger rule {name!r}")
        await TriggerRule.delete().where(TriggerRule.name == name).run()

    async def _user(self, email: str) -> uuid.UUID:
        row = await User.select(User.id).where(User.email == email.strip().lower()).first()
        if row is None:
            raise InvalidInput(f"there is no user {email}", field="user")
        return _uuid(row["id"])

    # -- conditions ------------------------------------------------------------------------

    async def _rows(self, query: str, *args: Any) -> list[dict[str, Any]]:
        rows: Any = await self.kith.database.engine.run_querystring(QueryString(query, *args))
        return list(rows)

    async def _condition(self, rule: RuleSpec, now: dt.datetime) -> list[Hit]:
        sql = self.sql
        live = "c.archived = FALSE"
        if rule.condition == "order_gap":
            rows = await self._rows(
                "SELECT x.contact, x.n, x.first_at, x.last_at FROM (SELECT i.contact AS contact,"
                " COUNT(*) AS n, MIN(i.occurred_at) AS first_at, MAX(i.occurred_at) AS last_at"
                " FROM kith_interaction i WHERE i.kind = 'order' GROUP BY i.contact) x"
                f" JOIN kith_contact c ON c.id = x.contact WHERE {live} AND x.n >= {{}}"
                f" AND {sql.days_between('x.last_at', sql.time_slot())} > {{}} *"
                f" {sql.days_between('x.first_at', 'x.last_at')} / (x.n - 1)"
                " ORDER BY x.contact",
                rule.min_orders,
                now,
                rule.factor,
            )
            hits = []
            for row in rows:
                first, last, n = _time(row["first_at"]), _time(row["last_at"]), int(row["n"])
                interval = (last - first).total_seconds() / 86400 / (n - 1)
                hits.append(
                    Hit(
                        contact_id=_uuid(row["contact"]),
                        period=last.date().isoformat(),
                        reason=f"orders every {interval:.0f} days on average; none for "
                        f"{(now - last).days} days",
                    )
                )
            return hits
        if rule.condition == "missed_call":
            returned = (
                "SELECT 1 FROM kith_interaction r WHERE r.contact = m.contact AND r.kind = 'call'"
                " AND r.occurred_at > m.occurred_at AND (r.direction = 'outbound'"
                " OR COALESCE(r.duration_s, 0) > 0)"
            )
            rows = await self._rows(
                "SELECT m.id, m.contact, m.occurred_at FROM kith_interaction m"
                f" JOIN kith_contact c ON c.id = m.contact WHERE {live} AND {missed('m')}"
                " AND m.direction = 'inbound' AND m.occurred_at >= {} AND m.occurred_at <= {}"
                f" AND NOT EXISTS ({returned}) ORDER BY m.occurred_at, m.id",
                now - LOOKBACK,
                now,
            )
            import zoneinfo

            zone = zoneinfo.ZoneInfo(self.kith.settings.timezone)
            hits = []
            for row in rows:
                waited = working_hours_between(_time(row["occurred_at"]), now, self.settings, zone)
                if waited >= rule.hours:
                    hits.append(
                        Hit(
                            contact_id=_uuid(row["contact"]),
                            period=str(_uuid(row["id"])),
                            reason=f"missed call not returned for {waited:.1f} working hours",
                        )
                    )
            return hits
        if rule.condition == "no_interaction":
            args: list[Any] = []
            where = live
            if rule.source is not None:
                where += " AND c.source = {}"
                args.append(rule.source)
            if rule.tag is not None:
                where += f" AND {sql.has_tag('c.tags', sql.text_slot())}"
                args.append(rule.tag)
            rows = await self._rows(
                f"SELECT c.id FROM kith_contact c WHERE {where} AND c.created_at <= {{}}"
                " AND NOT EXISTS (SELECT 1 FROM kith_interaction i WHERE i.contact = c.id"
                " AND i.kind NOT IN ('form_submission', 'task')) ORDER BY c.id",
                *args,
                now - dt.timedelta(days=rule.days),
            )
            return [
                Hit(
                    contact_id=_uuid(row["id"]),
                    period="once",
                    reason=f"no interaction within {rule.days} days of arriving",
                )
                for row in rows
            ]
        if rule.condition == "event":
            rows = await self._rows(
                "SELECT e.id, e.contact_id FROM kith_event e JOIN kith_contact c"
                f" ON c.id = e.contact_id WHERE {live} AND e.name = {{}} AND e.occurred_at >= {{}}"
                " AND e.occurred_at <= {} ORDER BY e.occurred_at, e.id",
                rule.event,
                now - LOOKBACK,
                now,
            )
            return [
                Hit(
                    contact_id=_uuid(row["contact_id"]),
                    period=str(_uuid(row["id"])),
                    reason=f"event {rule.event}",
                )
                for row in rows
            ]
        rows = await self._rows(
            "SELECT t.contact, t.computed_at FROM kith_contact_tier t JOIN kith_contact c"
            f" ON c.id = t.contact WHERE {live} AND t.tier = {{}} ORDER BY t.contact",
            rule.tier,
        )
        return [
            Hit(
                contact_id=_uuid(row["contact"]),
                period=f"{rule.tier}:{_time(row['computed_at']).date().isoformat()}",
                reason=f"in tier {rule.tier}",
            )
            for row in rows
        ]

    async def _pending(self, rule: RuleSpec, now: dt.datetime) -> DryRun:
        hits = await self._condition(rule, now)
        fired = {
            (_uuid(row["contact"]), row["period"])
            for row in await Firing.select(Firing.contact, Firing.period)
            .where(Firing.rule == rule.name)
            .run()
        }
        fresh = [hit for hit in hits if (hit.contact_id, hit.period) not in fired]
        refused = await refused_among(
            self.kith, sorted({hit.contact_id for hit in fresh}), f"trigger:{rule.name}"
        )
        return DryRun(
            rule=rule.name,
            hits=[hit for hit in fresh if hit.contact_id not in refused],
            refused=len([hit for hit in fresh if hit.contact_id in refused]),
            already_fired=len(hits) - len(fresh),
        )

    async def dry_run(
        self,
        name: str,
        now: dt.datetime | None = None,
        *,
        names: bool = False,
        actor: Actor = SYSTEM,
    ) -> DryRun:
        """Whom the rule would fire for now (nothing is changed); with ``names``, each
        contact's name too (an audited read)."""
        from kith.services.contacts import ContactService

        rule = await self.rule(name)
        found = await self._pending(rule, now or self.kith.bus.dispatcher.now())
        if names:
            contacts = ContactService(self.kith, self.channel, self.context)
            for hit in found.hits:
                hit.name = (await contacts.get(hit.contact_id, actor)).name
        return found

    # -- firing ----------------------------------------------------------------------------

    async def run(self, name: str, now: dt.datetime | None = None) -> int:
        """Fire the rule for every contact it hits now; returns how many firings."""
        rule = await self.rule(name)
        return await self._run(rule, now or self.kith.bus.dispatcher.now())

    async def run_all(self, now: dt.datetime | None = None) -> int:
        now = now or self.kith.bus.dispatcher.now()
        total = 0
        for item in await self.rules():
            if item.rule.enabled:
                total += await self._run(item.rule, now)
        return total

    async def _run(self, rule: RuleSpec, now: dt.datetime) -> int:
        pending = await self._pending(rule, now)
        user_id = await self._user(rule.user) if rule.user else None
        fired = 0
        for hit in pending.hits:
            async with self.kith.unit_of_work() as uow:
                claimed = await (
                    Firing.insert(
                        Firing(
                            rule=rule.name,
                            contact=hit.contact_id,
                            period=hit.period,
                            fired_at=now,
                            action=rule.action,
                        )
                    )
                    .on_conflict(action="DO NOTHING")
                    .returning(Firing.id)
                    .run()
                )
                if not claimed:
                    continue
                await self._act(rule, hit, user_id, now)
                uow.publish(
                    "trigger.fired",
                    hit.contact_id,
                    contact_id=str(hit.contact_id),
                    rule=rule.name,
                    period=hit.period,
                )
                fired += 1
        if fired:
            _log.info("trigger.fired", rule=rule.name, count=fired)
        return fired

    async def _act(
        self, rule: RuleSpec, hit: Hit, user_id: uuid.UUID | None, now: dt.datetime
    ) -> None:
        from kith.services.contacts import ContactService
        from kith.services.interactions import InteractionService

        if rule.action in ("task", "notify") and user_id is None:
            row = await Contact.select(Contact.owner).where(Contact.id == hit.contact_id).first()
            user_id = _uuid(row["owner"]) if row and row["owner"] is not None else None
        if rule.action == "task":
            await InteractionService(self.kith).log(
                hit.contact_id,
                InteractionCreate(
                    kind="task",
                    summary=rule.summary or f"{rule.name}: {hit.reason}",
                    due_at=now,
                    assignee_id=user_id,
                    source="trigger",
                ),
            )
        elif rule.action == "notify" and user_id is not None:
            await add_notice(
                user_id,
                "trigger",
                contact_id=hit.contact_id,
                payload={"rule": rule.name, "period": hit.period},
                now=now,
            )
        elif rule.action == "tag" and rule.tag_to_add:
            row = await Contact.select(Contact.tags).where(Contact.id == hit.contact_id).first()
            tags = row["tags"] if row else []
            if isinstance(tags, str):
                tags = msgspec.json.decode(tags)
            if rule.tag_to_add not in tags:
                await ContactService(self.kith).update(
                    hit.contact_id, ContactPatch(tags=[*tags, rule.tag_to_add])
                )
