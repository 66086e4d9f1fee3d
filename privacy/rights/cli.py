"""``kith privacy ...`` commands of data subject rights: audit, export, erasure preview and
jobs, rectification, restriction, suppression and retention runs.

They act as the user named by ``--as EMAIL`` (or ``KITH_USER``), as the system otherwise, and
call the same services as the HTTP API.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import click
from kith.cli._context import (
    CliError,
    format_time,
    get_settings,
    note,
    print_json,
    print_table,
    run_with_kith,
)
from kith.normalize import normalize_email, normalize_phone
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.erasure import ErasureService
from kith.privacy.rights.export import ExportService
from kith.privacy.rights.rectification import RectificationService
from kith.privacy.rights.restriction import GROUNDS, RestrictionService
from kith.privacy.rights.retention import RetentionRunner
from kith.privacy.rights.suppression import SuppressionList
from kith.privacy.requests.cli import _actor, _uuid, as_option, json_option
from kith.runtime import Kith
from kith.schemas import ContactPatch, EmailIn, PhoneIn


def _details(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@click.command("audit")
@click.argument("contact")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 10_000))
@json_option
def audit_command(contact: str, limit: int, as_json: bool) -> None:
    """Who read, exported, changed or erased CONTACT's personal data, newest first."""
    contact_id = _uuid(contact, "contact")
    entries = run_with_kith(lambda kith: AuditLog(kith).entries(contact_id, limit=limit))
    if as_json:
        print_json(entries)
        return
    settings = get_settings()
    print_table(
        ["time", "action", "channel", "actor", "details"],
        [
            (format_time(e.at, settings), e.action, e.channel, e.actor, _details(e.details))
            for e in entries
        ],
        empty=f"No audit entries for contact {contact_id}.",
    )


@click.command("export")
@click.argument("contact", required=False)
@click.option("--request", "request", help="Copy the package of this access request instead.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also copy the ZIP to this file.",
)
@as_option
@json_option
def export_command(
    contact: str | None,
    request: str | None,
    output: Path | None,
    as_user: str | None,
    as_json: bool,
) -> None:
    """Write the export package (ZIP: JSON per source, CSV, schema, README) of CONTACT, or copy
    the package of an access or portability REQUEST."""
    if (contact is None) == (request is None):
        raise CliError("name a CONTACT, or an access request with --request")

    async def work(kith: Kith) -> Any:
        service = ExportService(kith)
        if request is not None:
            found = await service.for_request(_uuid(request, "request"))
            if found is None:
                raise CliError(
                    f"request {request} has no package (run it first, or it was deleted after "
                    "exports_kept_days)"
                )
            return found
        return await service.export(
            _uuid(str(contact), "contact"), actor=await _actor(kith, as_user), channel="cli"
        )

    package = run_with_kith(work)
    if output is not None:
        shutil.copyfile(package.path, output)
        output.chmod(0o600)
    if as_json:
        print_json(package)
        return
    click.echo(f"{package.path} ({package.size} bytes, sha256 {package.sha256})")
    for name, tables in package.files.items():
        click.echo(f"  {name}: " + ", ".join(f"{t} {n}" for t, n in tables.items()))
    if output is not None:
        note(f"copied to {output}")


@click.group("erasure")
def erasure_group() -> None:
    """Erasure previews and jobs (erasures run as requests or by retention)."""


@erasure_group.command("preview")
@click.argument("contact")
@json_option
def erasure_preview(contact: str, as_json: bool) -> None:
    """Every location an erasure of CONTACT would touch now, and how; changes nothing."""
    contact_id = _uuid(contact, "contact")
    planned = run_with_kith(lambda kith: ErasureService(kith).preview(contact_id))
    if as_json:
        print_json(planned)
        return
    print_table(
        ["source", "location", "method", "count", "ground"],
        [(p.source, p.location, p.method, p.count, p.ground or "") for p in planned],
    )


