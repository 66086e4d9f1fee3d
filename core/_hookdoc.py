"""The hook reference, generated from :mod:`kith.hookspecs`: every hook, and every type of
Kith's the hooks pass or expect back (and the types those name), from their code.

``python -m kith._hookdoc > docs/plugins/hooks.md`` writes it; a test fails when the file in
the repository differs from what this prints, so the reference cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import sys
import typing
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal, NamedTuple

import kith
import msgspec
from kith import hookspecs

_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data):`~?([^`]+)`")
_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*\b")

HookKind = Literal["collecting", "firstresult", "historic"]

KIND_TEXT: dict[str, str] = {
    "collecting": "collecting: every plugin's implementation is called and all results count",
    "firstresult": "firstresult: implementations are called in turn until one returns "
    "something other than None, and that result wins",
    "historic": "historic: the call is remembered and replayed to plugins registered later",
}


class HookDoc(NamedTuple):
    """What the reference says about one hook."""

    name: str
    signature: str
    kind: HookKind
    may_be_async: bool
    doc: str


def _signature(function: Callable[..., Any]) -> str:
    # Annotations are kept as written in hookspecs.py (they are strings there), unquoted.
    signature = inspect.signature(function)
    params = []
    for param in signature.parameters.values():
        annotation = param.annotation
        if annotation is inspect.Parameter.empty:
            params.append(param.name)
        else:
            text = (
                annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
            )
            params.append(f"{param.name}: {text}")
    returns = signature.return_annotation
    result = ""
    if returns is not inspect.Signature.empty:
        result = f" -> {returns if isinstance(returns, str) else inspect.formatannotation(returns)}"
    return f"def {function.__name__}({', '.join(params)}){result}"


def _markdown(text: str) -> str:
    """Docstrings use reStructuredText literals and roles; Markdown wants single backticks."""
    return _ROLE.sub(r"`\1`", text).replace("``", "`")


def _kind(options: dict[str, Any]) -> HookKind:
    if options.get("historic"):
        return "historic"
    if options.get("firstresult"):
        return "firstresult"
    return "collecting"


def collect(module: ModuleType = hookspecs) -> list[HookDoc]:
    """Every hookspec in ``module``, in the order they are written there."""
    marker = f"{hookspecs.PROJECT}_spec"
    found = []
    for name, value in vars(module).items():
        options = getattr(value, marker, None)
        if not name.startswith("kith_") or options is None:
            continue
        found.append(
            HookDoc(
                name=name,
                signature=_signature(value),
                kind=_kind(options),
                may_be_async=hookspecs.is_async_hook(value),
                doc=inspect.cleandoc(value.__doc__ or ""),
            )
        )
    found.sort(key=lambda hook: inspect.getsourcelines(getattr(module, hook.name))[1])
    return found


class TypeDoc(NamedTuple):
    """What the reference says about one type."""

    name: str
    kind: str
    importable: bool
    doc: str
    # (name, type, default) of each field; (signature, doc) of each method; an alias's value.
    fields: list[tuple[str, str, str]]
    methods: list[tuple[str, str]]
    value: str


def _names(text: str) -> list[str]:
    return _NAME.findall(text)


def _lookup(name: str, near: ModuleType) -> Any:
    """Kith's public object of that name, or a class or alias of the module that names it;
    None for anything else (``str``, piccolo's, click's, type variables...)."""
    if name in kith.__all__:
        return getattr(kith, name)
    value = vars(near).get(name)
    if value is None or name.startswith("_") or isinstance(value, typing.TypeVar):
        return None
    if inspect.isclass(value):
        return value if value.__module__.startswith("kith") else None
    # An alias (``Handler = Callable[...]``) written in that module.
    return value if _alias_source(name, near) else None


def _alias_source(name: str, module: ModuleType) -> str:
    """The right-hand side of ``name = ...`` in ``module``'s source, on one line."""
    source = inspect.getsource(module)
    found = re.search(rf"^{re.escape(name)} = (.+?)\n(?=\S)", source, re.M | re.S)
    return " ".join(found.group(1).split()) if found else ""


def _default(value: Any) -> str:
    if value is msgspec.NODEFAULT or value is dataclasses.MISSING:
        return "required"
    return f"`{value!r}`"


