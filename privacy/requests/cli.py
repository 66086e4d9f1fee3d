"""``kith privacy ...`` commands of data subject requests: requests, rectification
corrections, certificates and the public key that verifies them.

Commands that change something act as the user named by ``--as EMAIL`` (or ``KITH_USER``), as
the system otherwise; four-eyes approval needs a named user.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import click
from kith import ContactPatch, EmailIn, Kith, PhoneIn
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
from kith.privacy.requests.certificates import CertificateService, verify
from kith.privacy.requests.deadlines import describe_days_left
from kith.privacy.requests.service import REQUEST_KINDS, STATES, RequestCreate, RequestService
from kith.privacy.rights.cli import acting_as, as_option


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
        contact_id=parse_id(contact, "contact") if contact else None,
        email=email,
        phone=phone,
        received_at=_received(received, settings.timezone),
        note=note_text,
    )

    async def work(kith: Kith) -> Any:
        return await RequestService(kith).create(data, await acting_as(kith, as_user))

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
    request_id = parse_id(request, "request")
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
        request_id = parse_id(request, "request")

        async def work(kith: Kith) -> Any:
            service = RequestService(kith)
            actor = await acting_as(kith, as_user)
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


def _custom_fields(given: tuple[str, ...]) -> dict[str, Any]:
    """``--field`` options as a contact's ``fields``: the fields service checks the values."""
    fields: dict[str, Any] = {}
    for item in given:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--field")
        name = name.strip()
        if name in fields:
            raise click.BadParameter(f"{name!r} is given twice", param_hint="--field")
        fields[name] = value or None
    return fields


@click.command("rectify")
@click.argument("request")
@click.option("--name", help="The corrected display name.")
@click.option("--given-name", help="The corrected given name.")
@click.option("--family-name", help="The corrected family name.")
@click.option("--email", "emails", multiple=True, help="Replace the emails (repeatable).")
@click.option("--phone", "phones", multiple=True, help="Replace the phones (repeatable).")
@click.option(
    "--field",
    "custom",
    multiple=True,
    metavar="NAME=VALUE",
    help="Correct a custom field (repeatable; NAME= removes its value; the choices of a "
    "multiple choice field are separated by commas).",
)
@as_option
def rectify_command(
    request: str,
    name: str | None,
    given_name: str | None,
    family_name: str | None,
    emails: tuple[str, ...],
    phones: tuple[str, ...],
    custom: tuple[str, ...],
    as_user: str | None,
) -> None:
    """Set the corrections a rectification REQUEST will make (stored encrypted)."""
    values: dict[str, Any] = {}
    if custom:
        values["fields"] = _custom_fields(custom)
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
    request_id = parse_id(request, "request")

    async def work(kith: Kith) -> list[str]:
        return await RequestService(kith).set_corrections(
            request_id, patch, await acting_as(kith, as_user)
        )

    fields = run_with_kith(work)
    click.echo(f"request {request_id} will correct: {', '.join(fields)}")
    note("next: preview the request")


# -- certificates ----------------------------------------------------------------------------


# Verifying could not be done (no key, or one that cannot be read or fetched), as opposed to
# a certificate found not valid (1).
EXIT_UNCHECKED = 2


@click.command("public-key")
def public_key_command() -> None:
    """Print the Ed25519 public key that verifies certificates (PEM)."""
    from kith.privacy.requests.certificates import (
        CertificateError,
        existing_public_key,
        public_key_pem,
    )

    try:
        key = existing_public_key(get_settings())
    except CertificateError as exc:
        raise CliError(str(exc)) from None
    click.echo(public_key_pem(key), nl=False)


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
    request_id = parse_id(request, "request")
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
    "public_key_source",
    metavar="FILE|URL",
    help="The signer's public key: a PEM file, or an http(s) URL serving one (such as "
    "https://crm.example.com/api/privacy/public-key). Default: this installation's.",
)
def certificate_verify(file: Path, public_key_source: str | None) -> None:
    """Check that FILE is a certificate signed by the key, unchanged. Exit 1 if it is not,
    2 if it could not be checked. Needs no installation when --public-key is given."""
    from kith.privacy.requests.certificates import (
        CertificateError,
        existing_public_key,
        public_key_from,
    )

    try:
        if public_key_source:
            key = public_key_from(public_key_source)
        else:
            key = existing_public_key(get_settings())
    except CertificateError as exc:
        hint = "" if public_key_source else "; give the signer's key with --public-key FILE|URL"
        raise CliError(f"{exc}{hint}", EXIT_UNCHECKED) from None
    result = verify(file.read_bytes(), key)
    if not result.valid:
        raise CliError(f"{file}: NOT valid: {result.reason}")
    click.echo(f"{file}: valid, request {result.request_id}, signed by key {result.key_id}")


@click.group("privacy")
def privacy() -> None:
    """Privacy: personal fields, keys and shredding; consent, data subject requests,
    certificates, records of processing."""


for _command in (requests_group, rectify_command, public_key_command, certificate_group):
    privacy.add_command(_command)
