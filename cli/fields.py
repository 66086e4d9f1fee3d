"""``kith fields``: declare, list, change, archive and purge the custom fields of contacts."""

from __future__ import annotations

from typing import Any, get_args

import click
import msgspec
from kith.console import (
    AUDIT_CHANNEL,
    CliError,
    json_option,
    print_json,
    print_table,
    run_with_kith,
)
from kith.runtime import Kith
from kith.schemas import FieldCreate, FieldOut, FieldPatch, FieldType, PurgeOutcome
from kith.services.fields import FieldService

TYPES = get_args(FieldType)


def _convert(values: dict[str, Any], shape: type[Any]) -> Any:
    # convert, unlike the constructor, checks names, patterns and lengths as the API does.
    try:
        return msgspec.convert(values, shape)
    except msgspec.ValidationError as exc:
        raise CliError(f"invalid field: {exc}") from None


def _show(declared: FieldOut, verb: str) -> None:
    click.echo(f"{verb} {declared.type} field {declared.name}" + _traits(declared))


def _traits(declared: FieldOut) -> str:
    traits = [
        trait
        for trait, on in (
            ("required", declared.required),
            ("personal", declared.personal),
            ("searchable", declared.searchable),
            ("archived", declared.archived),
        )
        if on
    ]
    return f" ({', '.join(traits)})" if traits else ""


@click.group()
def fields() -> None:
    """Declare, list, change, archive and purge custom fields of contacts."""


@fields.command("add")
@click.argument("name")
@click.option("--type", "kind", type=click.Choice(TYPES), required=True, help="The value type.")
@click.option("--label", default="", help="The name shown to people.")
@click.option("--required", is_flag=True, help="Every new contact must have a value.")
@click.option("--default", help="The value a new contact gets when none is given.")
@click.option("--choice", "choices", multiple=True, help="A choice (repeatable).")
@click.option("--currency", help="The currency of a decimal (money) field, like EUR.")
@click.option(
    "--personal",
    is_flag=True,
    help="Personal data: encrypted, exported and erased with the person.",
)
@click.option("--searchable", is_flag=True, help="Contacts can be found by an exact value.")
@click.option("--category", help="Data category of a personal field (default: custom).")
@click.option("--purpose", help="Purpose of a personal field (default: customer_relationship).")
@click.option(
    "--retention",
    metavar="CLASS",
    help="Retention class of a personal field's values, which a rule of [privacy.retention] "
    "may name (counted from when each value was given).",
)
@json_option
def add_field(
    name: str,
    kind: str,
    label: str,
    required: bool,
    default: str | None,
    choices: tuple[str, ...],
    currency: str | None,
    personal: bool,
    searchable: bool,
    category: str | None,
    purpose: str | None,
    retention: str | None,
    as_json: bool,
) -> None:
    """Declare a custom field NAME (lower-case letters, digits and _)."""
    data = _convert(
        {
            "name": name,
            "type": kind,
            "label": label,
            "required": required,
            "default": default,
            "choices": list(choices),
            "currency": currency,
            "personal": personal,
            "searchable": searchable,
            "category": category,
            "purpose": purpose,
            "retention": retention,
        },
        FieldCreate,
    )

    async def work(kith: Kith) -> FieldOut:
        return await FieldService(kith).add(data)

    declared = run_with_kith(work)
    if as_json:
        print_json(declared)
        return
    _show(declared, "Added")


@fields.command("list")
@click.option("--all", "include_archived", is_flag=True, help="Include archived fields.")
@json_option
def list_fields(include_archived: bool, as_json: bool) -> None:
    """List custom fields: name, type, label, rules, and who declared them (admin,
    kith.toml or a plugin)."""

    async def work(kith: Kith) -> list[FieldOut]:
        return await FieldService(kith).declared(include_archived=include_archived)

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    print_table(
        ["name", "type", "label", "choices", "default", "rules", "declared by"],
        [
            (
                f.name,
                f.type + (f" {f.currency}" if f.currency else ""),
                f.label,
                ", ".join(f.choices),
                "" if f.default is None else str(f.default),
                _traits(f).strip(" ()"),
                f.declared_by,
            )
            for f in found
        ],
        empty="No custom fields yet; add one with `kith fields add NAME --type text`.",
    )


@fields.command("change")
@click.argument("name")
@click.option(
    "--type",
    "kind",
    type=click.Choice(TYPES),
    help="A new type: stored values are converted, or nothing changes if any would not.",
)
@click.option("--label", help="The name shown to people.")
@click.option("--required/--optional", default=None, help="Whether new contacts need a value.")
@click.option("--default", help="The value a new contact gets when none is given.")
@click.option("--no-default", is_flag=True, help="Remove the default.")
@click.option("--choice", "choices", multiple=True, help="The choices, all of them (repeatable).")
@click.option("--currency", help="The currency of a decimal (money) field.")
@click.option("--searchable/--not-searchable", default=None, help="Exact lookup by value.")
@click.option("--retention", metavar="CLASS", help="Retention class of a personal field.")
@json_option
def change_field(
    name: str,
    kind: str | None,
    label: str | None,
    required: bool | None,
    default: str | None,
    no_default: bool,
    choices: tuple[str, ...],
    currency: str | None,
    searchable: bool | None,
    retention: str | None,
    as_json: bool,
) -> None:
    """Change a custom field's type, label, rules, default, choices or retention class."""
    if default is not None and no_default:
        raise CliError("give --default or --no-default, not both")
    given: dict[str, Any] = {
        "type": kind,
        "label": label,
        "required": required,
        "currency": currency,
        "searchable": searchable,
        "retention": retention,
        "choices": list(choices) or None,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    if default is not None or no_default:
        changes["default"] = default
    if not changes:
        raise CliError("nothing to change: give at least one option (see --help)")
    patch = _convert(changes, FieldPatch)

    async def work(kith: Kith) -> FieldOut:
        return await FieldService(kith).change(name, patch, channel=AUDIT_CHANNEL)

    declared = run_with_kith(work)
    if as_json:
        print_json(declared)
        return
    _show(declared, "Changed")


@fields.command("archive")
@click.argument("name")
def archive_field(name: str) -> None:
    """Archive a custom field: it is hidden and takes no values; its values stay stored."""

    async def work(kith: Kith) -> FieldOut:
        return await FieldService(kith).archive(name)

    _show(run_with_kith(work), "Archived")


@fields.command("purge")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge_field(name: str, yes: bool) -> None:
    """Delete an archived custom field and every value contacts hold of it, for good."""
    if not yes:
        click.confirm(
            f"Delete custom field {name} and every value contacts hold of it? This cannot be "
            "undone",
            abort=True,
            err=True,
        )

    async def work(kith: Kith) -> PurgeOutcome:
        return await FieldService(kith).purge(name, channel=AUDIT_CHANNEL)

    outcome = run_with_kith(work)
    values = outcome.values_deleted
    click.echo(f"Purged field {outcome.field}: {values} value{'s' if values != 1 else ''} deleted")