@erasure_group.command("jobs")
@click.argument("contact", required=False)
@json_option
def erasure_jobs(contact: str | None, as_json: bool) -> None:
    """Erasure jobs (of one CONTACT, or all), newest first."""
    contact_id = _uuid(contact, "contact") if contact else None
    jobs = run_with_kith(lambda kith: ErasureService(kith).jobs(contact_id))
    if as_json:
        print_json(jobs)
        return
    settings = get_settings()
    print_table(
        ["job", "contact", "origin", "state", "started", "finished", "last error"],
        [
            (
                j["id"],
                j["contact_id"],
                j["rule"] or j["origin"],
                j["state"],
                format_time(j["started_at"], settings),
                format_time(j["finished_at"], settings),
                j["last_error"] or "",
            )
            for j in jobs
        ],
        empty="No erasure jobs.",
    )


@click.command("rectify")
@click.argument("request")
@click.option("--name", help="The corrected display name.")
@click.option("--given-name", help="The corrected given name.")
@click.option("--family-name", help="The corrected family name.")
@click.option("--email", "emails", multiple=True, help="Replace the emails (repeatable).")
@click.option("--phone", "phones", multiple=True, help="Replace the phones (repeatable).")
@as_option
def rectify_command(
    request: str,
    name: str | None,
    given_name: str | None,
    family_name: str | None,
    emails: tuple[str, ...],
    phones: tuple[str, ...],
    as_user: str | None,
) -> None:
    """Set the corrections a rectification REQUEST will make (stored encrypted)."""
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name
    if given_name is not None:
        values["given_name"] = given_name
    if family_name is not None:
        values["family_name"] = family_name
    if emails:
        values["emails"] = [EmailIn(address=e) for e in emails]
    if phones:
        values["phones"] = [PhoneIn(number=p) for p in phones]
    patch = ContactPatch(**values)
    request_id = _uuid(request, "request")

    async def work(kith: Kith) -> list[str]:
        return await RectificationService(kith).set_patch(
            request_id, patch, await _actor(kith, as_user)
        )

    fields = run_with_kith(work)
    click.echo(f"request {request_id} will correct: {', '.join(fields)}")
    note("next: preview the request")


@click.group("restriction")
def restriction_group() -> None:
    """Restrict processing of a contact (Article 18 GDPR): show, add, lift."""


@restriction_group.command("show")
@click.argument("contact")
@json_option
def restriction_show(contact: str, as_json: bool) -> None:
    """CONTACT's restrictions, current and past."""
    contact_id = _uuid(contact, "contact")
    found = run_with_kith(lambda kith: RestrictionService(kith).history(contact_id))
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    print_table(
        ["since", "ground", "by", "lifted", "lifted by", "notice"],
        [
            (
                format_time(r.started_at, settings),
                r.ground,
                r.started_by,
                format_time(r.lifted_at, settings),
                r.lifted_by or "",
                r.lift_notice or "",
            )
            for r in found
        ],
        empty=f"Contact {contact_id} has never been restricted.",
    )


@restriction_group.command("add")
@click.argument("contact")
@click.option("--ground", type=click.Choice(sorted(GROUNDS)), required=True)
@as_option
def restriction_add(contact: str, ground: str, as_user: str | None) -> None:
    """Restrict CONTACT now (outside a request, e.g. for legal claims)."""
    contact_id = _uuid(contact, "contact")

    async def work(kith: Kith) -> Any:
        return await RestrictionService(kith).restrict(
            contact_id, ground, await _actor(kith, as_user), channel="cli"
        )

    restriction, new = run_with_kith(work)
    state = "restricted" if new else "already restricted"
    click.echo(f"contact {contact_id} {state} since {restriction.started_at:%Y-%m-%d}")


@restriction_group.command("lift")
@click.argument("contact")
@click.option("--notice", required=True, help="How and when the person was told it will be lifted.")
@as_option
def restriction_lift(contact: str, notice: str, as_user: str | None) -> None:
    """Lift CONTACT's restriction, recording the notice given to the person (Art. 18(3))."""
    contact_id = _uuid(contact, "contact")

    async def work(kith: Kith) -> Any:
        from kith.privacy.rights import recipients

        actor = await _actor(kith, as_user)
        lifted = await RestrictionService(kith).lift(contact_id, notice, actor, channel="cli")
        told = await recipients.notify(
            kith, contact_id, "restriction_lifted", key=f"lift:{lifted.id}"
        )
        return lifted, told

    _lifted, told = run_with_kith(work)
    click.echo(f"restriction of contact {contact_id} lifted")
    for entry in told:
        detail = f" ({entry.detail})" if entry.detail else ""
        note(f"recipient {entry.location}: {entry.outcome}{detail}")


