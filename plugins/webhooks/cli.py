"""``kith webhooks``: subscribe URLs to events, read the delivery log, send due deliveries.

Whoever runs the ``kith`` command on the installation acts as an administrator, as with
``kith users``.
"""

from __future__ import annotations

import asyncio
import uuid

import click
from kith import Actor, Kith, Page
from kith.console import (
    AUDIT_CHANNEL,
    AUDIT_CONTEXT,
    format_time,
    get_settings,
    note,
    opened_kith,
    print_json,
    print_table,
    run_with_kith,
)
from kith.plugins.webhooks.delivery import WebhookDeliverer
from kith.plugins.webhooks.schemas import (
    DELIVERY_STATES,
    DeliveryDetail,
    DeliveryOut,
    DeliveryRun,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionWithSecret,
)
from kith.plugins.webhooks.service import WebhookService

CLI_ACTOR = Actor(kind="plugin", name="cli")


@click.group()
def webhooks() -> None:
    """Send events to other systems as signed HTTP requests."""


@webhooks.command("add")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    required=True,
    metavar="PATTERN",
    help="An event name or pattern: contact.created, contact.*, * (repeat for more).",
)
@click.option(
    "--secret",
    default=None,
    help="The signing secret (at least 16 characters); generated when left out.",
)
@click.option(
    "--personal-data",
    is_flag=True,
    help="Include the contact's fields (subject to consent), not only ids.",
)
@click.option("--description", default="", help="What the receiver is, for the list.")
@click.option("--inactive", is_flag=True, help="Create it paused.")
def add(
    url: str,
    events: tuple[str, ...],
    secret: str | None,
    personal_data: bool,
    description: str,
    inactive: bool,
) -> None:
    """Subscribe URL to events. Prints the id and the secret; the secret is not shown again."""
    data = SubscriptionCreate(
        url=url,
        events=list(events),
        secret=secret,
        include_personal_data=personal_data,
        description=description,
        active=not inactive,
    )

    async def work(kith: Kith) -> SubscriptionWithSecret:
        return await WebhookService(kith).create(data, CLI_ACTOR)

    created = run_with_kith(work)
    click.echo(f"id      {created.subscription.id}")
    click.echo(f"secret  {created.secret}")
    note("Keep the secret now: it signs every delivery and is not shown again.")


@webhooks.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_subscriptions(as_json: bool) -> None:
    """List subscriptions: id, URL, events, personal data, active."""

    async def work(kith: Kith) -> list[SubscriptionOut]:
        return await WebhookService(kith).list()

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    print_table(
        ["id", "url", "events", "personal data", "active", "description"],
        [
            (
                s.id,
                s.url,
                ",".join(s.events),
                "yes" if s.include_personal_data else "ids only",
                "yes" if s.active else "no",
                s.description,
            )
            for s in found
        ],
        empty="No webhook subscriptions; add one with `kith webhooks add URL --event contact.*`.",
    )


@webhooks.command("remove")
@click.argument("subscription_id", type=click.UUID)
def remove(subscription_id: uuid.UUID) -> None:
    """Remove a subscription and its delivery log."""

    async def work(kith: Kith) -> SubscriptionOut:
        return await WebhookService(kith).remove(subscription_id, CLI_ACTOR)

    removed = run_with_kith(work)
    click.echo(f"Removed {removed.id} ({removed.url})")


@webhooks.command("rotate-secret")
@click.argument("subscription_id", type=click.UUID)
@click.option("--secret", default=None, help="The new secret; generated when left out.")
def rotate_secret(subscription_id: uuid.UUID, secret: str | None) -> None:
    """Replace a subscription's signing secret and print the new one (shown once)."""

    async def work(kith: Kith) -> SubscriptionWithSecret:
        return await WebhookService(kith).rotate_secret(subscription_id, secret, CLI_ACTOR)

    rotated = run_with_kith(work)
    click.echo(f"secret  {rotated.secret}")
    until = rotated.previous_secret_until
    note(
        "Deliveries from now on are signed with this secret"
        + (
            f", and with the old one too until {format_time(until, get_settings())}"
            if until
            else "; the old one stopped signing now"
        )
        + ". The new secret is not shown again."
    )


