"""Session set-up shared by the whole suite."""

from __future__ import annotations

import _example_plugin
import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    # Before any fixture builds the migrated template databases: see _example_plugin.
    _example_plugin.install()