def _struct_fields(cls: type) -> list[tuple[str, str, str]]:
    # Read without resolving the annotations: some name types imported for checking only.
    annotations: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        annotations.update(inspect.get_annotations(base))
    names: tuple[str, ...] = cls.__struct_fields__  # type: ignore[attr-defined]
    defaults: tuple[Any, ...] = cls.__struct_defaults__  # type: ignore[attr-defined]
    padded = (msgspec.NODEFAULT,) * (len(names) - len(defaults)) + defaults
    rows = []
    for name, value in zip(names, padded, strict=True):
        factory = getattr(value, "factory", None)
        default = f"`{factory.__name__}()`" if factory is not None else _default(value)
        rows.append((name, str(annotations.get(name, "")), default))
    return rows


def _dataclass_fields(cls: type) -> list[tuple[str, str, str]]:
    rows = []
    for field in dataclasses.fields(cls):
        if not field.init or field.name.startswith("_"):
            continue
        factory = field.default_factory
        if factory is not dataclasses.MISSING:
            default = f"`{getattr(factory, '__name__', 'factory')}()`"
        else:
            default = _default(field.default)
        rows.append((field.name, str(field.type), default))
    return rows


def _parameters(function: Callable[..., Any]) -> str:
    """``name(param: type = default, ...) -> returns``, as written (defaults that are not
    plain values shown as ``...``)."""
    params = []
    for param in inspect.signature(function).parameters.values():
        if param.name == "self":
            continue
        text = param.name
        if param.kind is param.VAR_KEYWORD:
            text = f"**{text}"
        elif param.kind is param.VAR_POSITIONAL:
            text = f"*{text}"
        if param.annotation is not inspect.Parameter.empty:
            text += f": {param.annotation}"
        if param.default is not inspect.Parameter.empty:
            plain = param.default is None or isinstance(param.default, bool | int | float | str)
            text += f" = {param.default!r}" if plain else " = ..."
        params.append(text)
    returns = inspect.signature(function).return_annotation
    result = "" if returns is inspect.Signature.empty else f" -> {returns}"
    prefix = "async " if inspect.iscoroutinefunction(function) else ""
    return f"{prefix}{function.__name__}({', '.join(params)}){result}"


def _methods(cls: type) -> list[tuple[str, str]]:
    """Public methods and properties defined by the class itself, in source order."""
    found = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property) and value.fget is not None:
            returns = inspect.get_annotations(value.fget).get("return", "")
            found.append((f"{name}: {returns}" if returns else name, value.fget.__doc__ or ""))
        elif inspect.isfunction(value):
            found.append((_parameters(value), value.__doc__ or ""))
    return found


def _describe(name: str, value: Any, module: ModuleType) -> TypeDoc:
    importable = name in kith.__all__
    if typing.get_origin(value) is Literal:
        choices = ", ".join(f"`{choice!r}`" for choice in typing.get_args(value))
        return TypeDoc(name, "alias", importable, "", [], [], f"one of {choices}")
    if not inspect.isclass(value):
        return TypeDoc(name, "alias", importable, "", [], [], f"`{_alias_source(name, module)}`")
    doc = inspect.cleandoc(value.__doc__ or "")
    if issubclass(value, enum.Enum):
        choices = ", ".join(f"`{member.value!r}`" for member in value)
        return TypeDoc(name, "enum", importable, doc, [], [], f"one of {choices}")
    if issubclass(value, msgspec.Struct):
        frozen = value.__struct_config__.frozen
        kind = "msgspec Struct" + (" (frozen)" if frozen else "")
        return TypeDoc(name, kind, importable, doc, _struct_fields(value), _methods(value), "")
    if dataclasses.is_dataclass(value):
        kind = "dataclass" + (" (frozen)" if value.__dataclass_params__.frozen else "")  # type: ignore[attr-defined]
        return TypeDoc(name, kind, importable, doc, _dataclass_fields(value), _methods(value), "")
    kind = "protocol" if getattr(value, "_is_protocol", False) else "class"
    return TypeDoc(name, kind, importable, doc, [], _methods(value), "")


