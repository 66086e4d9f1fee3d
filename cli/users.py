"""``kith users`` and ``kith tokens``: the people who use Kith and their API tokens."""

from __future__ import annotations

import click
from kith.console import (
    format_time,
    get_settings,
    note,
    print_json,
    print_table,
    run_with_kith,
)
from kith.events import utcnow
from kith.runtime import Kith
from kith.services.users import IssuedToken, TokenOut, UserOut, UserService

ROLES_HELP = "admin, agent or compliance"


@click.group()
def users() -> None:
    """Add and list users."""


@users.command("add")
@click.argument("email")
@click.option("--role", required=True, metavar="ROLE", help=f"One of {ROLES_HELP}.")
@click.option("--name", default="", help="Full name shown to colleagues.")
@click.option(
    "--password",
    "ask_password",
    is_flag=True,
    help="Also set a password for signing in (asked for, hidden, twice).",
)
def add_user(email: str, role: str, name: str, ask_password: bool) -> None:
    """Add a user with a role (admin, agent or compliance)."""
    password: str | None = None
    if ask_password:
        password = click.prompt(
            "Password (at least 10 characters)",
            hide_input=True,
            confirmation_prompt=True,
            err=True,
        )

    async def work(kith: Kith) -> UserOut:
        return await UserService(kith).add(email, role, name=name, password=password)

    user = run_with_kith(work)
    click.echo(f"Added {user.role} {user.email} ({user.id})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_users(as_json: bool) -> None:
    """List users: email, name, role, active, created."""

    async def work(kith: Kith) -> list[UserOut]:
        return await UserService(kith).list()

    found = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    print_table(
        ["email", "name", "role", "active", "created"],
        [
            (
                u.email,
                u.name,
                u.role,
                "yes" if u.active else "no",
                format_time(u.created_at, settings),
            )
            for u in found
        ],
        empty="No users yet; add one with `kith users add EMAIL --role admin`.",
    )


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


# -- tokens ----------------------------------------------------------------------------------


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens."""


@tokens.command("create")
@click.argument("email")
@click.option(
    "--expires-days",
    default=90,
    show_default=True,
    type=click.IntRange(min=1),
    help="Days until the token stops working.",
)
@click.option("--name", default="", help="What the token is for, e.g. the integration using it.")
def create_token(email: str, expires_days: int, name: str) -> None:
    """Create an API token for a user and print it (only it) on stdout.

    The token is shown this once; Kith stores only a hash. Use it as
    `Authorization: Bearer TOKEN`.
    """

    async def work(kith: Kith) -> IssuedToken:
        return await UserService(kith).create_token(email, name=name, expires_days=expires_days)

    issued = run_with_kith(work)
    # stdout carries the token alone so that TOKEN=$(kith tokens create ...) works.
    click.echo(issued.secret)
    note(
        f"Token {issued.token.prefix}… ({issued.token.id}) for {email.strip().lower()}, "
        f"expires {format_time(issued.token.expires_at, get_settings())}. "
        "It is shown only this once."
    )


def _status(token: TokenOut) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= utcnow():
        return "expired"
    return "active"


@tokens.command("list")
@click.argument("email", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_tokens(email: str | None, as_json: bool) -> None:
    """List API tokens (of one user when EMAIL is given); never the tokens themselves."""

    async def work(kith: Kith) -> tuple[list[TokenOut], dict[object, str]]:
        service = UserService(kith)
        found = await service.list_tokens(email)
        return found, {user.id: user.email for user in await service.list()}

    found, emails = run_with_kith(work)
    if as_json:
        print_json(found)
        return
    settings = get_settings()
    print_table(
        ["id", "prefix", "user", "name", "status", "created", "expires", "last used"],
        [
            (
                t.id,
                t.prefix,
                emails.get(t.user_id, t.user_id),
                t.name,
                _status(t),
                format_time(t.created_at, settings),
                format_time(t.expires_at, settings) or "never",
                format_time(t.last_used_at, settings),
            )
            for t in found
        ],
        empty="No API tokens yet; create one with `kith tokens create EMAIL`.",
    )


@tokens.command("revoke")
@click.argument("token")
def revoke_token(token: str) -> None:
    """Revoke a token by its id, its prefix (as `kith tokens list` shows it) or itself."""

    async def work(kith: Kith) -> TokenOut:
        return await UserService(kith).revoke_token(token)

    revoked = run_with_kith(work)
    click.echo(
        f"Revoked token {revoked.prefix}… ({revoked.id}) "
        f"since {format_time(revoked.revoked_at, get_settings())}"
    )
