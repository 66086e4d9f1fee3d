"""``kith privacy ...`` commands of the request workflow: consent, notices, requests,
certificates, the record of processing and retention rules.

:func:`add_workflow_commands` adds them to the ``kith privacy`` group. Commands that change
something act as the user named by ``--as EMAIL`` (or ``KITH_USER``), as the system otherwise;
four-eyes approval needs a named user.
"""

from __future__ import annotations

import datetime as dt
import sys
import uuid
import zoneinfo
from pathlib import Path
from typing import Any

import click
from kith.actor import SYSTEM, Actor, Role
from kith.cli._context import (
    CliError,
    format_time,
    get_settings,
    note,
    print_json,
    print_table,
    run_with_kith,
)
from kith.privacy.rights import registry
from kith.privacy.requests.certificates import CertificateService, load_public_key, verify
from kith.privacy.rights.consent import ConsentService
from kith.privacy.requests.deadlines import describe_days_left
from kith.privacy.requests.service import REQUEST_KINDS, STATES, RequestCreate, RequestService
from kith.privacy.rights.ropa import build_record, to_json, to_markdown
from kith.privacy.requests.settings import workflow_settings
from kith.runtime import Kith
from kith.services.users import UserService

as_option = click.option(
    "--as",
    "as_user",
    metavar="EMAIL",
    envvar="KITH_USER",
    help="Act as this compliance user (recorded in the history). Env: KITH_USER.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise CliError(f"{value!r} is not a {what} id") from None


async def _actor(kith: Kith, email: str | None) -> Actor:
    if not email:
        return SYSTEM
    user = await UserService(kith).by_email(email)
    if not user.active:
        raise CliError(f"user {user.email} is deactivated")
    if user.role not in (Role.COMPLIANCE, Role.ADMIN):
        raise CliError(f"{user.email} is {user.role}; privacy work needs a compliance user")
    return Actor(kind="user", id=user.id, role=user.role, name=user.email)


def _received(value: str | None, timezone: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        if "T" in value or " " in value.strip():
            moment = dt.datetime.fromisoformat(value.strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
            return moment
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise CliError(f"--received: {value!r} is not a date like 2026-01-31") from None
    # Noon local time: the day stays the day whatever the offset.
    return dt.datetime.combine(day, dt.time(12), tzinfo=zoneinfo.ZoneInfo(timezone))


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
        return await ConsentService(kith).publish_notice(purpose, text, await _actor(kith, as_user))

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
    contact_id = _uuid(contact, "contact")

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
    contact_id = _uuid(contact, "contact")

    async def work(kith: Kith) -> Any:
        actor = await _actor(kith, as_user)
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
@click.option("--base-url", default="", help="Prefix, like https://crm.example.com.")
def consent_link(contact: str, purpose: str, days: int | None, base_url: str) -> None:
    """Print a signed one-click link that withdraws PURPOSE for CONTACT."""
    contact_id = _uuid(contact, "contact")

    async def work(kith: Kith) -> Any:
        service = ConsentService(kith)
        await service.history(contact_id)
        return service.withdraw_link(contact_id, purpose, days)

    link = run_with_kith(work)
    click.echo(base_url.rstrip("/") + link.path)
    note(f"valid until {format_time(link.expires_at, get_settings())}")


# -- subject requests ------------------------------------------------------------------------


@click.group("requests", invoke_without_command=True)
@click.option("--all", "include_closed", is_flag=True, help="Include done and rejected ones.")
@click.option("--state", type=click.Choice(STATES), help="Only requests in this state.")
@click.option("--type", "kind", type=click.Choice(REQUEST_KINDS), help="Only this type.")
@json_option
@click.pass_context
def requests_group(
    ctx: click.Context, include_closed: bool, state: str | None, kind: str | None, as_json: bool
) -> None:
    """Data subject requests: with no subcommand, list open ones with days left, overdue
    first."""
    if ctx.invoked_subcommand is not None:
        return
    found = run_with_kith(
        lambda kith: RequestService(kith).list(
            include_closed=include_closed, state=state, kind=kind
        )
    )
    if as_json:
        print_json(found)
        return
    print_table(
        ["id", "type", "state", "subject", "received", "due", "days left", "next step"],
        [
            (
                r.id,
                r.kind,
                r.state,
                r.contact_id or f"({r.subject_kind} not held)",
                r.received_on,
                r.due_on,
                describe_days_left(r.days_left) if r.state not in ("done", "rejected") else "",
                r.next_step or "",
            )
            for r in found
        ],
        empty="No open requests." if not include_closed else "No requests.",
    )


@requests_group.command("new")
@click.argument("kind", metavar="TYPE", type=click.Choice(REQUEST_KINDS))
@click.option("--contact", help="The subject's contact id.")
@click.option("--email", help="The subject's email (looked up, never stored readable).")
@click.option("--phone", help="The subject's phone number (looked up, never stored readable).")
@click.option("--received", help="When it arrived: 2026-01-31 (default: now).")
@click.option("--note", "note_text", help="What the person asked, in a few words.")
@as_option
@json_option
def requests_new(
    kind: str,
    contact: str | None,
    email: str | None,
    phone: str | None,
    received: str | None,
    note_text: str | None,
    as_user: str | None,
    as_json: bool,
) -> None:
    """Record a request of TYPE as received; prints its id and due date."""
    settings = get_settings()
    data = RequestCreate(
        kind=kind,  # type: ignore[arg-type]
        contact_id=_uuid(contact, "contact") if contact else None,
        email=email,
        phone=phone,
        received_at=_received(received, settings.timezone),
        note=note_text,
    )

    async def work(kith: Kith) -> Any:
        return await RequestService(kith).create(data, await _actor(kith, as_user))

    _print_request(run_with_kith(work), as_json)


def _print_request(request: Any, as_json: bool) -> None:
    if as_json:
        print_json(request)
        return
    click.echo(
        f"{request.kind} request {request.id}: {request.state}, due {request.due_on} "
        f"({describe_days_left(request.days_left)})"
    )
    if request.next_step:
        note(f"next: {request.next_step}")


@requests_group.command("show")
@click.argument("request")
@json_option
def requests_show(request: str, as_json: bool) -> None:
    """A request with its history, extensions and preview."""
    request_id = _uuid(request, "request")
    detail = run_with_kith(lambda kith: RequestService(kith).detail(request_id))
    if as_json:
        print_json(detail)
        return
    settings = get_settings()
    r = detail.request
    lines = [
        f"request    {r.id}",
        f"type       {r.kind}",
        f"state      {r.state}" + (f" (next: {r.next_step})" if r.next_step else ""),
        f"subject    {r.contact_id or f'{r.subject_kind} not held by Kith'}",
        f"received   {r.received_on}",
        f"due        {r.due_on} ({describe_days_left(r.days_left)})"
        + (f", extended by {r.extension_months} month(s)" if r.extension_months else ""),
        f"identity   {r.identity_status}"
        + (f" by {r.identity_verified_by}: {r.identity_method}" if r.identity_method else ""),
    ]
    if r.note:
        lines.append(f"note       {r.note}")
    if r.last_error:
        lines.append(f"last error {r.last_error}")
    click.echo("\n".join(lines))
    click.echo("\nhistory")
    print_table(
        ["time", "from", "to", "by", "note"],
        [
            (format_time(t.at, settings), t.from_state or "", t.to_state, t.actor, t.note or "")
            for t in detail.transitions
        ],
    )
    if detail.extensions:
        click.echo("\nextensions")
        print_table(
            ["time", "months", "due before", "due after", "by", "reason"],
            [
                (
                    format_time(e.at, settings),
                    e.months,
                    e.due_before,
                    e.due_after,
                    e.actor,
                    e.reason,
                )
                for e in detail.extensions
            ],
        )
    if r.preview is not None:
        click.echo("\npreview")
        print_table(
            ["source", "location", "method", "count", "ground"],
            [(p.source, p.location, p.method, p.count, p.ground or "") for p in r.preview],
            empty="The preview found nothing to touch.",
        )


def _step(name: str, help_text: str, needs: tuple[str, ...] = ()) -> click.Command:
    """A command moving one request a step on: verify, extend, preview, approve..."""

    @click.argument("request")
    @as_option
    @json_option
    def command(request: str, as_user: str | None, as_json: bool, **options: Any) -> None:
        request_id = _uuid(request, "request")

        async def work(kith: Kith) -> Any:
            service = RequestService(kith)
            actor = await _actor(kith, as_user)
            if name == "verify":
                return await service.verify(request_id, options["method"], actor)
            if name == "extend":
                return await service.extend(request_id, options["months"], options["reason"], actor)
            if name == "reject":
                return await service.reject(request_id, options["reason"], actor)
            return await getattr(service, name)(request_id, actor)

        _print_request(run_with_kith(work), as_json)

    command.__doc__ = help_text
    for option in reversed(needs):
        if option == "method":
            command = click.option("--method", required=True, help="How the identity was checked.")(
                command
            )
        elif option == "months":
            command = click.option(
                "--months", type=click.IntRange(1, 2), required=True, help="1 or 2."
            )(command)
        elif option == "reason":
            command = click.option("--reason", required=True, help="Why (told to the person).")(
                command
            )
    return click.command(name)(command)


for _name, _help, _needs in (
    ("verify", "Record how the person's identity was checked (received → verified).", ("method",)),
    (
        "extend",
        "Extend the deadline by 1 or 2 months (at most 2 in total), with the reason.",
        ("months", "reason"),
    ),
    ("preview", "Preview everything the request will touch (verified → previewed).", ()),
    ("approve", "Approve a previewed request (four-eyes: another compliance user).", ()),
    ("run", "Carry out an approved request, or resume a running one; issues the certificate.", ()),
    ("reject", "Close a request without carrying it out, with the reason.", ("reason",)),
):
    requests_group.add_command(_step(_name, _help, _needs))


# -- certificates ----------------------------------------------------------------------------


@click.command("public-key")
def public_key_command() -> None:
    """Print the Ed25519 public key that verifies certificates (PEM)."""
    from kith.privacy.requests.certificates import installation_public_key, public_key_pem

    click.echo(public_key_pem(installation_public_key(get_settings())), nl=False)


@click.group("certificate")
def certificate_group() -> None:
    """Signed certificates of finished requests."""


@certificate_group.command("show")
@click.argument("request")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write it to this file instead of standard output.",
)
def certificate_show(request: str, output: Path | None) -> None:
    """Print (or save) the signed certificate of REQUEST."""
    request_id = _uuid(request, "request")
    signed = run_with_kith(lambda kith: CertificateService(kith).for_request(request_id))
    if output is None:
        click.echo(signed.to_json().decode(), nl=False)
        return
    output.write_bytes(signed.to_json())
    note(f"certificate written to {output}")


@certificate_group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    "public_key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The signer's public key (PEM); default: this installation's.",
)
def certificate_verify(file: Path, public_key_file: Path | None) -> None:
    """Check that FILE is a certificate signed by the key, unchanged. Exit 1 if not."""
    from kith.privacy.requests.certificates import CertificateError, installation_public_key

    try:
        key = (
            load_public_key(public_key_file.read_bytes())
            if public_key_file
            else installation_public_key(get_settings())
        )
    except CertificateError as exc:
        raise CliError(f"{public_key_file}: {exc}") from None
    result = verify(file.read_bytes(), key)
    if not result.valid:
        raise CliError(f"{file}: NOT valid: {result.reason}")
    click.echo(f"{file}: valid, request {result.request_id}, signed by key {result.key_id}")


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
        return build_record(kith)

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
    rules = list(workflow_settings(get_settings()).retention)
    if as_json:
        print_json(rules)
        return
    print_table(
        ["rule", "kept for", "description"],
        [(r.target, str(r.keep), r.description) for r in rules],
        empty="No retention rules; add them to [privacy.retention] in kith.toml.",
    )


WORKFLOW_COMMANDS: tuple[click.Command, ...] = (
    purposes_command,
    notices_group,
    consent_group,
    requests_group,
    public_key_command,
    certificate_group,
    ropa_command,
    retention_group,
)


def add_workflow_commands(group: click.Group) -> None:
    """Add the workflow commands to the ``kith privacy`` group (an existing ``retention``
    group, say from the retention runner, gets ``rules`` added instead of being replaced)."""
    for command in WORKFLOW_COMMANDS:
        existing = group.commands.get(str(command.name))
        if (
            existing is not None
            and isinstance(existing, click.Group)
            and isinstance(command, click.Group)
        ):
            for name, sub in command.commands.items():
                existing.commands.setdefault(name, sub)
            continue
        group.add_command(command)


@click.group("privacy")
def privacy_workflow_group() -> None:
    """Privacy: consent, data subject requests, certificates, records of processing."""


add_workflow_commands(privacy_workflow_group)
