"""``kith reminders``: a user's notifications, digest and time zone; ``kith tasks snooze``."""

from __future__ import annotations

import datetime as dt

import click
from kith.cli._when import DUE
from kith.console import (
    AUDIT_CHANNEL,
    AUDIT_CONTEXT,
    CliError,
    format_time,
    get_settings,
    json_option,
    parse_id,
    print_json,
    print_table,
    run_with_kith,
)
from kith.notices import UserNotice
from kith.runtime import Kith
from kith.schemas import InteractionOut
from kith.services.reminders import Digest, ReminderPreferences, ReminderService
from kith.services.users import UserService


@click.group()
def reminders() -> None:
    """Notifications, daily digests and each user's time zone."""


@reminders.command("list")
@click.argument("email")
@click.option("--unread", is_flag=True, help="Only those not read yet.")
@click.option("--mark-read", is_flag=True, help="Then mark them all read.")
@json_option
def list_notices(email: str, unread: bool, mark_read: bool, as_json: bool) -> None:
    """A user's notifications, newest first."""

    async def work(kith: Kith) -> list[UserNotice]:
        user = await UserService(kith).by_email(email)
        service = ReminderService(kith)
        found = await service.notifications(user.id, unread=unread)
        if mark_read:
            await service.mark_read(user.id)
        return found

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    print_table(
        ["at", "kind", "contact", "task", "read"],
        [
            (
                format_time(n.created_at, settings),
                n.kind,
                n.contact_id or "",
                n.task_id or "",
                "yes" if n.read_at else "",
            )
            for n in found
        ],
        empty="No notifications.",
    )


@reminders.command("digest")
@click.argument("email")
@json_option
def show_digest(email: str, as_json: bool) -> None:
    """A user's digest for their local today: tasks due and contacts due a call."""

    async def work(kith: Kith) -> Digest:
        user = await UserService(kith).by_email(email)
        return await ReminderService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).digest(user.id)

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    click.echo(f"{email}, {found.day} ({found.timezone})")
    print_table(
        ["due", "contact", "task", "id"],
        [(format_time(t.due_at, settings), t.contact, t.summary, t.task_id) for t in found.tasks],
        empty="No tasks due today.",
    )
    print_table(
        ["contact", "why", "id"],
        [(c.contact, c.reason, c.contact_id) for c in found.due_contacts],
        empty="Nobody due a call.",
    )


@reminders.command("timezone")
@click.argument("email")
@click.argument("zone")
@click.option("--digest-at", metavar="HH:MM", help="Local time of the daily digest.")
@click.option("--no-digest", is_flag=True, help="No daily digest for this user.")
def set_zone(email: str, zone: str, digest_at: str | None, no_digest: bool) -> None:
    """Set a user's time zone (Europe/Berlin) and digest time."""

    async def work(kith: Kith) -> ReminderPreferences:
        user = await UserService(kith).by_email(email)
        wanted = ReminderPreferences(timezone=zone, digest_at=digest_at, digest=not no_digest)
        return await ReminderService(kith).set_preferences(user.id, wanted)

    saved = run_with_kith(work)
    when = "no digest" if not saved.digest else f"digest at {saved.digest_at or 'the default'}"
    click.echo(f"{email}: {saved.timezone}, {when}")


@click.command("snooze")
@click.argument("task_id", metavar="TASK_ID")
@click.option("--until", type=DUE, help="The new due time ('YYYY-MM-DD HH:MM', tomorrow...).")
@click.option("--minutes", type=click.IntRange(1, 525_600), help="Minutes from now.")
@json_option
def snooze_task(
    task_id: str, until: dt.datetime | None, minutes: int | None, as_json: bool
) -> None:
    """Move an open task's due time; it is reminded again then."""
    key = parse_id(task_id, "task", "`kith tasks list` shows them")
    if (until is None) == (minutes is None):
        raise CliError("give --until or --minutes")

    async def work(kith: Kith) -> InteractionOut:
        service = ReminderService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT)
        return await service.snooze(key, until=until, minutes=minutes)

    task = run_with_kith(work)
    if as_json:
        print_json(task)
        return
    click.echo(
        f"Snoozed {task.summary!r} ({task.id}) to {format_time(task.due_at, get_settings())}"
    )
