"""``kith tasks``: add follow-up tasks, list the open ones by due date, mark them done."""

from __future__ import annotations

import datetime as dt
import uuid

import click
import msgspec
from kith.cli._when import DUE
from kith.console import (
    AUDIT_CHANNEL,
    AUDIT_CONTEXT,
    CliError,
    format_time,
    get_settings,
    json_option,
    note,
    parse_id,
    print_json,
    print_table,
    run_with_kith,
)
from kith.events import utcnow
from kith.pagination import MAX_LIMIT
from kith.runtime import Kith
from kith.schemas import InteractionCreate, InteractionOut
from kith.services.contacts import ContactService
from kith.services.interactions import DueFilter, InteractionService
from kith.services.users import UserService

CLI_SOURCE = "cli"


@click.group()
def tasks() -> None:
    """Follow-up tasks: add, list, done."""


@tasks.command("add")
@click.argument("contact_id", metavar="CONTACT_ID")
@click.argument("summary")
@click.option(
    "--due",
    type=DUE,
    help="When it is due: YYYY-MM-DD (by the end of that day), 'YYYY-MM-DD HH:MM', today or "
    "tomorrow; times without an offset are in the installation's time zone.",
)
@click.option("--assignee", metavar="EMAIL", help="The user who should do it.")
@click.option("--body", default="", help="Details.")
@json_option
def add_task(
    contact_id: str,
    summary: str,
    due: dt.datetime | None,
    assignee: str | None,
    body: str,
    as_json: bool,
) -> None:
    """Add a follow-up task for a contact."""
    key = parse_id(contact_id, "contact", "`kith contacts search` finds them")
    try:
        # convert, unlike the constructor, checks lengths the same way the API does.
        data = msgspec.convert(
            {"kind": "task", "summary": summary, "body": body, "source": CLI_SOURCE},
            InteractionCreate,
        )
    except msgspec.ValidationError as exc:
        raise CliError(f"invalid task: {exc}") from None

    async def work(kith: Kith) -> tuple[InteractionOut, str, str]:
        assignee_id = (await UserService(kith).by_email(assignee)).id if assignee else None
        task = msgspec.structs.replace(data, due_at=due, assignee_id=assignee_id)
        service = InteractionService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT)
        added, _ = await service.log(key, task)
        name = (await ContactService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).get(key)).name
        return added, name, (assignee or "").strip().lower()

    added, name, assigned = run_with_kith(work)
    if as_json:
        print_json(added)
        return
    details = [f"due {format_time(added.due_at, get_settings())}" if added.due_at else "no date"]
    if assigned:
        details.append(f"for {assigned}")
    click.echo(f"Added task {added.summary!r} about {name} ({added.id}), {', '.join(details)}")


@tasks.command("done")
@click.argument("task_id", metavar="TASK_ID")
@json_option
def complete_task(task_id: str, as_json: bool) -> None:
    """Mark a task done (`kith tasks list` shows the ids)."""
    key = parse_id(task_id, "task", "`kith tasks list` shows them")

    async def work(kith: Kith) -> tuple[InteractionOut, bool]:
        return await InteractionService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).complete(key)

    task, closed = run_with_kith(work)
    if as_json:
        print_json(task)
        return
    when = format_time(task.done_at, get_settings())
    if closed:
        click.echo(f"Done: {task.summary!r} ({task.id}) at {when}")
    else:
        note(f"Task {task.summary!r} ({task.id}) was already done at {when}")


@tasks.command("list")
@click.option(
    "--due",
    type=click.Choice(["today", "overdue", "all"]),
    default="all",
    show_default=True,
    help="today: due by the end of today, overdue ones included; overdue: past due; "
    "all: every open task.",
)
@click.option("--assignee", metavar="EMAIL", help="Only tasks assigned to this user.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Show at most this many.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_tasks(due: DueFilter, assignee: str | None, limit: int, as_json: bool) -> None:
    """List open tasks, soonest due first."""

    async def work(kith: Kith) -> tuple[list[InteractionOut], bool, dict[uuid.UUID, str]]:
        users = UserService(kith)
        assignee_id = (await users.by_email(assignee)).id if assignee else None
        service = InteractionService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT)
        found: list[InteractionOut] = []
        cursor: str | None = None
        more = False
        while len(found) < limit:
            page = await service.tasks(
                due=due,
                assignee_id=assignee_id,
                cursor=cursor,
                limit=min(limit - len(found), MAX_LIMIT),
            )
            found.extend(page.items)
            cursor = page.next_cursor
            more = cursor is not None
            if not more:
                break
        names: dict[uuid.UUID, str] = {user.id: user.email for user in await users.list()}
        contacts = ContactService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT)
        for contact_id in {task.contact_id for task in found}:
            names[contact_id] = (await contacts.get(contact_id)).name
        return found, more, names

    found, more, names = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    now = utcnow()
    print_table(
        ["due", "", "contact", "summary", "assignee", "id"],
        [
            (
                format_time(task.due_at, settings) or "no date",
                "overdue" if task.due_at is not None and task.due_at < now else "",
                names.get(task.contact_id, task.contact_id),
                task.summary,
                names.get(task.assignee_id, task.assignee_id) if task.assignee_id else "",
                task.id,
            )
            for task in found
        ],
        empty="No open tasks.",
    )
    if more:
        note(f"Showing the first {len(found)}; use --limit to see more.")
