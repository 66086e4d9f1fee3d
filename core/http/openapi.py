"""The OpenAPI document under ``/schema``, made to say what the server does.

Litestar describes each route from its signature; it does not know Kith's error handling, its
guard or every constraint msgspec enforces. The document is finished here, for every route,
plugins' included:

- every operation lists the problems it can answer with (``application/problem+json``);
- routes declared ``public()`` need no token; every other one needs a bearer token;
- request bodies are described by msgspec's own schema of the types the server decodes, so that
  every length, range and pattern it enforces is in the document.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, cast

import msgspec
from kith.http.auth import PUBLIC
from kith.http.problems import TITLES
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import OpenAPI
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM = "Problem"
SECURITY_SCHEME = "bearer"
_REF = "#/components/schemas/{name}"
_WRITES = frozenset({"post", "put", "patch", "delete"})
_MEDIA_TYPES = "openapi_media_types"
_PROBLEMS = "openapi_problems"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": PROBLEM,
    "description": "RFC 9457 problem details; `detail` says what to do about it.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "each invalid value: where it is and what is wrong with it",
            "items": {"type": "object"},
        },
    },
    "required": ["status", "title"],
}


def answers(*media_types: str, problems: Iterable[int] = ()) -> dict[str, Any]:
    """Route ``opt`` for what a handler's signature cannot tell the document: the other media
    types it answers in (its successes and problems alike, e.g. ``text/html`` for a page a
    person opens) and problem statuses of its own. Merge it with the route's roles:
    ``opt={**public(), **answers("text/html", problems=[410])}``."""
    return {_MEDIA_TYPES: tuple(media_types), _PROBLEMS: tuple(problems)}


class RouteIndex(ReceiveRoutePlugin):
    """The app's route handlers by OpenAPI path and method, as the app registers them."""

    __slots__ = ("handlers",)

    def __init__(self) -> None:
        self.handlers: dict[tuple[str, str], HTTPRouteHandler] = {}

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for method, (handler, _) in route.route_handler_map.items():
            self.handlers[(route.path_format or "/", str(method).lower())] = handler


@dataclass
class KithOpenAPIConfig(OpenAPIConfig):
    """Litestar's configuration, with a document that is finished from ``routes``."""

    routes: RouteIndex = field(default_factory=RouteIndex)

    def to_openapi_schema(self) -> OpenAPI:
        # Litestar fills the paths in after this; the document finishes itself when rendered.
        base = super().to_openapi_schema()
        values = {f.name: getattr(base, f.name) for f in fields(base)}
        return _Document(**values, routes=self.routes)


@dataclass
class _Document(OpenAPI):
    routes: RouteIndex = field(default_factory=RouteIndex)

    @property
    def _exclude_fields(self) -> set[str]:
        return {*super()._exclude_fields, "routes"}

    def to_schema(self) -> dict[str, Any]:
        document = super().to_schema()
        finish(document, self.routes.handlers)
        return document


def finish(document: dict[str, Any], handlers: dict[tuple[str, str], HTTPRouteHandler]) -> None:
    """Make ``document`` (a rendered OpenAPI dict) tell what the server does."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[PROBLEM] = PROBLEM_SCHEMA
    _restore_constraints(schemas, _body_types(handlers.values()))
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            handler = handlers.get((path, method))
            if handler is None or not isinstance(operation, dict):
                continue
            public = bool(handler.opt.get(PUBLIC))
            operation["security"] = [] if public else [{SECURITY_SCHEME: []}]
            responses = operation.setdefault("responses", {})
            for status in {
                *_problem_statuses(path, method, operation, public, schemas),
                *handler.opt.get(_PROBLEMS, ()),
            }:
                responses[str(status)] = _problem_response(status)
            for response in responses.values():
                content = response.setdefault("content", {})
                for media_type in handler.opt.get(_MEDIA_TYPES, ()):
                    content.setdefault(media_type, {"schema": {"type": "string"}})


def _problem_statuses(
    path: str, method: str, operation: dict[str, Any], public: bool, schemas: dict[str, Any]
) -> list[int]:
    """The 4xx answers an operation can give, whatever its handler does."""
    statuses: set[int] = set()
    if not public:
        statuses |= {401, 403}
    inputs = [operation.get("parameters", []), operation.get("requestBody", {})]
    if "{" in path or _refers_to_records(inputs, schemas):
        statuses.add(404)
    if operation.get("parameters"):
        statuses |= {400, 422}
    if method in _WRITES:
        statuses.add(409)
    if "requestBody" in operation:
        statuses |= {400, 413, 415, 422}
    # A status the handler declares itself keeps its own description, in problem form.
    statuses |= {int(s) for s in operation.get("responses", {}) if s.startswith("4")}
    return sorted(statuses)


def _refers_to_records(inputs: Any, schemas: dict[str, Any]) -> bool:
    """Whether a parameter or a body field names a record by id, which may not exist."""
    seen: set[str] = set()
    pending = [inputs]
    while pending:
        for node in _nodes(pending.pop()):
            if node.get("format") == "uuid":
                return True
            ref = node.get("$ref")
            name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None
            if name is not None and name not in seen:
                seen.add(name)
                pending.append(schemas.get(name))
    return False


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": TITLES.get(status, "Error"),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _REF.format(name=PROBLEM)}}},
    }


def _body_types(handlers: Iterable[HTTPRouteHandler]) -> list[Any]:
    """The types request bodies are decoded into."""
    types: list[Any] = []
    for handler in handlers:
        data = handler.parsed_fn_signature.parameters.get("data")
        if data is not None and data.annotation not in types:
            types.append(data.annotation)
    return types


def _restore_constraints(schemas: dict[str, Any], types: list[Any]) -> None:
    """Describe the body types as msgspec decodes them: Litestar's description drops some of
    the lengths, ranges and patterns msgspec enforces (those of list items, for one)."""
    try:
        _, exact = msgspec.json.schema_components(types, ref_template=_REF)
    except (TypeError, ValueError):
        # A plugin's body type msgspec cannot describe keeps Litestar's description.
        return
    for name, schema in exact.items():
        if name in schemas and _refs(schema) <= set(schemas):
            _decimals_as_read(schema)
            schemas[name] = schema


def _decimals_as_read(schema: dict[str, Any]) -> None:
    """msgspec reads a decimal from a JSON number as well as from a string, though its schema
    names only the string."""
    for node in [n for n in _nodes(schema) if n.get("format") == "decimal"]:
        node.clear()
        node["anyOf"] = [{"type": "number"}, {"type": "string", "format": "decimal"}]


def _refs(value: Any) -> set[str]:
    """The component names ``value`` refers to."""
    return {
        node["$ref"].rsplit("/", 1)[-1]
        for node in _nodes(value)
        if isinstance(node.get("$ref"), str)
    }


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in a JSON value, nested ones included."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            yield item
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(cast(list[Any], item))


__all__ = ["KithOpenAPIConfig", "RouteIndex", "answers", "finish"]
