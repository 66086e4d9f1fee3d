"""``kith events``: what the event bus holds, and replaying dead letters."""

from __future__ import annotations

import click
import msgspec
from kith.console import (
    CliError,
    format_time,
    get_settings,
    note,
    parse_id,
    print_json,
    print_table,
    run_with_kith,
)
from kith.outbox import EventDetail, EventState, EventSummary, SubscriptionInfo
from kith.runtime import Kith

LIST_HINT = "`kith events list` shows them"


def _deliveries(summary: EventSummary) -> str:
    parts = [
        f"{count} {state}"
        for state, count in (
            ("delivered", summary.delivered),
            ("pending", summary.pending),
            ("dead", summary.dead),
        )
        if count
    ]
    if summary.fanned_out_at is None:
        parts.insert(0, "not fanned out yet")
    return ", ".join(parts) or "no subscribers"


@click.group()
def events() -> None:
    """The event bus: published events, their deliveries, dead letters."""


@events.command("list")
@click.option(
    "--state",
    type=click.Choice(["pending", "delivered", "dead"]),
    help="pending: waiting for a subscriber (or for fan-out); delivered: every subscriber "
    "has it; dead: some subscriber gave up on it.",
)
@click.option("--name", metavar="EVENT", help="Only events of this name, like contact.created.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Show at most this many.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_events(state: EventState | None, name: str | None, limit: int, as_json: bool) -> None:
    """List events, newest first."""

    async def work(kith: Kith) -> list[EventSummary]:
        return await kith.bus.list_events(state, limit + 1, name)

    found = run_with_kith(work)
    more = len(found) > limit
    found = found[:limit]
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    print_table(
        ["occurred", "event", "contact", "state", "deliveries", "id"],
        [
            (
                format_time(summary.event.occurred_at, settings),
                summary.event.name,
                summary.event.contact_id or "",
                summary.state,
                _deliveries(summary),
                summary.event.id,
            )
            for summary in found
        ],
        empty="No events." if state is None else f"No {state} events.",
    )
    if more:
        note(f"Showing the newest {limit}; use --limit to see more.")


@events.command("show")
@click.argument("event_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def show_event(event_id: str, as_json: bool) -> None:
    """Show one event and its delivery to each subscriber."""
    wanted = parse_id(event_id, "event", LIST_HINT)

    async def work(kith: Kith) -> EventDetail:
        return await kith.bus.get_event(wanted)

    detail = run_with_kith(work)
    if as_json:
        print_json(detail)
        return
    settings = get_settings()
    event = detail.summary.event
    for label, value in (
        ("id", event.id),
        ("event", event.name),
        ("occurred", format_time(event.occurred_at, settings)),
        ("actor", event.actor),
        ("contact", event.contact_id or ""),
        ("state", detail.summary.state),
        ("payload", msgspec.json.encode(event.payload).decode()),
    ):
        click.echo(f"{label + ':':<10}{value}")
    click.echo()
    if detail.summary.fanned_out_at is None:
        note("Not fanned out yet: a dispatcher (kith serve or kith worker) will pick it up.")
        return
    print_table(
        ["subscriber", "state", "attempts", "next attempt", "delivered", "last error"],
        [
            (
                delivery.subscriber,
                delivery.state,
                delivery.attempts,
                format_time(delivery.next_attempt_at, settings),
                format_time(delivery.delivered_at, settings),
                delivery.last_error or "",
            )
            for delivery in detail.deliveries
        ],
        empty="No subscriber wanted this event.",
    )


@events.command("replay")
@click.argument("event_id", metavar="ID", required=False)
@click.option("--all-dead", is_flag=True, help="Replay every dead delivery.")
@click.option("--subscriber", metavar="NAME", help="Only the deliveries to this subscriber.")
def replay(event_id: str | None, all_dead: bool, subscriber: str | None) -> None:
    """Make dead deliveries pending again: of event ID, or --all-dead.

    They get a fresh set of attempts and go before the later events of their contact that are
    still queued. A running dispatcher (kith serve or kith worker) delivers them."""
    if (event_id is None) == (not all_dead):
        raise click.UsageError("give an event ID or --all-dead (not both)")
    wanted = (
        parse_id(event_id, "event", "`kith events list` shows them")
        if event_id is not None
        else None
    )

    async def work(kith: Kith) -> int:
        return await kith.bus.replay(wanted, subscriber=subscriber)

    replayed = run_with_kith(work)
    if wanted is not None and not replayed:
        raise CliError(
            f"event {wanted} has no dead deliveries"
            + (f" to {subscriber}" if subscriber else "")
            + "; `kith events show` tells its state"
        )
    if not replayed:
        note("No dead deliveries.")
        return
    click.echo(f"{replayed} dead deliver{'y' if replayed == 1 else 'ies'} pending again.")


@events.command("subscribers")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def subscribers(as_json: bool) -> None:
    """List every recorded subscriber and its deliveries per state."""

    async def work(kith: Kith) -> list[SubscriptionInfo]:
        return await kith.bus.subscriptions()

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    print_table(
        ["subscriber", "events", "pending", "queued", "delivered", "dead", "last seen"],
        [
            (
                info.name,
                " ".join(info.events),
                info.pending,
                info.queued,
                info.delivered,
                info.dead,
                format_time(info.last_seen_at, settings),
            )
            for info in found
        ],
        empty="No subscriber recorded yet (dispatchers record theirs when they start).",
    )


@events.command("forget")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(name: str, yes: bool) -> None:
    """Remove subscriber NAME (of an uninstalled plugin) and its pending deliveries.

    A process that still runs it records it again when it starts."""

    async def known(kith: Kith) -> bool:
        return any(info.name == name for info in await kith.bus.subscriptions())

    if not run_with_kith(known):
        raise CliError(f"no subscriber {name!r}; `kith events subscribers` lists them")
    if not yes:
        click.confirm(f"Forget {name} and drop its pending deliveries?", abort=True)

    async def work(kith: Kith) -> int:
        return await kith.bus.forget(name)

    dropped = run_with_kith(work)
    click.echo(f"Forgot {name}; {dropped} pending deliveries dropped.")
