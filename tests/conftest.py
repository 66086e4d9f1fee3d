"""Session set-up shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import _example_plugin
import pytest
import structlog
from _webhook_receiver import Receiver


def pytest_sessionstart(session: pytest.Session) -> None:
    # Before any fixture builds the migrated template databases: see _example_plugin.
    _example_plugin.install()


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    # A command run in-process configures logging for its terminal (warnings only); the next
    # test must still see every level it logs.
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on 127.0.0.1 for webhook deliveries."""
    server = Receiver()
    server.start()
    yield server
    server.stop()
