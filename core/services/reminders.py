"""Reminders: ``task.overdue`` once per due time, notifications to the assignee (the in-app list
and every channel plugins add), daily digests in each user's time zone, and snoozing a task.

Exactly once across restarts: what was published or made is recorded in the same transaction
as the event or the notification, behind a unique index (``kith_reminder_mark``,
``kith_digest_mark``), so a second worker or a restarted one finds it done. Channels of plugins
(``kith_deliver_notification``) are served from the notification rows: at least once, with
retries, which is why their implementations must be idempotent by the notice's id.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Sequence
from typing import Any

import msgspec
from kith.actor import SYSTEM, Actor
from kith.errors import InvalidInput, NotFound
from kith.logs import get_logger
from kith.loop_settings import ReminderSettings
from kith.loop_tables import DigestMark, Notification, ReminderMark, UserReminderPreference
from kith.notices import UserNotice, add_notice
from kith.pagination import check_limit
from kith.runtime import Kith
from kith.scheduler import REMINDER_ACTIVITY
from kith.schemas import InteractionOut, InteractionPatch
from kith.services.interactions import InteractionService
from kith.subject_checks import refused_among
from kith.tables import Interaction, User
from piccolo.querystring import QueryString

_log = get_logger("kith.reminders")
MAX_ATTEMPTS = 8
BATCH = 200
# The most contacts a digest lists by id (the count is always whole).
DIGEST_CONTACTS = 100


class ReminderPreferences(msgspec.Struct, kw_only=True):
    """A user's time zone and digest time (``digest_at`` None: the installation's)."""

    timezone: str
    digest_at: str | None = None
    digest: bool = True


class DigestItem(msgspec.Struct, kw_only=True):
    """One line of a digest as a user reads it."""

    kind: str
    contact_id: uuid.UUID
    contact: str
    task_id: uuid.UUID | None = None
    summary: str = ""
    due_at: dt.datetime | None = None
    reason: str = ""


class Digest(msgspec.Struct, kw_only=True):
    """A user's day: their open tasks due by the end of ``day`` and contacts due a call."""

    day: str
    timezone: str
    tasks: list[DigestItem]
    due_contacts: list[DigestItem]


def notice_from_row(row: dict[str, Any]) -> UserNotice:
    payload = row["payload"]
    if isinstance(payload, str):
        payload = msgspec.json.decode(payload) if payload else {}
    return UserNotice(
        id=row["id"],
        user_id=row["user"],
        kind=row["kind"],
        contact_id=row["contact"],
        task_id=row["task"],
        payload=payload,
        created_at=_utc(row["created_at"]),
        read_at=_utc(row["read_at"]) if row["read_at"] is not None else None,
    )


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.astimezone(dt.UTC)


