"""What `pip install .` ships: one `kith` namespace holding every module of the four source
folders, and nothing called `core`, `privacy`, `plugins` or `cli` at the top level."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = {
    "core": "kith",
    "privacy": "kith/privacy",
    "plugins": "kith/plugins",
    "cli": "kith/cli",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("kith-*.whl")
    return zipfile.ZipFile(built)


@pytest.fixture(scope="module")
def wheel_files(wheel: zipfile.ZipFile) -> set[str]:
    return set(wheel.namelist())


def _expected_modules() -> set[str]:
    expected = set()
    for folder, target in SOURCE_FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT / folder)
            if "__pycache__" not in relative.parts:
                expected.add(f"{target}/{relative.as_posix()}")
    return expected


def test_wheel_holds_every_module_under_the_kith_namespace(wheel_files: set[str]) -> None:
    missing = sorted(_expected_modules() - wheel_files)
    assert not missing, f"add these packages to [tool.setuptools] packages: {missing}"
    assert {name.split("/")[0] for name in wheel_files} == {"kith", "kith-0.1.0.dist-info"}
    assert "kith/py.typed" in wheel_files


def test_wheel_holds_the_web_pages_templates(wheel_files: set[str]) -> None:
    expected = {
        f"{SOURCE_FOLDERS[path.parts[0]]}/{Path(*path.parts[1:]).as_posix()}"
        for folder in ("core", "privacy", "plugins")
        for path in (p.relative_to(ROOT) for p in (ROOT / folder).rglob("templates/**/*.html"))
    }
    assert "kith/privacy/requests/templates/requests/request.html" in expected
    assert not sorted(expected - wheel_files), "add them to [tool.setuptools.package-data]"


def test_package_list_names_every_package_folder() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(
            [
                SOURCE_FOLDERS[folder].replace("/", "."),
                *init.parent.relative_to(ROOT / folder).parts,
            ]
        )
        for folder in SOURCE_FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert on_disk == listed


def test_wheel_declares_the_console_script_and_plugin_entry_points(wheel: zipfile.ZipFile) -> None:
    text = wheel.read("kith-0.1.0.dist-info/entry_points.txt").decode()
    sections: dict[str, dict[str, str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif "=" in line:
            name, _, target = line.partition("=")
            sections.setdefault(current, {})[name.strip()] = target.strip()
    assert sections["console_scripts"]["kith"] == "kith.cli:main"
    assert sections["pytest11"]["kith"] == "kith.testing"
    assert sections["kith"]["privacy.encryption"] == "kith.privacy.encryption.plugin"
    assert sections["kith"]["privacy.rights"] == "kith.privacy.rights.plugin"
    assert sections["kith"]["privacy.requests"] == "kith.privacy.requests.plugin"
    assert sections["kith"]["webhooks"] == "kith.plugins.webhooks"
