"""``kith contacts``: add, list, show and search contacts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import click
import msgspec
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
from kith.pagination import MAX_LIMIT
from kith.runtime import Kith
from kith.schemas import ContactCreate, ContactOut, InteractionOut, Page
from kith.services.contacts import KINDS, SORTS, ContactFilter, ContactService
from kith.services.interactions import InteractionService
from kith.services.users import UserService
from kith.settings import Settings

CLI_SOURCE = "cli"
T = TypeVar("T")


class ContactDetail(msgspec.Struct, kw_only=True):
    """What ``kith contacts show --json`` prints: an organization's people too."""

    contact: ContactOut
    timeline: list[InteractionOut]
    people: list[ContactOut] = []


async def collect(
    fetch: Callable[[str | None, int], Awaitable[Page[T]]], limit: int
) -> tuple[list[T], bool]:
    """Up to ``limit`` items across pages, and whether more exist."""
    items: list[T] = []
    cursor: str | None = None
    while len(items) < limit:
        page = await fetch(cursor, min(limit - len(items), MAX_LIMIT))
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items, False
    return items, True


def _primary(values: list[str], primaries: list[bool]) -> str:
    for value, primary in zip(values, primaries, strict=True):
        if primary:
            return value
    return values[0] if values else ""


def _print_contacts(found: list[ContactOut], *, more: bool, archived_column: bool) -> None:
    settings = get_settings()
    headers = ["id", "kind", "name", "email", "phone", "tags", "created"]
    if archived_column:
        headers.append("archived")
    rows = []
    for c in found:
        row: list[object] = [
            c.id,
            c.kind,
            c.name,
            _primary([e.address for e in c.emails], [e.primary for e in c.emails]),
            _primary([p.number for p in c.phones], [p.primary for p in c.phones]),
            ", ".join(c.tags),
            format_time(c.created_at, settings),
        ]
        if archived_column:
            row.append("yes" if c.archived else "no")
        rows.append(row)
    print_table(headers, rows, empty="No contacts found.")
    if more:
        note(f"Showing the first {len(found)}; use --limit to see more.")


_limit_option = click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Show at most this many.",
)
_all_option = click.option(
    "--all", "include_archived", is_flag=True, help="Include archived contacts."
)

F = TypeVar("F", bound=Callable[..., Any])


