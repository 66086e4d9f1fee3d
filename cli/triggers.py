"""``kith triggers``: list, add, remove, dry run and run trigger rules."""

from __future__ import annotations

import click
import msgspec
from kith.console import (
    AUDIT_CHANNEL,
    AUDIT_CONTEXT,
    CliError,
    json_option,
    note,
    print_json,
    print_table,
    run_with_kith,
)
from kith.loop_settings import RuleSpec
from kith.runtime import Kith
from kith.services.triggers import DryRun, RuleOut, TriggerService


@click.group()
def triggers() -> None:
    """Trigger rules: a condition over events or state, and an action."""


@triggers.command("list")
@json_option
def list_rules(as_json: bool) -> None:
    """List the rules of kith.toml and those added here or through the API."""

    async def work(kith: Kith) -> list[RuleOut]:
        return await TriggerService(kith).rules()

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    print_table(
        ["name", "condition", "action", "enabled", "from"],
        [
            (
                r.rule.name,
                r.rule.condition,
                r.rule.action,
                "yes" if r.rule.enabled else "no",
                r.origin,
            )
            for r in found
        ],
        empty="No trigger rules.",
    )


@triggers.command("add")
@click.argument("definition")
def add_rule(definition: str) -> None:
    """Add a rule given as JSON, e.g. '{"name": "churn", "condition": "order_gap",
    "action": "task", "factor": 2}'."""
    try:
        spec = msgspec.json.decode(definition.encode(), type=RuleSpec)
    except msgspec.DecodeError as exc:
        raise CliError(f"invalid rule: {exc}") from None

    async def work(kith: Kith) -> RuleOut:
        return await TriggerService(kith).add(spec)

    added = run_with_kith(work)
    click.echo(f"Added rule {added.rule.name}: {added.rule.condition} -> {added.rule.action}")


@triggers.command("remove")
@click.argument("name")
def remove_rule(name: str) -> None:
    """Remove a rule added here or through the API."""

    async def work(kith: Kith) -> None:
        await TriggerService(kith).remove(name)

    run_with_kith(work)
    click.echo(f"Removed rule {name}")


@triggers.command("dry-run")
@click.argument("name")
@json_option
def dry_run(name: str, as_json: bool) -> None:
    """Whom the rule would fire for now; nothing is changed."""

    async def work(kith: Kith) -> DryRun:
        service = TriggerService(kith, AUDIT_CHANNEL, AUDIT_CONTEXT)
        return await service.dry_run(name, names=True)

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    print_table(
        ["contact", "why", "period", "id"],
        [(h.name, h.reason, h.period, h.contact_id) for h in found.hits],
        empty=f"Rule {name} would fire for nobody now.",
    )
    if found.refused or found.already_fired:
        note(
            f"Left out: {found.refused} refused processing (restricted), "
            f"{found.already_fired} already fired for this period."
        )


@triggers.command("run")
@click.argument("name")
def run_rule(name: str) -> None:
    """Fire the rule now for everyone it hits (once per contact and period)."""

    async def work(kith: Kith) -> int:
        return await TriggerService(kith).run(name)

    fired = run_with_kith(work)
    click.echo(f"Rule {name} fired {fired} time(s)")
