"""``kith privacy ...`` commands of data subject rights: purposes, notices and consent, the
audit log, export, erasure previews and jobs, restriction, suppression, retention and the
record of processing.

Commands that change something act as the user named by ``--as EMAIL`` (or ``KITH_USER``), as
the system otherwise, and call the same services as the HTTP API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from kith import SYSTEM, Actor, Kith, Role, UserService, normalize_email, normalize_phone
from kith.console import (
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
from kith.privacy.rights import registry
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.consent import ConsentService
from kith.privacy.rights.erasure import ErasureService
from kith.privacy.rights.export import ExportService
from kith.privacy.rights.restriction import GROUNDS, RestrictionService
from kith.privacy.rights.retention import RetentionRunner
from kith.privacy.rights.ropa import build_record, custom_fields, to_json, to_markdown
from kith.privacy.rights.settings import rights_settings
from kith.privacy.rights.suppression import SuppressionList

as_option = click.option(
    "--as",
    "as_user",
    metavar="EMAIL",
    envvar="KITH_USER",
    help="Act as this compliance user (recorded in the history). Env: KITH_USER.",
)


async def acting_as(kith: Kith, email: str | None) -> Actor:
    if not email:
        return SYSTEM
    user = await UserService(kith).by_email(email)
    if not user.active:
        raise CliError(f"user {user.email} is deactivated")
    if user.role not in (Role.COMPLIANCE, Role.ADMIN):
        raise CliError(f"{user.email} is {user.role}; privacy work needs a compliance user")
    return Actor(kind="user", id=user.id, role=user.role, name=user.email)


def _details(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# -- consent ---------------------------------------------------------------------------------


@click.command("purposes")
@json_option
def purposes_command(as_json: bool) -> None:
    """List the declared purposes and their lawful bases."""

    async def work(kith: Kith) -> list[registry.PurposeInfo]:
        return list(registry.purposes(kith).values())

    found = run_with_kith(work, migrated=False)
    if as_json:
        print_json(found)
        return
    print_table(
        ["purpose", "lawful basis", "declared by", "description"],
        [(p.name, p.lawful_basis, p.declared_by, p.description) for p in found],
        empty="No purposes declared.",
    )


@click.group("notices")
def notices_group() -> None:
    """Versioned notice texts shown when consent is asked."""


@notices_group.command("list")
@click.argument("purpose", required=False)
@json_option
def notices_list(purpose: str | None, as_json: bool) -> None:
    """List notice versions (of one PURPOSE, or all)."""
    found = run_with_kith(lambda kith: ConsentService(kith).notices(purpose))
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    print_table(
        ["purpose", "version", "sha256", "published", "by"],
        [
            (n.purpose, n.version, n.sha256[:16], format_time(n.created_at, settings), n.created_by)
            for n in found
        ],
        empty="No notices published.",
    )


@notices_group.command("publish")
@click.argument("purpose")
@click.option(
    "--file",
    "text_file",
    type=click.File("r", encoding="utf-8"),
    required=True,
    help="The notice text ('-' for standard input).",
)
@as_option
def notices_publish(purpose: str, text_file: Any, as_user: str | None) -> None:
    """Publish a new version of PURPOSE's notice (the same text again changes nothing)."""
    text = text_file.read()

    async def work(kith: Kith) -> Any:
        actor = await acting_as(kith, as_user)
        return await ConsentService(kith).publish_notice(purpose, text, actor)

    notice = run_with_kith(work)
    click.echo(f"{notice.purpose} notice version {notice.version} (sha256 {notice.sha256})")


@click.group("consent")
def consent_group() -> None:
    """The consent ledger: show, give, withdraw, and one-click withdrawal links."""


