"""``kith tasks``: open follow-up tasks by due date."""

from __future__ import annotations

import uuid

import click
from kith.console import (
    AUDIT_CHANNEL,
    AUDIT_CONTEXT,
    format_time,
    get_settings,
    note,
    print_json,
    print_table,
    run_with_kith,
)
from kith.events import utcnow
from kith.pagination import MAX_LIMIT
from kith.runtime import Kith
from kith.schemas import InteractionOut
from kith.services.contacts import ContactService
from kith.services.interactions import DueFilter, InteractionService
from kith.services.users import UserService


@click.group()
def tasks() -> None:
    """Follow-up tasks."""


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
