"""Telephony in the web UI, for admins: the providers as ``[telephony]`` configures them (every
secret masked), how their events are arriving, the AMI connection and recent calls. It changes
nothing: the settings file owns these settings. The same service as ``kith telephony status``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from kith import KithError, NavLink, Role, utcnow
from kith.http import roles
from kith.plugins.telephony.asterisk import AsteriskProvider
from kith.plugins.telephony.providers_registry import providers_of
from kith.plugins.telephony.services import CallService
from kith.plugins.telephony.settings import SECTION, settings_of
from kith.web import N_, kith_of, render
from litestar import Request, get
from litestar.response import Template

ADMINS = roles()
NAVIGATION = NavLink(
    path="/admin/telephony", label=N_("Telephony"), roles=frozenset({Role.ADMIN}), order=84
)
# Settings never shown, only whether they are set.
SECRETS = frozenset({"auth_token", "api_key", "api_secret", "api_salt", "secret"})
PROVIDERS = ("twilio", "zadarma", "mango", "asterisk")
# Where each provider posts its events, for its console.
WEBHOOKS = {
    "twilio": ("/api/telephony/twilio/status", "/api/telephony/twilio/recording"),
    "zadarma": ("/api/telephony/zadarma",),
    "mango": ("/api/telephony/mango",),
}


class Setting(msgspec.Struct):
    """One setting as the page shows it: ``value`` is None for a secret."""

    key: str
    value: str | None
    secret: bool = False
    present: bool = True


def shown(values: dict[str, Any]) -> list[Setting]:
    """The settings of one table, secrets replaced by whether they are set."""
    found = []
    for key, value in values.items():
        if key in SECRETS:
            found.append(Setting(key, None, secret=True, present=bool(value)))
        elif isinstance(value, dict):
            found.append(Setting(key, ", ".join(f"{k} → {v}" for k, v in value.items())))
        elif isinstance(value, bool):
            # As written in kith.toml.
            found.append(Setting(key, "true" if value else "false"))
        elif isinstance(value, list):
            found.append(Setting(key, ", ".join(map(str, value))))
        else:
            found.append(Setting(key, str(value)))
    return found


@get("/admin/telephony", opt=ADMINS)
async def telephony_page(request: Request[Any, Any, Any]) -> Template:
    kith = kith_of(request)
    settings = settings_of(kith)
    calls = CallService(kith)
    everything = msgspec.to_builtins(settings)
    problem = None
    try:
        providers = providers_of(kith)
    except KithError as exc:
        # A provider whose settings do not work (Asterisk without its login, say).
        providers, problem = [], exc.detail
    asterisk = next((p for p in providers if isinstance(p, AsteriskProvider)), None)
    now = utcnow()
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "telephony/telephony.html",
        section=SECTION,
        settings_file=kith.settings.home / "kith.toml",
        general=shown({k: v for k, v in everything.items() if k not in (*PROVIDERS, "recordings")}),
        recordings=shown(everything["recordings"]),
        providers=[
            (name, everything[name]["enabled"], shown(everything[name])) for name in PROVIDERS
        ],
        webhooks={
            # Twilio signs the address it calls, which may be a proxy's of its own.
            name: [
                (settings.twilio.public_url.rstrip("/") + path)
                if name == "twilio" and settings.twilio.public_url
                else kith.settings.link(path, base)
                for path in paths
            ]
            for name, paths in WEBHOOKS.items()
        },
        arriving=await calls.status(providers),
        problem=problem,
        ami=asterisk.status() if asterisk is not None else None,
        ami_problems=settings.asterisk.problems() if settings.asterisk.enabled else [],
        calls_day=await calls.calls_since(now - dt.timedelta(days=1)),
        calls_week=await calls.calls_since(now - dt.timedelta(days=7)),
    )


PAGES = [telephony_page]