def filter_options(command: F) -> F:
    """The filters of ``kith contacts list``, which ``kith export contacts`` takes too: the
    command receives ``q``, ``include_archived``, ``organization`` and ``field_filters``, and
    :func:`contact_filter` makes them one filter."""

    options = [
        click.option(
            "--search",
            "q",
            metavar="TEXT",
            help="Only contacts with this exact email or phone, or whose name has words "
            "starting with these.",
        ),
        _all_option,
        click.option("--organization", metavar="ID", help="Only the people of this organization."),
        click.option(
            "--field",
            "field_filters",
            multiple=True,
            metavar="NAME=VALUE",
            help="A custom field's value (repeatable); NAME.min=... and NAME.max=... for a "
            "range of numbers, amounts, dates and times.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def contact_filter(
    q: str | None, include_archived: bool, organization: str | None, field_filters: Sequence[str]
) -> ContactFilter:
    """The filter the options of :func:`filter_options` describe."""
    return ContactFilter(
        q=q,
        include_archived=include_archived,
        organization_id=(
            parse_id(organization, "organization", "`kith contacts list` shows them")
            if organization is not None
            else None
        ),
        fields=field_values(field_filters, "--field"),
    )


def field_values(given: Sequence[str], option: str) -> dict[str, str]:
    """``NAME=VALUE`` items of a repeated option, by name."""
    values: dict[str, str] = {}
    for item in given:
        field, equals, value = item.partition("=")
        if not equals or not field.strip():
            raise CliError(f"{option} {item!r}: write it as NAME=VALUE, like industry=retail")
        values[field.strip()] = value
    return values


@click.group()
def contacts() -> None:
    """Add, list, show and search contacts."""


@contacts.command("add")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["person", "organization"]),
    default="person",
    show_default=True,
)
@click.option("--email", "emails", multiple=True, help="An email address (repeatable).")
@click.option("--phone", "phones", multiple=True, help="A phone number, any format (repeatable).")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--organization", metavar="ID", help="The organization this person belongs to.")
@click.option(
    "--field",
    "custom",
    multiple=True,
    metavar="NAME=VALUE",
    help="A custom field's value (repeatable); `kith fields list` shows the fields.",
)
@json_option
def add_contact(
    name: str,
    kind: str,
    emails: tuple[str, ...],
    phones: tuple[str, ...],
    tags: tuple[str, ...],
    organization: str | None,
    custom: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add a contact. The first email and phone given are the primary ones."""
    fields = field_values(custom, "--field")
    organization_id = (
        parse_id(organization, "organization", "`kith contacts list` shows them")
        if organization is not None
        else None
    )
    try:
        # convert, unlike the constructor, checks lengths and counts the same way the API does.
        data = msgspec.convert(
            {
                "kind": kind,
                "name": name,
                "emails": [{"address": e} for e in emails],
                "phones": [{"number": p} for p in phones],
                "tags": list(tags),
                "organization_id": organization_id,
                "source": CLI_SOURCE,
                "fields": fields,
            },
            ContactCreate,
        )
    except msgspec.ValidationError as exc:
        raise CliError(f"invalid contact: {exc}") from None

    async def work(kith: Kith) -> ContactOut:
        return await ContactService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).create(data)

    contact = run_with_kith(work)
    if as_json:
        print_json(contact)
        return
    reachable = [e.address for e in contact.emails] + [p.number for p in contact.phones]
    click.echo(
        f"Added {contact.kind} {contact.name} ({contact.id})"
        + (f": {', '.join(reachable)}" if reachable else "")
    )


@contacts.command("list")
@_limit_option
@filter_options
@click.option("--tag", help="Only contacts with this tag.")
@click.option("--owner", metavar="ID", help="Only contacts owned by this user.")
@click.option("--kind", type=click.Choice(KINDS), help="Only people or only organizations.")
@click.option(
    "--sort",
    type=click.Choice(SORTS),
    default="created",
    show_default=True,
    help="By creation, last change or name; '-' for descending. Names are encrypted: "
    "'name' orders each page by name, the pages following creation order. "
    "'last_interaction': the most recent interaction first, contacts with none last.",
)
@json_option
def list_contacts(
    limit: int,
    q: str | None,
    include_archived: bool,
    organization: str | None,
    field_filters: tuple[str, ...],
    tag: str | None,
    owner: str | None,
    kind: str | None,
    sort: str,
    as_json: bool,
) -> None:
    """List contacts, oldest first unless --sort says otherwise."""
    filters = contact_filter(q, include_archived, organization, field_filters)
    owner_id = parse_id(owner, "owner", "`kith users list` shows them") if owner else None

    async def work(kith: Kith) -> tuple[list[ContactOut], bool]:
        service = ContactService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT)
        return await collect(
            lambda cursor, n: service.list(
                q=filters.q,
                cursor=cursor,
                limit=n,
                include_archived=filters.include_archived,
                organization_id=filters.organization_id,
                fields=filters.fields,
                tag=tag,
                owner_id=owner_id,
                kind=kind,
                sort=sort,
            ),
            limit,
        )

    found, more = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    _print_contacts(found, more=more, archived_column=include_archived)


@contacts.command("search")
@click.argument("query")
@_limit_option
@_all_option
@json_option
def search_contacts(query: str, limit: int, include_archived: bool, as_json: bool) -> None:
    """Find contacts by an exact email or phone (typed any way) or by the start of words of
    their name, in any order and any script."""
    if not query.strip():
        raise CliError("give something to search for: an email, a phone number or a name")

    async def work(kith: Kith) -> tuple[list[ContactOut], bool]:
        service = ContactService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT)
        return await collect(
            lambda cursor, n: service.list(
                q=query, cursor=cursor, limit=n, include_archived=include_archived
            ),
            limit,
        )

    found, more = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    if not found:
        note(f"No contacts match {query!r}.")
        return
    _print_contacts(found, more=more, archived_column=include_archived)


@contacts.command("show")
@click.argument("contact_id", metavar="ID")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, MAX_LIMIT),
    help="Show at most this many timeline entries (newest first), and people.",
)
@click.option(
    "--include-people",
    is_flag=True,
    help="For an organization: its people's interactions on its timeline too.",
)
@json_option
def show_contact(contact_id: str, limit: int, include_people: bool, as_json: bool) -> None:
    """Show a contact and its timeline; for an organization, its people too."""
    key = parse_id(contact_id, "contact", "`kith contacts list` shows them")

    more_people = False

    async def work(kith: Kith) -> tuple[ContactDetail, bool, dict[str, str]]:
        nonlocal more_people
        service = ContactService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT)
        contact = await service.get(key)
        page = await InteractionService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).timeline(
            key, limit=limit, include_people=include_people
        )
        people: list[ContactOut] = []
        if contact.kind == "organization":
            found = await service.people(key, limit=limit)
            people, more_people = found.items, found.next_cursor is not None
        names: dict[str, str] = {str(person.id): person.name for person in people}
        if contact.organization_id is not None:
            names["organization"] = (
                await ContactService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT).get(
                    contact.organization_id
                )
            ).name
        users = {user.id: user.email for user in await UserService(kith).list()}
        if contact.owner_id is not None:
            names["owner"] = users.get(contact.owner_id, str(contact.owner_id))
        for item in page.items:
            if item.assignee_id is not None:
                names[str(item.assignee_id)] = users.get(item.assignee_id, str(item.assignee_id))
        for item in page.items:
            if item.contact_id != key and str(item.contact_id) not in names:
                names[str(item.contact_id)] = (await service.get(item.contact_id)).name
        detail = ContactDetail(contact=contact, timeline=page.items, people=people)
        return detail, page.next_cursor is not None, names

    detail, more, names = run_with_kith(work)
    if as_json:
        print_json(detail)
        return
    settings = get_settings()
    c = detail.contact
    fields: list[tuple[str, str]] = [("id", str(c.id)), ("kind", c.kind)]
    if c.given_name or c.family_name:
        fields.append(("given/family", " / ".join([c.given_name or "", c.family_name or ""])))
    for e in c.emails:
        fields.append(("email", _point(e.address, e.label, e.primary)))
    for p in c.phones:
        fields.append(("phone", _point(p.number, p.label, p.primary)))
    if c.organization_id is not None:
        fields.append(("organization", f"{names['organization']} ({c.organization_id})"))
    if c.owner_id is not None:
        fields.append(("owner", names["owner"]))
    if c.tags:
        fields.append(("tags", ", ".join(c.tags)))
    fields += [
        ("source", c.source),
        ("created", format_time(c.created_at, settings)),
        ("updated", format_time(c.updated_at, settings)),
    ]
    if c.archived:
        fields.append(("archived", "yes"))
    click.echo(c.name)
    width = max(len(label) for label, _ in fields)
    for label, value in fields:
        click.echo(f"  {label.ljust(width)}  {value}")
    click.echo("")
    if c.kind == "organization":
        if detail.people:
            click.echo("People:")
            print_table(
                ["id", "name", "email", "phone"],
                [
                    (
                        p.id,
                        p.name,
                        _primary([e.address for e in p.emails], [e.primary for e in p.emails]),
                        _primary([n.number for n in p.phones], [n.primary for n in p.phones]),
                    )
                    for p in detail.people
                ],
            )
            if more_people:
                note(
                    f"Showing the first {len(detail.people)} people; "
                    f"`kith contacts list --organization {c.id}` lists them all."
                )
        else:
            click.echo("People: none yet.")
        click.echo("")
    if not detail.timeline:
        click.echo("Timeline: nothing yet.")
        return
    click.echo("Timeline, newest first:")
    headers = ["when", "kind", "direction", "summary", "task"]
    if include_people:
        headers.insert(1, "who")
    rows = []
    for i in detail.timeline:
        row: list[object] = [
            format_time(i.occurred_at, settings),
            i.kind,
            i.direction or "",
            i.summary,
            _task_state(i, names, settings),
        ]
        if include_people:
            row.insert(1, c.name if i.contact_id == c.id else names.get(str(i.contact_id), ""))
        rows.append(row)
    print_table(headers, rows)
    if more:
        note(f"Showing the newest {len(detail.timeline)} entries; use --limit to see more.")


def _point(value: str, label: str, primary: bool) -> str:
    notes = [text for text in (label, "primary" if primary else "") if text]
    return f"{value} ({', '.join(notes)})" if notes else value


def _task_state(item: InteractionOut, names: dict[str, str], settings: Settings) -> str:
    if item.kind != "task":
        return ""
    parts = []
    if item.done_at is not None:
        parts.append(f"done {format_time(item.done_at, settings)}")
    elif item.due_at is not None:
        parts.append(f"due {format_time(item.due_at, settings)}")
    if item.assignee_id is not None:
        parts.append(names.get(str(item.assignee_id), str(item.assignee_id)))
    return ", ".join(parts)
