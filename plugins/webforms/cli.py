"""``kith forms``: create, list, show and disable web forms (as an administrator)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import msgspec
from kith import Kith
from kith.console import print_json, print_table, run_with_kith
from kith.plugins.webforms.schemas import FormCreate, FormField, FormOut, FormPurpose, FormTask
from kith.plugins.webforms.service import FormService


@click.group()
def forms() -> None:
    """Web forms that bring leads in from your website."""


def _field(text: str) -> FormField:
    # NAME=MAPS_TO, with a trailing ! for a required field: email=email!
    name, _, target = text.partition("=")
    required = target.endswith("!")
    kind = {"email": "email", "phone": "phone", "message": "textarea"}.get(target.rstrip("!"))
    try:
        return FormField(
            name=name, maps_to=target.rstrip("!"), required=required, type=kind or "text"
        )
    except (msgspec.ValidationError, ValueError) as error:
        raise click.BadParameter(str(error), param_hint="--field") from None


def _purpose(text: str) -> FormPurpose:
    # NAME=NOTICE TEXT
    name, _, notice = text.partition("=")
    if not notice:
        raise click.BadParameter("write NAME=NOTICE TEXT", param_hint="--purpose")
    return FormPurpose(name=name, notice=notice)


@forms.command("add")
@click.argument("form_id", required=False)
@click.option("--title", help="The form's title.")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=MAPS_TO[!]",
    help="A field and where it goes (name, email, phone, message, custom:X); ! = required.",
)
@click.option(
    "--purpose",
    "purposes",
    multiple=True,
    metavar="NAME=NOTICE",
    help="A consent box: the purpose and the notice text shown.",
)
@click.option("--origin", "origins", multiple=True, help="A website allowed to post it.")
@click.option("--redirect", default=None, help="Where a browser goes after sending.")
@click.option("--notify", default=None, help="An address told of each submission.")
@click.option("--double-opt-in", is_flag=True, help="Consent counts once confirmed by email.")
@click.option("--task", default=None, help='A follow-up task, e.g. "Call back".')
@click.option("--task-minutes", default=60, show_default=True, help="When the task is due.")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The whole form as JSON (the API's body) instead of the options.",
)
def add(
    form_id: str | None,
    title: str | None,
    fields: tuple[str, ...],
    purposes: tuple[str, ...],
    origins: tuple[str, ...],
    redirect: str | None,
    notify: str | None,
    double_opt_in: bool,
    task: str | None,
    task_minutes: int,
    path: Path | None,
) -> None:
    """Create a form; prints its id and where its snippet is."""
    try:
        if path is not None:
            data = msgspec.convert(json.loads(path.read_text(encoding="utf-8")), FormCreate)
        else:
            if not form_id or not title or not fields:
                raise click.UsageError("give FORM_ID, --title and --field (or --file)")
            data = FormCreate(
                id=form_id,
                title=title,
                fields=[_field(text) for text in fields],
                purposes=[_purpose(text) for text in purposes],
                allowed_origins=list(origins),
                success_redirect=redirect,
                notify_email=notify,
                double_opt_in=double_opt_in,
                task=FormTask(summary=task, due_minutes=task_minutes) if task else None,
            )
    except (msgspec.ValidationError, ValueError) as error:
        raise click.UsageError(f"the form is not valid: {error}") from None

    async def work(kith: Kith) -> FormOut:
        return await FormService(kith).create(data)

    created = run_with_kith(work)
    click.echo(f"Created form {created.id}: paste the snippet from /f/{created.id}/embed")


@forms.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_forms(as_json: bool) -> None:
    """List forms: id, title, active, origins."""

    async def work(kith: Kith) -> list[FormOut]:
        return await FormService(kith).list()

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    print_table(
        ["id", "title", "active", "allowed origins"],
        [(f.id, f.title, "yes" if f.active else "no", ",".join(f.allowed_origins)) for f in found],
        empty="No forms; add one with `kith forms add`.",
    )


@forms.command("show")
@click.argument("form_id")
def show(form_id: str) -> None:
    """Print one form as JSON."""

    async def work(kith: Kith) -> FormOut:
        return await FormService(kith).get(form_id)

    print_json(run_with_kith(work))


@forms.command("disable")
@click.argument("form_id")
def disable(form_id: str) -> None:
    """Stop accepting submissions of a form."""

    async def work(kith: Kith) -> FormOut:
        return await FormService(kith).disable(form_id)

    run_with_kith(work)
    click.echo(f"Disabled form {form_id}")
