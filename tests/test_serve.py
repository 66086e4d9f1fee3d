"""``kith serve`` as a real process: it initialises a fresh home, answers, and refuses an
older database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from click.testing import CliRunner
from kith.bootstrap import open_kith
from kith.cli import main
from kith.cli.setup import FIRST_ADMIN_MARKER
from kith.services.users import UserService
from kith.testing import postgres_admin_url, settings_for, skip_or_fail_without_postgres
from piccolo.apps.migrations.tables import Migration

KITH = str(Path(sys.executable).parent / "kith")
# Only a guard against a hung server; nothing here measures time.
STARTUP_DEADLINE_S = 60.0


@pytest.fixture
def empty_database_url(kith_engine: str) -> Iterator[str]:
    """No database yet: the default SQLite file in KITH_HOME, or a new, empty PostgreSQL one."""
    if kith_engine == "sqlite":
        yield ""
        return
    skip_or_fail_without_postgres()
    name = f"kith_serve_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(postgres_admin_url())._replace(path=f"/{name}"))
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _postgres_admin(sql: str) -> None:
    connection = await asyncpg.connect(postgres_admin_url(), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    stderr: Path

    def output(self) -> str:
        return self.stderr.read_text()


def start(home: Path, database_url: str, log_dir: Path) -> Served:
    port = free_port()
    env = {
        **os.environ,
        "KITH_HOME": str(home),
        "KITH_DATABASE_URL": database_url,
        "KITH_LOG_FORMAT": "json",
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr = log_dir / f"serve-{port}.log"
    with stderr.open("wb") as sink:
        process = subprocess.Popen(
            [KITH, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Served(process, port, stderr)


def wait_for_health(served: Served) -> dict[str, str]:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    url = f"http://127.0.0.1:{served.port}/api/health"
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            pytest.fail(f"kith serve exited with {served.process.returncode}:\n{served.output()}")
        try:
            response = httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, response.text
        body: dict[str, str] = response.json()
        return body
    pytest.fail(f"kith serve did not answer /api/health:\n{served.output()}")


def stop(served: Served) -> int:
    served.process.send_signal(signal.SIGTERM)
    try:
        return served.process.wait(timeout=STARTUP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()
        pytest.fail(f"kith serve did not stop on SIGTERM:\n{served.output()}")


def test_serve_initialises_a_fresh_home_and_hints_at_the_first_admin_once(
    empty_database_url: str, tmp_path: Path, kith_engine: str
) -> None:
    home = tmp_path / "fresh" / "kith-data"
    served = start(home, empty_database_url, tmp_path)
    try:
        health = wait_for_health(served)
    finally:
        code = stop(served)
    # uvicorn stops gracefully, then re-raises SIGTERM so a supervisor sees why it ended.
    assert code in (0, -signal.SIGTERM), served.output()
    assert health["status"] == "ok"
    assert health["database"] == ("sqlite" if kith_engine == "sqlite" else "postgresql")
    output = served.output()
    assert "Initialised" in output
    assert "kith users add you@example.com --role admin" in output
    assert "kith tokens create you@example.com" in output
    assert (home / "kith.toml").exists() and (home / FIRST_ADMIN_MARKER).exists()

    # The hint is shown once per installation, even while there are still no users.
    again = start(home, empty_database_url, tmp_path / "again")
    try:
        wait_for_health(again)
    finally:
        stop(again)
    assert "kith users add" not in again.output()
    assert "Initialised" not in again.output()


def test_serve_refuses_an_older_database_and_names_kith_migrate(
    kith_database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "kith-home"
    settings = settings_for(home, kith_database_url)

    async def forget_newest_migration() -> None:
        kith = open_kith(settings)
        await kith.start()
        try:
            newest = await Migration.select(Migration.id).order_by(Migration.id, ascending=False)
            await Migration.delete().where(Migration.id == newest[0]["id"])
            # A user exists, so the only thing serve could complain about is the migration.
            await UserService(kith).add("ada@example.com", "admin")
        finally:
            await kith.close()

    asyncio.run(forget_newest_migration())
    refused = subprocess.run(
        [KITH, "serve", "--port", str(free_port())],
        env={**os.environ, "KITH_HOME": str(home), "KITH_DATABASE_URL": kith_database_url},
        capture_output=True,
        text=True,
        timeout=STARTUP_DEADLINE_S,
    )
    assert refused.returncode == 1, refused
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kith: "), refused.stderr
    assert "kith migrate" in lines[0]
    assert refused.stdout == ""


def test_serve_on_a_port_in_use_is_one_line_and_keeps_the_hint(
    kith_database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "kith-home"
    env = {
        "KITH_HOME": str(home),
        "KITH_DATABASE_URL": kith_database_url,
        "KITH_LOG_FORMAT": "json",
    }
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port)], env=env)
    assert result.exit_code == 1, result.output
    # Besides what the log says at start-up (on SQLite, that the key file sits beside the
    # database), one line.
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("{")]
    assert len(lines) == 1 and lines[0].startswith("kith: "), result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]
    # The first-admin hint waits for a start that works.
    assert not (home / FIRST_ADMIN_MARKER).exists()


async def test_connections_the_server_accepts_send_without_delay() -> None:
    """``kith serve`` hands uvicorn a listener it made itself; uvicorn serves it with asyncio's
    ``create_server``, which turns Nagle's algorithm off on the connections it accepts only
    when the listener says it is TCP. With Nagle on, every answer on a kept-alive connection
    waited for the client's delayed ACK (about 40 ms)."""
    from kith.cli.setup import _listen

    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Record(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    listener = _listen("127.0.0.1", 0)
    server = await asyncio.get_running_loop().create_server(Record, sock=listener)
    try:
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(accepted, 5) == 1
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def new_database(kith_engine: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes empty databases: SQLite files beside the test's homes, or new PostgreSQL ones."""
    made: list[str] = []

    def make() -> str:
        name = f"kith_serve_{uuid.uuid4().hex[:12]}"
        if kith_engine == "sqlite":
            return f"sqlite:///{tmp_path / name}.sqlite3"
        skip_or_fail_without_postgres()
        asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return urlunsplit(urlsplit(postgres_admin_url())._replace(path=f"/{name}"))

    yield make
    for name in made:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def serve_once(home: Path, database_url: str, log_dir: Path) -> str:
    served = start(home, database_url, log_dir)
    try:
        wait_for_health(served)
    finally:
        stop(served)
    return served.output()


def test_the_first_admin_hint_is_shown_once_for_each_new_database(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    """KITH_HOME outlives a database: pointed at a new one, serve initialises it and says how
    to create its first admin, whether or not `kith migrate` created its tables first."""
    home = tmp_path / "kith-data"
    first = new_database()
    assert "kith users add" in serve_once(home, first, tmp_path / "first")

    second = new_database()
    output = serve_once(home, second, tmp_path / "second")
    assert "Initialised" in output and "kith users add" in output
    assert "kith users add" not in serve_once(home, second, tmp_path / "second-again")

    third = new_database()
    migrated = CliRunner().invoke(
        main, ["migrate"], env={"KITH_HOME": str(home), "KITH_DATABASE_URL": third}
    )
    assert migrated.exit_code == 0, migrated.output
    output = serve_once(home, third, tmp_path / "third")
    assert "Initialised" not in output and "kith users add" in output
    # Back on the first, still without users: it was told already.
    assert "kith users add" not in serve_once(home, first, tmp_path / "first-again")
