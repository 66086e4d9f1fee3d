"""The hook reference, generated from :mod:`kith.hookspecs`.

``python -m kith._hookdoc > docs/plugins/hooks.md`` writes it; a test fails when the file in
the repository differs from what this prints, so the reference cannot drift from the code.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal, NamedTuple

from kith import hookspecs

_ROLE = re.compile(r":(?:func|class|meth|mod|attr):`~?([^`]+)`")

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


def render(module: ModuleType = hookspecs) -> str:
    """The Markdown reference."""
    hooks = collect(module)
    lines = [
        "# Hook reference",
        "",
        "<!-- Generated from kith.hookspecs (core/hookspecs.py) by `python -m kith._hookdoc > "
        "docs/plugins/hooks.md`. Do not edit by hand: tests/test_hook_reference.py fails "
        "when this file differs from what the generator prints. -->",
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
    return "\n".join(lines) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