@webhooks.command("deliveries")
@click.option("--subscription", "subscription_id", type=click.UUID, help="Only this one's.")
@click.option("--state", type=click.Choice(DELIVERY_STATES), help="Only deliveries in this state.")
@click.option("--event", "event_id", type=click.UUID, help="Only this event's.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with every attempt).")
def deliveries(
    subscription_id: uuid.UUID | None,
    state: str | None,
    event_id: uuid.UUID | None,
    limit: int,
    as_json: bool,
) -> None:
    """The delivery log, newest first: state, attempts, last status or error, next attempt."""

    async def work(kith: Kith) -> Page[DeliveryOut]:
        return await WebhookService(kith).deliveries(
            subscription_id=subscription_id, state=state, event_id=event_id, limit=limit
        )

    page = run_with_kith(work)
    if as_json:
        print_json(page.items)
        return
    settings = get_settings()
    print_table(
        ["id", "event", "subscription", "state", "attempts", "last result", "next attempt"],
        [
            (
                d.id,
                f"{d.event_name} {d.event_id}",
                d.subscription_id,
                d.state,
                d.attempts,
                d.error or (f"HTTP {d.status_code}" if d.status_code else ""),
                format_time(d.next_attempt_at, settings),
            )
            for d in page.items
        ],
        empty="No deliveries.",
    )


@webhooks.command("delivery")
@click.argument("delivery_id", type=click.UUID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def delivery(delivery_id: uuid.UUID, as_json: bool) -> None:
    """One delivery: its attempts and the start of what its receiver last answered. The
    answer may quote the person, so reading it is recorded in their audit log."""

    async def work(kith: Kith) -> DeliveryDetail:
        return await WebhookService(kith).delivery_detail(
            delivery_id, CLI_ACTOR, AUDIT_CHANNEL, AUDIT_CONTEXT
        )

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    answer = (found.response_text or "-").splitlines() or ["-"]
    for label, value in (
        ("id", found.id),
        ("event", f"{found.event_name} {found.event_id}"),
        ("subscription", found.subscription_id),
        ("state", found.state),
        ("next attempt", format_time(found.next_attempt_at, settings) or "-"),
        ("answer", answer[0]),
        *(("", line) for line in answer[1:]),
    ):
        click.echo(f"{label:<14}{value}")
    click.echo()
    print_table(
        ["attempt", "at", "status", "result", "bytes", "ms"],
        [
            (
                a.attempt,
                format_time(a.at, settings),
                a.status_code or "",
                a.error or "delivered",
                "" if a.response_bytes is None else a.response_bytes,
                a.duration_ms,
            )
            for a in found.history
        ],
        empty="No attempt yet.",
    )


@webhooks.command("retry")
@click.argument("delivery_id", type=click.UUID)
def retry(delivery_id: uuid.UUID) -> None:
    """Queue a failed delivery for one more attempt (made by the worker or `deliver`)."""

    async def work(kith: Kith) -> DeliveryOut:
        return await WebhookService(kith).retry(delivery_id, actor=CLI_ACTOR)

    queued = run_with_kith(work)
    click.echo(f"Queued {queued.id} ({queued.event_name}) for another attempt.")


@webhooks.command("deliver")
@click.option("--loop", is_flag=True, help="Keep going every poll_seconds until interrupted.")
def deliver(loop: bool) -> None:
    """Send the deliveries that are due now (the worker does this on its own)."""

    async def once(kith: Kith) -> DeliveryRun:
        return await WebhookDeliverer(kith).run_due()

    if loop:

        async def forever() -> None:
            async with opened_kith() as kith:
                await kith.database.ensure_migrated()
                await WebhookDeliverer(kith).run_forever()

        try:
            asyncio.run(forever())
        except KeyboardInterrupt:
            note("Stopped.")
        return
    run = run_with_kith(once)
    click.echo(
        f"{run.attempted} attempted: {run.delivered} delivered, {run.retrying} to retry, "
        f"{run.failed} failed for good."
    )