class ReminderService:
    """Reminders and notifications of one installation."""

    def __init__(
        self, kith: Kith, channel: str | None = None, context: dict[str, Any] | None = None
    ) -> None:
        self.kith = kith
        self.channel = channel
        self.context = context
        self.settings = ReminderSettings.from_settings(kith.settings)
        self.postgres = kith.database.kind == "postgresql"

    def now(self) -> dt.datetime:
        return self.kith.bus.dispatcher.now()

    # -- overdue ---------------------------------------------------------------------------

    async def publish_overdue(self, now: dt.datetime | None = None) -> int:
        """Publish ``task.overdue`` (and notify the assignee) for every open task past its due
        time by the overdue margin, once per due time; returns how many."""
        now = now or self.now()
        cutoff = now - dt.timedelta(minutes=self.settings.overdue_after_minutes)
        total = 0
        while True:
            seen, published = await self._overdue_batch(now, cutoff)
            total += published
            if seen < BATCH:
                return total

    async def _overdue_batch(self, now: dt.datetime, cutoff: dt.datetime) -> tuple[int, int]:
        lock = " FOR UPDATE OF i SKIP LOCKED" if self.postgres else ""
        published = 0
        async with self.kith.unit_of_work() as uow:
            rows: Any = await self.kith.database.engine.run_querystring(
                QueryString(
                    "SELECT i.id, i.contact, i.assignee, i.due_at FROM kith_interaction i "
                    "WHERE i.kind = 'task' AND i.done_at IS NULL AND i.due_at IS NOT NULL "
                    "AND i.due_at <= {} AND NOT EXISTS (SELECT 1 FROM kith_reminder_mark m "
                    "WHERE m.task = i.id AND m.kind = 'overdue' AND m.due_at = i.due_at) "
                    f"ORDER BY i.due_at LIMIT {{}}{lock}",
                    cutoff,
                    BATCH,
                )
            )
            refused = await refused_among(
                self.kith, [_uuid(row["contact"]) for row in rows], REMINDER_ACTIVITY
            )
            for row in rows:
                due_at = _utc(row["due_at"])
                claimed = await (
                    ReminderMark.insert(
                        ReminderMark(task=row["id"], kind="overdue", due_at=due_at, at=now)
                    )
                    .on_conflict(action="DO NOTHING")
                    .returning(ReminderMark.id)
                    .run()
                )
                if not claimed:
                    continue  # another worker took it between our select and insert
                if _uuid(row["contact"]) in refused:
                    # Marked all the same: a restricted contact's task is passed over for this
                    # due time, not reminded of when the restriction is lifted.
                    continue
                published += 1
                assignee = row["assignee"]
                uow.publish(
                    "task.overdue",
                    _uuid(row["contact"]),
                    interaction_id=str(_uuid(row["id"])),
                    assignee_id=None if assignee is None else str(_uuid(assignee)),
                    due_at=due_at.isoformat(),
                )
                if assignee is not None:
                    await add_notice(
                        _uuid(assignee),
                        "task.overdue",
                        contact_id=_uuid(row["contact"]),
                        task_id=_uuid(row["id"]),
                        payload={"due_at": due_at.isoformat()},
                        now=now,
                    )
        return len(rows), published

    # -- channels --------------------------------------------------------------------------

    async def deliver_pending(self) -> int:
        """Hand undelivered notifications to every channel plugins add; returns how many
        went through. A channel that raises gets the notice again at the next run."""
        plugins = self.kith.plugins
        now = self.now()
        rows = await (
            Notification.select()
            .where(Notification.delivered_at.is_null() & (Notification.attempts < MAX_ATTEMPTS))
            .order_by(Notification.created_at)
            .limit(BATCH)
            .run()
        )
        delivered = 0
        for row in rows:
            notice = notice_from_row(row)
            failed = False
            if plugins is not None and plugins.implements("kith_deliver_notification"):
                results = await plugins.call_async(
                    "kith_deliver_notification", kith=self.kith, notice=notice, collect_errors=True
                )
                for result in results:
                    if result.error is not None:
                        failed = True
                        _log.warning(
                            "notification.channel_failed",
                            plugin=result.plugin,
                            notification=str(notice.id),
                            error=type(result.error).__name__,
                        )
            if not failed and self.settings.email:
                failed = not await self._email(notice, now)
            if failed:
                await (
                    Notification.update({Notification.attempts: Notification.attempts + 1})
                    .where(Notification.id == notice.id)
                    .run()
                )
            else:
                delivered += 1
                await (
                    Notification.update({Notification.delivered_at: now})
                    .where(Notification.id == notice.id)
                    .run()
                )
        return delivered

    async def _email(self, notice: UserNotice, now: dt.datetime) -> bool:
        """Queue the notice's email, marking it delivered in the same transaction, so it is
        queued once; the mailer's own retries take it from there."""
        from kith.mail import Mailer, MailMessage

        user = await User.select(User.email, User.active).where(User.id == notice.user_id).first()
        if user is None or not user["active"]:
            return True
        base = self.kith.settings.public_url.rstrip("/") or "http://127.0.0.1:8000"
        subject, text = email_text(notice, base)
        try:
            async with self.kith.unit_of_work():
                await Mailer(self.kith).send(
                    MailMessage(to=user["email"], subject=subject, text=text)
                )
                await (
                    Notification.update({Notification.delivered_at: now})
                    .where(Notification.id == notice.id)
                    .run()
                )
        except InvalidInput as exc:
            _log.warning("notification.email_refused", notification=str(notice.id), error=str(exc))
            return False
        return True

    # -- the in-app list -------------------------------------------------------------------

    async def notifications(
        self, user_id: uuid.UUID, *, unread: bool = False, limit: int = 50
    ) -> list[UserNotice]:
        """A user's notifications, newest first."""
        limit = check_limit(limit)
        query = Notification.select().where(Notification.user == user_id)
        if unread:
            query = query.where(Notification.read_at.is_null())
        rows = await (
            query.order_by(Notification.created_at, ascending=False)
            .order_by(Notification.id, ascending=False)
            .limit(limit)
            .run()
        )
        return [notice_from_row(row) for row in rows]

    async def mark_read(self, user_id: uuid.UUID, ids: Sequence[uuid.UUID] | None = None) -> int:
        """Mark a user's notifications read (``ids``, or all); returns how many changed."""
        condition = (Notification.user == user_id) & Notification.read_at.is_null()
        if ids is not None:
            if not ids:
                return 0
            condition &= Notification.id.is_in(list(ids))
        changed = await Notification.count().where(condition).run()
        await Notification.update({Notification.read_at: self.now()}).where(condition).run()
        return int(changed)

    # -- preferences and digests -----------------------------------------------------------

    async def preferences(self, user_id: uuid.UUID) -> ReminderPreferences:
        if not await User.exists().where(User.id == user_id):
            raise NotFound(f"user {user_id} does not exist")
        row = (
            await UserReminderPreference.select()
            .where(UserReminderPreference.user == user_id)
            .first()
        )
        if row is None:
            return ReminderPreferences(timezone=self.kith.settings.timezone)
        return ReminderPreferences(
            timezone=row["timezone"], digest_at=row["digest_at"], digest=row["digest_enabled"]
        )

    async def set_preferences(
        self, user_id: uuid.UUID, preferences: ReminderPreferences
    ) -> ReminderPreferences:
        """Set a user's time zone and digest time."""
        try:
            zoneinfo.ZoneInfo(preferences.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(
                f"{preferences.timezone!r} is not a time zone like Europe/London",
                field="timezone",
            ) from None
        if preferences.digest_at is not None:
            _clock(preferences.digest_at)
        await self.preferences(user_id)
        async with self.kith.unit_of_work():
            await (
                UserReminderPreference.delete().where(UserReminderPreference.user == user_id).run()
            )
            await UserReminderPreference.insert(
                UserReminderPreference(
                    user=user_id,
                    timezone=preferences.timezone,
                    digest_at=preferences.digest_at,
                    digest_enabled=preferences.digest,
                )
            ).run()
        return await self.preferences(user_id)

    async def send_digests(self, now: dt.datetime | None = None) -> int:
        """Make today's digest for every active user whose local digest time has come and who
        has not had it today; returns how many were sent (a day with nothing in it sends
        none)."""
        if not self.settings.digest:
            return 0
        now = now or self.now()
        users = await User.select(User.id).where(User.active == True).run()  # noqa: E712
        prefs = {row["user"]: row for row in await UserReminderPreference.select().run()}
        made = 0
        for user in users:
            pref = prefs.get(user["id"])
            if pref is not None and not pref["digest_enabled"]:
                continue
            zone = zoneinfo.ZoneInfo(pref["timezone"] if pref else self.kith.settings.timezone)
            at = _clock((pref["digest_at"] if pref else None) or self.settings.digest_at)
            local = now.astimezone(zone)
            if local.time() < at:
                continue
            if await self._digest(user["id"], local.date(), zone, now):
                made += 1
        return made

    async def _digest(
        self, user_id: uuid.UUID, day: dt.date, zone: zoneinfo.ZoneInfo, now: dt.datetime
    ) -> bool:
        async with self.kith.unit_of_work():
            claimed = await (
                DigestMark.insert(DigestMark(user=user_id, day=day.isoformat(), at=now))
                .on_conflict(action="DO NOTHING")
                .returning(DigestMark.id)
                .run()
            )
            if not claimed:
                return False
            tasks, contacts, count = await self._digest_ids(user_id, day, zone, now)
            if not tasks and not contacts:
                return False  # nothing to do today: no digest, and none later today
            await add_notice(
                user_id,
                "digest",
                payload={
                    "day": day.isoformat(),
                    "tasks": [str(t) for t in tasks],
                    "due_contacts": [str(c) for c in contacts],
                    "due_contact_count": count,
                },
                now=now,
            )
        return True

    async def _digest_ids(
        self, user_id: uuid.UUID, day: dt.date, zone: zoneinfo.ZoneInfo, now: dt.datetime
    ) -> tuple[list[uuid.UUID], list[uuid.UUID], int]:
        from kith.services.cadences import CadenceService

        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        rows = await (
            Interaction.select(Interaction.id, Interaction.contact)
            .where(
                (Interaction.kind == "task")
                & Interaction.done_at.is_null()
                & (Interaction.assignee == user_id)
                & (Interaction.due_at < end.astimezone(dt.UTC))
            )
            .order_by(Interaction.due_at)
            .order_by(Interaction.id)
            .run()
        )
        refused = await refused_among(
            self.kith, list({_uuid(row["contact"]) for row in rows}), REMINDER_ACTIVITY
        )
        tasks = [row["id"] for row in rows if _uuid(row["contact"]) not in refused]
        due = await CadenceService(self.kith).due_rows(now=end, owner_id=user_id)
        return tasks, [d.contact_id for d in due[:DIGEST_CONTACTS]], len(due)

    async def digest(
        self, user_id: uuid.UUID, now: dt.datetime | None = None, actor: Actor = SYSTEM
    ) -> Digest:
        """A user's digest for their local today, with names and summaries (each read is
        audited like any other)."""
        from kith.services.cadences import CadenceService
        from kith.services.contacts import ContactService

        now = now or self.now()
        pref = await self.preferences(user_id)
        zone = zoneinfo.ZoneInfo(pref.timezone)
        day = now.astimezone(zone).date()
        tasks, _, _ = await self._digest_ids(user_id, day, zone, now)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        due = (await CadenceService(self.kith).due_rows(now=end, owner_id=user_id))[
            :DIGEST_CONTACTS
        ]
        interactions = InteractionService(self.kith, self.channel, self.context)
        contacts = ContactService(self.kith, self.channel, self.context)
        names: dict[uuid.UUID, str] = {}

        async def name(contact_id: uuid.UUID) -> str:
            if contact_id not in names:
                names[contact_id] = (await contacts.get(contact_id, actor)).name
            return names[contact_id]

        task_items = []
        for task_id in tasks:
            task: InteractionOut = await interactions.get(task_id, actor)
            task_items.append(
                DigestItem(
                    kind="task",
                    contact_id=task.contact_id,
                    contact=await name(task.contact_id),
                    task_id=task.id,
                    summary=task.summary,
                    due_at=task.due_at,
                )
            )
        contact_items = [
            DigestItem(
                kind="cadence",
                contact_id=item.contact_id,
                contact=await name(item.contact_id),
                due_at=item.due_at,
                reason=item.reason,
            )
            for item in due
        ]
        return Digest(
            day=day.isoformat(),
            timezone=pref.timezone,
            tasks=task_items,
            due_contacts=contact_items,
        )

    # -- snooze ----------------------------------------------------------------------------

    async def snooze(
        self,
        task_id: uuid.UUID,
        *,
        until: dt.datetime | None = None,
        minutes: int | None = None,
        actor: Actor = SYSTEM,
    ) -> InteractionOut:
        """Move an open task's due time to ``until`` or ``minutes`` from now; its ``task.due``
        and ``task.overdue`` fire again at the new time."""
        if (until is None) == (minutes is None):
            raise InvalidInput("give either until or minutes", field="until")
        if minutes is not None and not 1 <= minutes <= 525_600:
            raise InvalidInput("minutes must be between 1 and 525600", field="minutes")
        service = InteractionService(self.kith, self.channel, self.context)
        task = await service.get(task_id, actor)
        if task.kind != "task":
            raise InvalidInput(f"interaction {task_id} is a {task.kind}, not a task", field="id")
        if task.done_at is not None:
            raise InvalidInput(f"task {task_id} is done; only open tasks can be snoozed")
        now = self.now()
        new_due = until if until is not None else now + dt.timedelta(minutes=minutes or 0)
        if new_due.tzinfo is not None and new_due <= now:
            raise InvalidInput("a task is snoozed to a time in the future", field="until")
        return await service.update(task_id, InteractionPatch(due_at=new_due), actor)


def email_text(notice: UserNotice, base: str) -> tuple[str, str]:
    """Subject and body of a notice's email: kinds, counts and links only."""
    if notice.kind == "digest":
        tasks = len(notice.payload.get("tasks", []))
        due = int(notice.payload.get("due_contact_count", 0))
        return (
            f"Your day, {notice.payload.get('day', '')}: {tasks} tasks, {due} contacts to call",
            f"Tasks due today: {tasks}\nContacts due a call: {due}\n\n"
            f"Your digest: {base}/api/digest\n",
        )
    what = {"task.due": "A task is due", "task.overdue": "A task is overdue"}.get(
        notice.kind, f"Rule {notice.payload.get('rule', '')} fired"
    )
    link = f"{base}/api/interactions/{notice.task_id}" if notice.task_id else ""
    contact = f"{base}/api/contacts/{notice.contact_id}" if notice.contact_id else ""
    return what, "\n".join(line for line in (what, link, contact) if line) + "\n"


def _clock(text: str) -> dt.time:
    try:
        hour, minute = (int(part) for part in text.split(":"))
        return dt.time(hour, minute)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a time like 08:00", field="digest_at") from None


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