@consent_group.command("show")
@click.argument("contact")
@click.option("--history", is_flag=True, help="Also print every event.")
@json_option
def consent_show(contact: str, history: bool, as_json: bool) -> None:
    """A CONTACT's current consent per purpose, derived from the ledger."""
    contact_id = parse_id(contact, "contact")

    async def work(kith: Kith) -> Any:
        service = ConsentService(kith)
        return await service.current(contact_id), await service.history(contact_id)

    current, events = run_with_kith(work)
    if as_json:
        print_json({"contact_id": contact_id, "current": current, "events": events})
        return
    settings = get_settings()
    print_table(
        ["purpose", "lawful basis", "status", "may process", "since", "notice", "channel"],
        [
            (
                s.purpose,
                s.lawful_basis,
                s.status,
                "yes" if s.may_process else "no",
                format_time(s.since, settings),
                s.notice_version or "",
                s.channel or "",
            )
            for s in current
        ],
    )
    if history:
        click.echo()
        print_table(
            ["time", "purpose", "action", "notice", "channel", "actor"],
            [
                (
                    format_time(e.occurred_at, settings),
                    e.purpose,
                    e.action,
                    e.notice_version or "",
                    e.channel,
                    e.actor,
                )
                for e in events
            ],
            empty="No consent events.",
        )


def _record(
    contact: str,
    purpose: str,
    action: str,
    channel: str,
    notice_version: int | None,
    as_user: str | None,
) -> None:
    contact_id = parse_id(contact, "contact")

    async def work(kith: Kith) -> Any:
        actor = await acting_as(kith, as_user)
        service = ConsentService(kith)
        if action == "given":
            return await service.give(
                contact_id, purpose, channel=channel, notice_version=notice_version, actor=actor
            )
        return await service.withdraw(contact_id, purpose, channel=channel, actor=actor)

    event = run_with_kith(work)
    notice = f" (notice v{event.notice_version})" if event.notice_version else ""
    click.echo(f"consent {event.action} for {event.purpose}{notice}: event {event.id}")


@consent_group.command("give")
@click.argument("contact")
@click.argument("purpose")
@click.option("--channel", default="cli", show_default=True, help="How it was given.")
@click.option("--notice-version", type=int, help="The notice version shown (default: current).")
@as_option
def consent_give(
    contact: str, purpose: str, channel: str, notice_version: int | None, as_user: str | None
) -> None:
    """Record that CONTACT gave consent for PURPOSE."""
    _record(contact, purpose, "given", channel, notice_version, as_user)


@consent_group.command("withdraw")
@click.argument("contact")
@click.argument("purpose")
@click.option("--channel", default="cli", show_default=True, help="How it was withdrawn.")
@as_option
def consent_withdraw(contact: str, purpose: str, channel: str, as_user: str | None) -> None:
    """Record that CONTACT withdrew consent for (or objected to) PURPOSE."""
    _record(contact, purpose, "withdrawn", channel, None, as_user)


@consent_group.command("link")
@click.argument("contact")
@click.argument("purpose")
@click.option("--days", type=int, help="Valid for this many days (default: privacy setting).")
@click.option(
    "--base-url",
    default="",
    help="Address the link starts with, like https://crm.example.com "
    "[default: the public_url setting].",
)
def consent_link(contact: str, purpose: str, days: int | None, base_url: str) -> None:
    """Print a signed one-click link that withdraws PURPOSE for CONTACT."""
    contact_id = parse_id(contact, "contact")

    async def work(kith: Kith) -> Any:
        service = ConsentService(kith)
        await service.history(contact_id)
        return service.withdraw_link(contact_id, purpose, days)

    link = run_with_kith(work)
    settings = get_settings()
    click.echo(base_url.rstrip("/") + link.path if base_url else link.url)
    note(f"valid until {format_time(link.expires_at, settings)}")
    if not base_url and not settings.public_url:
        note(
            "public_url is not set in kith.toml, so this link points at this machine; set it "
            "to the address people reach Kith at before handing links out"
        )


# -- audit, export, erasure ------------------------------------------------------------


