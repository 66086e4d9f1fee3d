"""The hook reference stays true to the hookspecs: generated, documented and tested.

Fails when docs/plugins/hooks.md is not what ``python -m kith._hookdoc`` prints, when a hook's
docstring is missing or does not say whether it is sync or may be async and whether it collects
or is firstresult, and when no test under tests/ implements or calls a hook.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import kith
import pytest
from kith import _hookdoc, hookspecs

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "plugins" / "hooks.md"
HOOKS = _hookdoc.collect()
HOOK_IDS = [hook.name for hook in HOOKS]
TYPES = _hookdoc.collect_types(HOOKS)


def test_there_are_hooks_to_document():
    assert len(HOOKS) >= 10
    assert all(hook.name.startswith("kith_") for hook in HOOKS)


def test_reference_matches_the_generator():
    regenerate = "python -m kith._hookdoc > docs/plugins/hooks.md"
    assert REFERENCE.exists(), f"docs/plugins/hooks.md is missing; run `{regenerate}`"
    assert REFERENCE.read_text(encoding="utf-8") == _hookdoc.render(), (
        f"docs/plugins/hooks.md is out of date with core/hookspecs.py; run `{regenerate}`"
    )


def test_generator_runs_as_a_module():
    printed = subprocess.run(
        [sys.executable, "-m", "kith._hookdoc"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert printed == _hookdoc.render()
    for name in HOOK_IDS:
        assert f"## {name}\n" in printed


@pytest.mark.parametrize("hook", HOOKS, ids=HOOK_IDS)
def test_docstring_says_sync_or_async_and_kind(hook: _hookdoc.HookDoc):
    doc = " ".join(hook.doc.lower().split())
    assert doc, f"{hook.name} has no docstring"
    if hook.may_be_async:
        assert "may be async" in doc, f"{hook.name} is marked may_be_async; say 'May be async.'"
    else:
        assert "sync only" in doc, f"{hook.name} is sync only; say 'Sync only.'"
    if hook.kind == "firstresult":
        assert "first result" in doc or "firstresult" in doc, (
            f"{hook.name} is firstresult; say 'First result wins.'"
        )
        assert not hook.may_be_async, f"{hook.name}: a firstresult hook cannot be async"
    elif hook.kind == "historic":
        assert "historic" in doc, f"{hook.name} is historic; say so"
    else:
        assert "collecting" in doc, f"{hook.name} collects; say 'Collecting.'"


def _test_sources() -> dict[Path, str]:
    here = Path(__file__).resolve()
    return {
        path: path.read_text(encoding="utf-8")
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.resolve() != here
    }


@pytest.mark.parametrize("name", HOOK_IDS)
def test_every_hook_is_exercised_by_a_test(name: str):
    # By name: a test module that implements the hook or calls it through the plugin manager.
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    users = [path.name for path, text in _test_sources().items() if pattern.search(text)]
    assert users, f"no test under tests/ implements or calls {name}"


def test_every_hookspec_is_in_the_reference():
    specs = {
        name
        for name, value in vars(hookspecs).items()
        if name.startswith("kith_") and hasattr(value, f"{hookspecs.PROJECT}_spec")
    }
    assert specs == set(HOOK_IDS)


def test_the_types_hooks_pass_are_in_the_reference():
    names = {item.name for item in TYPES}
    assert {
        "Access",
        "Actor",
        "ErasureMethod",
        "ErasureOutcome",
        "Event",
        "EventType",
        "ExportSection",
        "FieldProtector",
        "KeyProvider",
        "Kith",
        "PersonalField",
        "Purpose",
        "Recipient",
        "RecipientAction",
        "RecipientNotice",
        "RowPages",
        "Settings",
        "SubjectHold",
        "Subscriber",
    } <= names
    text = REFERENCE.read_text(encoding="utf-8")
    for item in TYPES:
        assert f"\n### {item.name}\n" in text, item.name
    # Each field with its type and default, from the code.
    assert "| `seal_for` | `uuid.UUID` | required |" in text
    assert "| `count` | `int` | `0` |" in text
    assert "`RecipientAction`: one of `'rectification'`" in text


def test_every_kith_type_in_a_hook_signature_is_described():
    described = {item.name for item in TYPES}
    for hook in HOOKS:
        for name in re.findall(r"\b[A-Z][A-Za-z]+\b", hook.signature):
            if name in kith.__all__:
                assert name in described, f"{hook.name} passes {name}, which is not described"
