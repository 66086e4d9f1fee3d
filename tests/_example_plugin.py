"""Installs examples/kith-example-plugin into the test environment with pip, as a user would.

It runs once per test session, before any test (tests/conftest.py), so that the migrated
template databases the fixtures copy already hold the example's table like every other
installed plugin's. An install that is already up to date (same files, version and entry
points as the source) is kept, so a session does not pay for pip each time; an edited example is
reinstalled. A failed install fails the example's tests, with pip's output, not the session.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "kith-example-plugin"
DISTRIBUTION = "kith-example-plugin"
_SKIP = ("__pycache__", "build", "dist")

# Why the install failed, for the example's tests to report; None when it is installed.
install_error: str | None = None


def _source_files() -> dict[str, Path]:
    root = EXAMPLE / "src"
    return {
        path.relative_to(root).as_posix(): path
        for path in root.rglob("*")
        if path.is_file()
        and not any(part in _SKIP or part.endswith(".egg-info") for part in path.parts)
    }


def up_to_date() -> bool:
    """Whether the installed distribution is exactly the example in the source tree."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    if dist.version != project["version"]:
        return False
    wanted = {
        (group, name, value)
        for group, entries in project.get("entry-points", {}).items()
        for name, value in entries.items()
    }
    if {(ep.group, ep.name, ep.value) for ep in dist.entry_points} != wanted:
        return False
    sources = _source_files()
    packages = {name.split("/", 1)[0] for name in sources}
    installed = {
        str(file): file
        for file in dist.files or []
        if str(file).split("/", 1)[0] in packages and "__pycache__" not in str(file)
    }
    if set(installed) != set(sources):
        return False
    return all(
        Path(str(dist.locate_file(file))).read_bytes() == sources[name].read_bytes()
        for name, file in installed.items()
    )


def install() -> None:
    """``pip install`` the example (from a copy, so the source tree gets no build files)."""
    global install_error
    install_error = None
    if up_to_date():
        return
    # Two test sessions starting together must not run pip over each other.
    with _install_lock():
        importlib.invalidate_caches()  # another session may have installed it meanwhile
        if not up_to_date():
            install_error = _pip_install()
    # The running interpreter must see the new distribution and its modules.
    importlib.invalidate_caches()


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    with open(Path(sys.prefix) / ".kith-example-plugin.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pip_install() -> str | None:
    """Install a copy of the example; the error to report, or None."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / EXAMPLE.name
        shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns(*_SKIP, "*.egg-info"))
        # No dependencies: the example needs only kith, which is the project under test.
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", str(copy)],
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        return f"pip install {EXAMPLE} failed:\n{done.stdout}\n{done.stderr}"
    return None
