"""Keep-in-touch cadences: "contact every N days" for a contact, a tag or a tier, and who is
due or overdue for it.

A contact's next contact date is its last real interaction (an answered call, an email, a
meeting, an order; not notes, tasks or missed calls) plus N days, or its creation plus N days
when there was none. A cadence of the contact itself wins over those of its tier and tags;
among those, the shortest. Contacts with the pause tag (``[cadences] pause_tag``) are never due.
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from typing import Any, Literal

import msgspec
from kith.actor import SYSTEM, Actor
from kith.errors import InvalidInput, NotFound
from kith.events import utcnow
from kith.logs import get_logger
from kith.loop_settings import CadenceSettings
from kith.loop_sql import Dialect, real
from kith.loop_tables import Cadence, Firing
from kith.runtime import Kith
from kith.schemas import InteractionCreate
from kith.subject_checks import refused_among
from kith.tables import Contact
from piccolo.querystring import QueryString

_log = get_logger("kith.cadences")
Scope = Literal["contact", "tag", "tier"]
SCOPES = ("contact", "tag", "tier")
CADENCE_RULE = "cadence"
CADENCE_ACTIVITY = "cadence.task"


class CadenceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    scope: Scope
    target: str
    every_days: int


class CadenceOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    scope: str
    target: str
    every_days: int
    created_at: dt.datetime


class DueContact(msgspec.Struct, kw_only=True):
    """A contact due (or overdue) for a call: when, and why."""

    contact_id: uuid.UUID
    owner_id: uuid.UUID | None
    every_days: int
    scope: str
    target: str
    last_contact_at: dt.datetime | None
    due_at: dt.datetime
    overdue_days: int
    reason: str
    name: str | None = None


def _time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


class CadenceService:
    """Cadences and the due list; reads of names are audited like any other."""

    def __init__(
        self, kith: Kith, channel: str | None = None, context: dict[str, Any] | None = None
    ) -> None:
        self.kith = kith
        self.channel = channel
        self.context = context
        self.settings = CadenceSettings.from_settings(kith.settings)
        self.sql = Dialect(kith.database)

    async def set(self, data: CadenceIn) -> CadenceOut:
        """Add a cadence, or change the interval of the one for the same scope and target."""
        target = data.target.strip()
        if not 1 <= data.every_days <= 3650:
            raise InvalidInput("every_days must be between 1 and 3650", field="every_days")
        if not target or len(target) > 100:
            raise InvalidInput("target must be 1 to 100 characters", field="target")
        if data.scope == "contact":
            try:
                contact_id = uuid.UUID(target)
            except ValueError:
                raise InvalidInput(
                    "a contact cadence's target is a contact id", field="target"
                ) from None
            if not await Contact.exists().where(Contact.id == contact_id):
                raise NotFound(f"contact {contact_id} does not exist")
            target = str(contact_id)
        async with self.kith.unit_of_work():
            existing = (
                await Cadence.select(Cadence.id)
                .where((Cadence.scope == data.scope) & (Cadence.target == target))
                .first()
            )
            if existing is None:
                await Cadence.insert(
                    Cadence(
                        scope=data.scope,
                        target=target,
                        every_days=data.every_days,
                        created_at=utcnow(),
                    )
                ).run()
            else:
                await (
                    Cadence.update({Cadence.every_days: data.every_days})
                    .where(Cadence.id == existing["id"])
                    .run()
                )
        return next(c for c in await self.list() if c.scope == data.scope and c.target == target)

    async def list(self) -> list[CadenceOut]:
        rows = await Cadence.select().order_by(Cadence.scope).order_by(Cadence.target).run()
        return [
            CadenceOut(
                id=row["id"],
                scope=row["scope"],
                target=row["target"],
                every_days=row["every_days"],
                created_at=_time(row["created_at"]) or utcnow(),
            )
            for row in rows
        ]

    async def remove(self, scope: str, target: str) -> None:
        condition = (Cadence.scope == scope) & (Cadence.target == target.strip())
        if not await Cadence.exists().where(condition):
            raise NotFound(f"there is no {scope} cadence for {target!r}")
        await Cadence.delete().where(condition).run()

    async def due_rows(
        self,
        *,
        now: dt.datetime | None = None,
        owner_id: uuid.UUID | None = None,
        contact_ids: builtins.list[uuid.UUID] | None = None,
    ) -> builtins.list[DueContact]:
        """Every contact due at ``now``, most overdue first, without names (nothing personal
        is read); contacts whose processing is restricted are left out."""
        now = (now or self.kith.bus.dispatcher.now()).astimezone(dt.UTC)
        sql = self.sql
        args: list[Any] = [self.settings.pause_tag]
        extra = ""
        if owner_id is not None:
            extra += " AND c.owner = {}"
            args.append(owner_id)
        if contact_ids is not None:
            if not contact_ids:
                return []
            extra += " AND c.id IN (" + ", ".join("{}" for _ in contact_ids) + ")"
            args.extend(contact_ids)
        since = "COALESCE(m.last_at, m.created_at)"
        query = (
            "WITH matched AS (SELECT c.id AS contact, c.owner AS owner, c.created_at AS created_at,"
            " cad.every_days AS every_days, cad.scope AS scope, cad.target AS target,"
            " ROW_NUMBER() OVER (PARTITION BY c.id ORDER BY CASE cad.scope WHEN 'contact' THEN 0"
            " WHEN 'tier' THEN 1 ELSE 2 END, cad.every_days, cad.target) AS pick"
            " FROM kith_contact c JOIN kith_cadence cad ON ("
            f"(cad.scope = 'contact' AND cad.target = {sql.uuid_text('c.id')})"
            f" OR (cad.scope = 'tag' AND {sql.has_tag('c.tags', 'cad.target')})"
            " OR (cad.scope = 'tier' AND EXISTS (SELECT 1 FROM kith_contact_tier t"
            " WHERE t.contact = c.id AND t.tier = cad.target)))"
            f" WHERE c.archived = FALSE AND NOT {sql.has_tag('c.tags', sql.text_slot())}{extra}),"
            " chosen AS (SELECT matched.*, (SELECT MAX(i.occurred_at) FROM kith_interaction i"
            f" WHERE i.contact = matched.contact AND {real('i')}) AS last_at"
            " FROM matched WHERE pick = 1)"
            " SELECT * FROM (SELECT m.contact, m.owner, m.created_at, m.every_days, m.scope,"
            f" m.target, m.last_at, {sql.days_between(since, sql.time_slot())} AS age"
            " FROM chosen m) x"
            " WHERE x.age >= x.every_days ORDER BY x.age - x.every_days DESC, x.contact"
        )
        args.append(now)
        rows: Any = await self.kith.database.engine.run_querystring(QueryString(query, *args))
        # Restricted contacts are never due: no list, digest or task brings them up.
        ids = [contact for row in rows if (contact := _uuid(row["contact"])) is not None]
        refused = await refused_among(self.kith, ids, CADENCE_ACTIVITY)
        found = []
        for row in rows:
            if _uuid(row["contact"]) in refused:
                continue
            last = _time(row["last_at"])
            since_at = last or _time(row["created_at"])
            assert since_at is not None
            due_at = since_at + dt.timedelta(days=int(row["every_days"]))
            overdue = max(0, int(float(row["age"]) - int(row["every_days"])))
            source = {"contact": "its own cadence", "tag": f"tag {row['target']}"}.get(
                row["scope"], f"tier {row['target']}"
            )
            when = f"last contact {last.date().isoformat()}" if last else "no contact yet"
            found.append(
                DueContact(
                    contact_id=_uuid(row["contact"]) or uuid.uuid4(),
                    owner_id=_uuid(row["owner"]),
                    every_days=int(row["every_days"]),
                    scope=row["scope"],
                    target=row["target"],
                    last_contact_at=last,
                    due_at=due_at,
                    overdue_days=overdue,
                    reason=f"{when}; every {row['every_days']} days ({source})",
                )
            )
        return found

    async def due(
        self,
        *,
        now: dt.datetime | None = None,
        owner_id: uuid.UUID | None = None,
        limit: int = 50,
        actor: Actor = SYSTEM,
    ) -> builtins.list[DueContact]:
        """Who is due, with their names; each name read is audited."""
        from kith.services.contacts import ContactService

        rows = (await self.due_rows(now=now, owner_id=owner_id))[:limit]
        contacts = ContactService(self.kith, self.channel, self.context)
        for row in rows:
            row.name = (await contacts.get(row.contact_id, actor)).name
        return rows

    async def create_tasks(self, now: dt.datetime | None = None) -> int:
        """With ``create_tasks`` on, a task for the owner of every contact that fell due, once
        per due date (a new interaction gives a new date); returns how many were made.
        Restricted contacts get none."""
        from kith.services.interactions import InteractionService

        if not self.settings.create_tasks:
            return 0
        now = now or self.kith.bus.dispatcher.now()
        due = [row for row in await self.due_rows(now=now) if row.owner_id is not None]
        made = 0
        interactions = InteractionService(self.kith)
        for row in due:
            async with self.kith.unit_of_work():
                claimed = await (
                    Firing.insert(
                        Firing(
                            rule=CADENCE_RULE,
                            contact=row.contact_id,
                            period=row.due_at.date().isoformat(),
                            fired_at=now,
                            action="task",
                        )
                    )
                    .on_conflict(action="DO NOTHING")
                    .returning(Firing.id)
                    .run()
                )
                if not claimed:
                    continue
                await interactions.log(
                    row.contact_id,
                    InteractionCreate(
                        kind="task",
                        summary=f"Keep in touch: {row.reason}",
                        due_at=now,
                        assignee_id=row.owner_id,
                        source="cadence",
                    ),
                )
                made += 1
        return made