@click.group("suppression")
def suppression_group() -> None:
    """The suppression list: keyed hashes of erased people's emails and phones."""


@suppression_group.command("status")
def suppression_status() -> None:
    """How many entries the list holds, by reason."""
    counts = run_with_kith(lambda kith: SuppressionList(kith).count())
    click.echo(", ".join(f"{reason}: {count}" for reason, count in counts.items()))


@suppression_group.command("check")
@click.option("--email", help="An email address.")
@click.option("--phone", help="A phone number.")
def suppression_check(email: str | None, phone: str | None) -> None:
    """Whether an email or phone is on the list (exit 1 if it is)."""
    if (email is None) == (phone is None):
        raise CliError("give --email or --phone")

    async def work(kith: Kith) -> Any:
        if email is not None:
            return await SuppressionList(kith).match("email", normalize_email(email, "email"))
        value = normalize_phone(str(phone), kith.settings.default_region, "phone")
        return await SuppressionList(kith).match("phone", value)

    found = run_with_kith(work)
    if found is None:
        click.echo("not suppressed")
        return
    raise CliError(f"suppressed since {found['created_at']:%Y-%m-%d} ({found['reason']})")


@suppression_group.command("add")
@click.argument("contact")
def suppression_add(contact: str) -> None:
    """Record CONTACT's objection to marketing on the list (keyed hashes of their emails and
    phones; the contact itself stays)."""
    contact_id = _uuid(contact, "contact")
    added = run_with_kith(lambda kith: SuppressionList(kith).add_contact(contact_id, "objection"))
    click.echo(f"{added} new entr{'y' if added == 1 else 'ies'} for contact {contact_id}")


@click.command("run")
@click.option("--dry-run", is_flag=True, help="List what would go; change nothing.")
@json_option
def retention_run(dry_run: bool, as_json: bool) -> None:
    """Apply the retention rules now (the worker does it periodically), with a report."""
    report = run_with_kith(lambda kith: RetentionRunner(kith).run(dry_run=dry_run, channel="cli"))
    if as_json:
        print_json(report)
        return
    settings = get_settings()
    click.echo(("Dry run: nothing was changed.\n" if dry_run else "") + "Retention rules:")
    print_table(
        ["rule", "kept for", "cutoff", "action", "matched", "done", "note"],
        [
            (
                r.rule,
                r.keep,
                format_time(r.cutoff, settings),
                r.action,
                f"{r.matched}{'+' if r.more else ''}",
                "-" if dry_run else r.done,
                r.note or "",
            )
            for r in report.rules
        ],
        empty="No retention rules; add them to [privacy.retention] in kith.toml.",
    )
    for r in report.rules:
        if r.contacts:
            verb = "would erase" if dry_run else "erased"
            shown = ", ".join(str(c) for c in r.contacts[:10])
            more = f" and {r.matched - 10} more" if r.matched > 10 else ""
            click.echo(f"{r.rule} {verb}: {shown}{more}")
    click.echo(
        f"Legal holds ended: {report.holds_released} ({report.held_records_deleted} records)"
        + ("" if dry_run else f"; old export packages deleted: {report.exports_deleted}")
    )


SUBJECT_COMMANDS: tuple[click.Command, ...] = (
    audit_command,
    export_command,
    erasure_group,
    rectify_command,
    restriction_group,
    suppression_group,
)


def add_subject_commands(group: click.Group) -> None:
    """Add these commands to ``kith privacy``; ``retention run`` joins the retention group."""
    for command in SUBJECT_COMMANDS:
        group.add_command(command)
    retention = group.commands.get("retention")
    if isinstance(retention, click.Group):
        retention.add_command(retention_run)
    else:
        holder = click.Group("retention", help="Retention rules from [privacy.retention].")
        holder.add_command(retention_run)
        group.add_command(holder)
