"""Trigger rules over HTTP: list, add, remove, dry run and run; the same service as
``kith triggers``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from kith.actor import Role
from kith.http.auth import current_actor, roles
from kith.http.routes.contacts import API, READ
from kith.loop_settings import RuleSpec
from kith.services.triggers import DryRun, RuleOut, TriggerService
from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

ADMIN = roles(Role.ADMIN)


class Fired(msgspec.Struct, kw_only=True):
    rule: str
    fired: int


@get("/api/triggers", opt=READ, tags=["triggers"], summary="List trigger rules")
async def list_rules(request: Request[Any, Any, Any]) -> list[RuleOut]:
    return await TriggerService(request.app.state.kith, API).rules()


@post("/api/triggers", opt=ADMIN, tags=["triggers"], summary="Add a trigger rule")
async def add_rule(request: Request[Any, Any, Any], data: JSONBody[RuleSpec]) -> RuleOut:
    """A condition (``order_gap``, ``missed_call``, ``no_interaction``, ``event``, ``tier``)
    and an action (``task``, ``notify``, ``tag``, ``event``); see the closing-the-loop guide."""
    return await TriggerService(request.app.state.kith, API).add(data)


@delete("/api/triggers/{name:str}", opt=ADMIN, tags=["triggers"], summary="Remove a rule")
async def remove_rule(request: Request[Any, Any, Any], name: FromPath[str]) -> None:
    await TriggerService(request.app.state.kith, API).remove(name)


@get("/api/triggers/{name:str}/dry-run", opt=READ, tags=["triggers"], summary="Dry run")
async def dry_run(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    names: Annotated[
        bool, QueryParameter(description="show each contact's name (an audited read)")
    ] = True,
) -> DryRun:
    """Whom the rule would fire for now; nothing is changed."""
    service = TriggerService(request.app.state.kith, API)
    return await service.dry_run(name, names=names, actor=current_actor(request))


@post("/api/triggers/{name:str}/run", opt=ADMIN, tags=["triggers"], summary="Run a rule now")
async def run_rule(request: Request[Any, Any, Any], name: FromPath[str]) -> Fired:
    """Fire the rule now (the worker runs every enabled rule every five minutes)."""
    fired = await TriggerService(request.app.state.kith, API).run(name)
    return Fired(rule=name, fired=fired)


TRIGGER_ROUTES = [list_rules, add_rule, remove_rule, dry_run, run_rule]
