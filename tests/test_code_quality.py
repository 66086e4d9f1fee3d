"""The code stays ruff- and mypy-clean and keeps its layers, and plugins build on Kith's public
API only: a change that breaks any of it fails the suite, not a later reader."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The folders that become one ``kith`` namespace when installed (pyproject.toml's package-dir).
NAMESPACE = {
    "kith": "core",
    "kith/privacy": "privacy",
    "kith/plugins": "plugins",
    "kith/cli": "cli",
}
# Kith's public API: ``kith`` itself and these modules, each with its ``__all__``.
PUBLIC_MODULES = ("kith", "kith.console", "kith.http", "kith.testing", "kith.web")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted() -> None:
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing() -> None:
    result = _run("mypy", "core", "privacy", "plugins", "cli")
    assert result.returncode == 0, result.stdout + result.stderr


def _import_layout(root: Path) -> Path:
    """The source folders laid out under their import names (the editable install maps them,
    which the import graph cannot follow)."""
    for name, folder in NAMESPACE.items():
        target = root / name
        if name == "kith":
            target.mkdir(parents=True)
            for entry in (ROOT / folder).iterdir():
                (target / entry.name).symlink_to(entry)
        else:
            target.symlink_to(ROOT / folder)
    return root


def test_the_layers_import_only_downwards(tmp_path: Path) -> None:
    # The contracts in pyproject.toml: cli, then plugins, then privacy, then core.
    layout = _import_layout(tmp_path / "layout")
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), str(ROOT / "pyproject.toml")],
        cwd=layout,
        env={"PYTHONPATH": str(layout), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def _public_names() -> dict[str, set[str]]:
    return {name: set(importlib.import_module(name).__all__) for name in PUBLIC_MODULES}


def _plugin_sources() -> list[tuple[Path, str]]:
    """Every module of the built-in plugins and the example plugin, with the package a plugin
    may import freely (its own)."""
    sources = [
        (path, f"kith.plugins.{package.name}")
        for package in sorted((ROOT / "plugins").iterdir())
        if package.is_dir() and (package / "__init__.py").exists()
        for path in sorted(package.rglob("*.py"))
    ]
    # The example plugin's package and its tests, which a plugin author copies too.
    example = ROOT / "examples" / "kith-example-plugin"
    sources += [(path, "kith_example") for path in sorted(example.rglob("*.py"))]
    return sources


@pytest.mark.parametrize(
    ("path", "own"),
    _plugin_sources(),
    ids=[str(path.relative_to(ROOT)) for path, _ in _plugin_sources()],
)
def test_plugins_import_only_kiths_public_names(path: Path, own: str) -> None:
    public = _public_names()
    wrong = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = node.module
            if not (module == "kith" or module.startswith("kith.")) or module.startswith(own):
                continue
            for alias in node.names:
                if alias.name not in public.get(module, set()):
                    wrong.append(f"line {node.lineno}: from {module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                if name.startswith("kith.") and not name.startswith(own) and name not in public:
                    wrong.append(f"line {node.lineno}: import {name}")
    public_api = "kith.__all__, kith.console, kith.http, kith.web"
    assert not wrong, f"not Kith's public API ({public_api}): " + "; ".join(wrong)
