"""Helpers shared by the privacy workflow tests (consent, requests, certificates, ropa)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from click.testing import CliRunner
from kith.actor import Actor, Role
from kith.bootstrap import open_kith
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, PhoneIn
from kith.services.contacts import ContactService
from kith.services.users import UserService
from kith.settings import load_settings

T = TypeVar("T")

NEWSLETTER = {
    "description": "Monthly newsletter by email",
    "lawful_basis": "consent",
    "notice": "We email you our newsletter once a month. Unsubscribe at any time.",
}


def configure_privacy(kith: Kith, **section: Any) -> None:
    """Give the running Kith a ``[privacy]`` section, as if kith.toml held it."""
    extra = dict(kith.settings.extra)
    extra["privacy"] = {**extra.get("privacy", {}), **section}
    kith.settings = dataclasses.replace(kith.settings, extra=extra)


async def make_contact(
    kith: Kith, name: str = "Ada Lovelace", email: str | None = None, phone: str | None = None
) -> uuid.UUID:
    created = await ContactService(kith).create(
        ContactCreate(
            name=name,
            emails=[EmailIn(address=email)] if email else [],
            phones=[PhoneIn(number=phone)] if phone else [],
        )
    )
    return created.id


async def make_user(kith: Kith, role: Role = Role.COMPLIANCE) -> Actor:
    email = f"{role}-{uuid.uuid4().hex[:8]}@staff.example"
    user = await UserService(kith).add(email, str(role))
    return Actor(kind="user", id=user.id, role=user.role, name=user.email)


def cli_env(database_url: str, home: Path) -> tuple[CliRunner, dict[str, str]]:
    """A click runner and the environment that points ``kith`` at an installation. Tests
    using it are plain functions: the commands run their own event loop."""
    env = {"KITH_HOME": str(home), "KITH_DATABASE_URL": database_url, "KITH_LOG_FORMAT": "json"}
    return CliRunner(), env


def run_services(env: dict[str, str], work: Callable[[Kith], Awaitable[T]]) -> T:
    """Call services on the installation of ``env`` (to set up data for a CLI test)."""

    async def go() -> T:
        kith = open_kith(load_settings(env))
        await kith.start()
        try:
            return await work(kith)
        finally:
            await kith.close()

    return asyncio.run(go())