@click.command("audit")
@click.argument("contact")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 10_000))
@json_option
def audit_command(contact: str, limit: int, as_json: bool) -> None:
    """Who read, exported, changed or erased CONTACT's personal data, newest first."""
    contact_id = parse_id(contact, "contact")
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
@click.option("--request", "request", help="Open the package of this access request instead.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the readable ZIP to this file (mode 0600).",
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
    """Write the export package (ZIP: JSON per source, CSV, schema, README) of CONTACT, or open
    the package of an access or portability REQUEST. Packages are stored encrypted; -o writes
    the readable ZIP (an audited read)."""
    if (contact is None) == (request is None):
        raise CliError("name a CONTACT, or an access request with --request")

    async def work(kith: Kith) -> Any:
        service = ExportService(kith)
        actor = await acting_as(kith, as_user)
        if request is not None:
            found = await service.for_request(parse_id(request, "request"))
            if found is None:
                raise CliError(
                    f"request {request} has no package (run it first, or it was deleted after "
                    "exports_kept_days)"
                )
        else:
            found = await service.export(
                parse_id(str(contact), "contact"), actor=actor, channel="cli"
            )
        if output is not None:
            await service.save(found, output, actor=actor, channel="cli")
        return found

    package = run_with_kith(work)
    if as_json:
        print_json(package)
        return
    click.echo(
        f"{package.path} (sealed; the ZIP inside: {package.size} bytes, sha256 {package.sha256})"
    )
    for name, tables in package.files.items():
        click.echo(f"  {name}: " + ", ".join(f"{t} {n}" for t, n in tables.items()))
    if output is not None:
        note(f"readable ZIP written to {output}")
    else:
        note("the stored package is encrypted; give -o FILE to write the readable ZIP")


@click.group("erasure")
def erasure_group() -> None:
    """Erasure previews and jobs (erasures run as requests or by retention)."""


@erasure_group.command("preview")
@click.argument("contact")
@json_option
def erasure_preview(contact: str, as_json: bool) -> None:
    """Every location an erasure of CONTACT would touch now, and how; changes nothing."""
    contact_id = parse_id(contact, "contact")
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
    contact_id = parse_id(contact, "contact") if contact else None
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


@click.group("restriction")
def restriction_group() -> None:
    """Restrict processing of a contact (Article 18 GDPR): show, add, lift."""


@restriction_group.command("show")
@click.argument("contact")
@json_option
def restriction_show(contact: str, as_json: bool) -> None:
    """CONTACT's restrictions, current and past."""
    contact_id = parse_id(contact, "contact")
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
    contact_id = parse_id(contact, "contact")

    async def work(kith: Kith) -> Any:
        return await RestrictionService(kith).restrict(
            contact_id, ground, await acting_as(kith, as_user), channel="cli"
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
    contact_id = parse_id(contact, "contact")

    async def work(kith: Kith) -> Any:
        from kith.privacy.rights import recipients

        actor = await acting_as(kith, as_user)
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
    contact_id = parse_id(contact, "contact")
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
    if report.erasures_resumed:
        click.echo(f"Erasures an earlier run left unfinished, finished: {report.erasures_resumed}")
    click.echo(
        f"Legal holds ended: {report.holds_released} ({report.held_records_deleted} records)"
        + ("" if dry_run else f"; old export packages deleted: {report.exports_deleted}")
    )


# -- records ---------------------------------------------------------------------------------


@click.command("ropa")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write it to this file instead of standard output.",
)
def ropa_command(fmt: str, output: Path | None) -> None:
    """Print the record of processing activities (Art. 30), generated from the registry."""

    async def work(kith: Kith) -> Any:
        return build_record(kith, await custom_fields(kith))

    record = run_with_kith(work, migrated=False)
    data = to_json(record) if fmt == "json" else to_markdown(record).encode()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        note(f"record of processing written to {output}")
    for warning in record.warnings:
        note(f"warning: {warning}")


@click.group("retention")
def retention_group() -> None:
    """Retention rules from [privacy.retention] in kith.toml."""


@retention_group.command("rules")
@json_option
def retention_rules(as_json: bool) -> None:
    """List the retention rules (validated)."""
    rules = rights_settings(get_settings()).retention_rules()
    if as_json:
        print_json(rules)
        return
    print_table(
        ["rule", "kept for", "description"],
        [(r.target, str(r.keep), r.description) for r in rules],
        empty="No retention rules; add them to [privacy.retention] in kith.toml.",
    )


retention_group.add_command(retention_run)


@click.group("privacy")
def privacy() -> None:
    """Privacy: personal fields, keys and shredding; consent, data subject requests,
    certificates, records of processing."""


for _command in (
    purposes_command,
    notices_group,
    consent_group,
    audit_command,
    export_command,
    erasure_group,
    restriction_group,
    suppression_group,
    ropa_command,
    retention_group,
):
    privacy.add_command(_command)