def collect_types(hooks: list[HookDoc], module: ModuleType = hookspecs) -> list[TypeDoc]:
    """Kith's types named in the hooks' signatures and, in turn, in those types' fields and
    methods; alphabetical. Names not exported by ``kith`` are looked up in ``module``, the
    hookspecs module the hooks come from."""
    seen: dict[str, TypeDoc] = {}
    todo = [(name, module) for hook in hooks for name in _names(hook.signature)]
    while todo:
        name, near = todo.pop(0)
        if name in seen:
            continue
        value = _lookup(name, near)
        if value is None:
            continue
        module = sys.modules.get(getattr(value, "__module__", ""), near) or near
        if typing.get_origin(value) is Literal or not inspect.isclass(value):
            module = near
        doc = _describe(name, value, module)
        seen[name] = doc
        texts = [field_type for _, field_type, _ in doc.fields]
        texts += [signature for signature, _ in doc.methods]
        texts.append(doc.value)
        todo += [(named, module) for text in texts for named in _names(text)]
    return [seen[name] for name in sorted(seen)]


def _type_lines(types: list[TypeDoc]) -> list[str]:
    lines = [
        "",
        "## Types",
        "",
        "The types of Kith's that hooks pass or expect back, and the types those name. Import "
        "them from `kith` (`from kith import ErasureOutcome`); the few marked otherwise appear "
        "in these signatures only.",
    ]
    for item in types:
        where = f"`from kith import {item.name}`" if item.importable else "not exported"
        lines += ["", f"### {item.name}", "", f"{item.kind}, {where}."]
        if item.value:
            lines += ["", f"`{item.name}`: {item.value}."]
        if item.doc:
            lines += ["", _markdown(item.doc)]
        if item.fields:
            lines += ["", "| field | type | default |", "| --- | --- | --- |"]
            # A pipe inside a table cell ends the cell, backticks or not.
            lines += [
                f"| `{n}` | `{t.replace('|', chr(92) + '|')}` | {d} |" for n, t, d in item.fields
            ]
        for signature, method_doc in item.methods:
            lines += ["", f"- `{signature}`"]
            text = " ".join(_markdown(inspect.cleandoc(method_doc)).split())
            if text:
                lines[-1] += f": {text}"
    return lines


def render(module: ModuleType = hookspecs) -> str:
    """The Markdown reference."""
    hooks = collect(module)
    types = collect_types(hooks, module)
    if module is hookspecs:
        title = "# Hook reference"
        origin = (
            "<!-- Generated from kith.hookspecs (core/hookspecs.py) by `python -m kith._hookdoc "
            "> docs/plugins/hooks.md`. Do not edit by hand: tests/test_hook_reference.py fails "
            "when this file differs from what the generator prints. -->"
        )
    else:
        # A plugin's own hookspecs (kith_add_hookspecs), documented the same way.
        title = f"# Hook reference: {module.__name__}"
        origin = (
            f"<!-- Generated from {module.__name__} by `python -m kith._hookdoc "
            f"{module.__name__}`. Do not edit by hand: a test fails when this file differs "
            "from what the generator prints. -->"
        )
    lines = [
        title,
        "",
        origin,
        "",
        _markdown(inspect.cleandoc(module.__doc__ or "")),
        "",
        "Implement a hook with a function of the same name in your plugin module, decorated "
        "with `kith.hookimpl`. Pluggy passes arguments by name, so an "
        "implementation may leave out parameters it does not use.",
        "",
        "| hook | kind | async |",
        "| --- | --- | --- |",
    ]
    for hook in hooks:
        asynchronous = "may be async" if hook.may_be_async else "sync only"
        lines.append(f"| [`{hook.name}`](#{hook.name}) | {hook.kind} | {asynchronous} |")
    lines += [
        "",
        "Types the hooks pass: "
        + ", ".join(f"[`{item.name}`](#{item.name.lower()})" for item in types)
        + " (see [Types](#types)).",
    ]
    for hook in hooks:
        lines += [
            "",
            f"## {hook.name}",
            "",
            "```python",
            f"{hook.signature}: ...",
            "```",
            "",
            f"- Kind: {KIND_TEXT[hook.kind]}.",
            "- Async: "
            + (
                "may be async: an `async def` implementation is awaited."
                if hook.may_be_async
                else "sync only: an `async def` implementation is refused when the plugin "
                "registers."
            ),
            "",
            _markdown(hook.doc),
        ]
    lines += _type_lines(types)
    return "\n".join(lines) + "\n"


def main() -> None:
    """Print the reference of core's hooks, or of the hookspecs module named as the argument
    (a plugin's own, e.g. ``kith.plugins.telephony.hookspecs``)."""
    import importlib

    module = importlib.import_module(sys.argv[1]) if len(sys.argv) > 1 else hookspecs
    sys.stdout.write(render(module))


if __name__ == "__main__":
    main()
