"""Shared pieces of Kith's benchmarks: throw-away installations, a real server, load generators.

Every benchmark reports ratios against a reference measured in the same run (docs/performance.md),
so these helpers aim at "the same conditions for both sides" rather than at absolute speed: the
same server process, the same load generator, the same concurrency and duration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog
from kith.bootstrap import open_kith
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, PhoneIn
from kith.services.contacts import ContactService
from kith.services.users import UserService
from kith.settings import Settings, load_settings

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"

# The benchmark's own process (seeding) logs only problems, and to stderr: stdout is the table.
structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
)


def postgres_admin_url() -> str:
    """Where the benchmarks create (and drop) their own PostgreSQL databases."""
    return os.environ.get("KITH_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)


# -- installations ---------------------------------------------------------------------------


def bench_settings(home: Path, database_url: str = "") -> Settings:
    # JSON logs: the server logs every request as it would in production (behind a process
    # manager), so that cost is part of both endpoints' figures.
    return load_settings(
        {"KITH_HOME": str(home), "KITH_DATABASE_URL": database_url, "KITH_LOG_FORMAT": "json"}
    )


async def _postgres_admin(sql: str) -> None:
    connection = await asyncpg.connect(postgres_admin_url(), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def postgres_unavailable() -> str | None:
    """Why the PostgreSQL rows cannot run, or None when they can."""
    try:
        asyncio.run(_postgres_admin("SELECT 1"))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL at {postgres_admin_url()} is not reachable ({exc})"
    return None


@contextlib.contextmanager
def installation(engine: str) -> Iterator[Settings]:
    """A fresh, migrated Kith installation on ``sqlite`` or ``postgresql``, removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="kith-bench-"))
    database_name: str | None = None
    try:
        if engine == "postgresql":
            database_name = f"kith_bench_{uuid.uuid4().hex[:10]}"
            asyncio.run(_postgres_admin(f'CREATE DATABASE "{database_name}"'))
            parts = urlsplit(postgres_admin_url())
            settings = bench_settings(home, urlunsplit(parts._replace(path=f"/{database_name}")))
        else:
            settings = bench_settings(home)
        asyncio.run(_migrate(settings))
        yield settings
    finally:
        if database_name is not None:
            asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)'))
        shutil.rmtree(home, ignore_errors=True)


async def _migrate(settings: Settings) -> None:
    kith = open_kith(settings)
    await kith.start()
    try:
        await kith.database.migrate()
    finally:
        await kith.close()


@dataclass
class Seeded:
    token: str
    contact_ids: list[uuid.UUID]
    # Loaded plugins: the privacy plugin, for one, changes what reading a contact costs.
    plugins: list[str] = field(default_factory=list)


async def _seed(kith: Kith, contacts: int, rng: random.Random) -> Seeded:
    users = UserService(kith)
    await users.add("bench-admin@example.com", "admin")
    issued = await users.create_token("bench-admin@example.com", name="bench")
    service = ContactService(kith)
    ids = []
    for number in range(contacts):
        # One or two of each, so reading a contact returns a realistic handful of rows.
        emails = [
            EmailIn(f"person{number}.{extra}@example.com", label="work" if extra else "")
            for extra in range(rng.randint(1, 2))
        ]
        phones = [
            PhoneIn(f"+44 20 7{number % 1000:03d} {extra}{rng.randint(100, 999)}")
            for extra in range(rng.randint(1, 2))
        ]
        created = await service.create(
            ContactCreate(
                given_name=f"Given{number}",
                family_name=f"Family{number}",
                emails=emails,
                phones=phones,
                tags=["bench"],
            )
        )
        ids.append(created.id)
    manager = getattr(kith, "plugins", None)
    plugins = [info.name for info in manager.plugins()] if manager is not None else []
    return Seeded(token=issued.secret, contact_ids=ids, plugins=plugins)


def seed(settings: Settings, contacts: int, seed_value: int = 7) -> Seeded:
    """An admin user with a token, and ``contacts`` contacts with emails and phones."""

    async def run() -> Seeded:
        kith = open_kith(settings)
        await kith.start()
        try:
            return await _seed(kith, contacts, random.Random(seed_value))
        finally:
            await kith.close()

    return asyncio.run(run())


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    port: int
    pid: int

    def cpu_seconds(self) -> float | None:
        """CPU time the server process (all its threads) has used so far, where the system
        tells (Linux). Unlike requests/s it hardly depends on what else the machine is doing."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        # utime and stime, the 14th and 15th fields of the whole line, in clock ticks.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running_server(
    settings: Settings, stock_sqlite: bool = False, extra_env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """``kith serve`` for ``settings`` in its own process (so it has the GIL to itself, as in
    production), with ``extra_env`` in its environment; yields it and stops it afterwards.
    ``stock_sqlite`` serves the same app from ``_server.py`` on piccolo's own SQLite engine."""
    port = free_port()
    env = {
        **os.environ,
        **(extra_env or {}),
        "KITH_HOME": str(settings.home),
        "KITH_DATABASE_URL": settings.database_url,
        "KITH_LOG_FORMAT": "json",
        # As behind `kith serve --no-dispatch` with a `kith worker` elsewhere: otherwise the
        # server would spend the measurements delivering the events the seeding just published
        # (one contact.created per contact), which says nothing about reading.
        "KITH_DISPATCH_IN_PROCESS": "false",
    }
    if stock_sqlite:
        command = [sys.executable, str(BENCH_DIR / "_server.py"), "--port", str(port)]
        command.append("--stock-sqlite")
    else:
        # The command users run, so that what is measured is what ships.
        command = [str(Path(sys.executable).parent / "kith"), "serve", "--port", str(port)]
    # The request log goes to a file, not a pipe: writing it is part of the measured work, and
    # a pipe nobody reads would fill up and stall the server.
    log_path = settings.home / f"bench-server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        _wait_until_listening(process, port, log_path)
        yield Server(port=port, pid=process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(
    process: subprocess.Popen[bytes], port: int, log_path: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = log_path.read_text(errors="replace")
            raise RuntimeError(f"the bench server exited early:\n{error[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the bench server did not listen on port {port} within {timeout} s")


# -- load generators -------------------------------------------------------------------------


@dataclass
class Load:
    """What to send: requests spread at random over ``paths``. A ``body`` is sent as JSON with
    every ``{n}`` in it replaced by a number of eight digits no other request of this generator
    gets, so that writes of unique values (emails, phones) never conflict."""

    paths: Sequence[str]
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    body: str | None = None
    # The status a request succeeds with, when not 200 for GET and 201 otherwise (a webhook
    # answers 200).
    status: int | None = None

    def expected_status(self) -> int:
        if self.status is not None:
            return self.status
        return 200 if self.method == "GET" else 201


@dataclass
class Measurement:
    requests: int
    seconds: float
    failures: int
    server_cpu: float | None = None

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_request(self) -> float | None:
        """Server CPU seconds per request, or None where the system does not tell."""
        if self.server_cpu is None or not self.requests:
            return None
        return self.server_cpu / self.requests


class LoadGenerator:
    name = "?"

    def __init__(self, connections: int) -> None:
        self.connections = connections

    def describe(self) -> str:
        raise NotImplementedError

    def measure(self, server: Server, load: Load, seconds: float) -> Measurement:
        """Send ``load`` to ``server`` for ``seconds``; also note the server's CPU time."""
        cpu_before = server.cpu_seconds()
        result = self.run(server.port, load, seconds)
        cpu_after = server.cpu_seconds()
        if cpu_before is not None and cpu_after is not None:
            result.server_cpu = cpu_after - cpu_before
        return result

    def run(self, port: int, load: Load, seconds: float) -> Measurement:
        raise NotImplementedError


class Wrk(LoadGenerator):
    """wrk (C, event loop): one thread is enough to saturate a single Python server process and
    leaves the other core of a small machine to that server."""

    name = "wrk"

    def __init__(self, connections: int, executable: str) -> None:
        super().__init__(connections)
        self.executable = executable

    def version(self) -> str:
        result = subprocess.run(
            [self.executable, "--version"], capture_output=True, text=True, check=False
        )
        match = re.search(r"wrk (\S+)", result.stdout + result.stderr)
        return match.group(1) if match else "?"

    def describe(self) -> str:
        return f"wrk {self.version()} (1 thread, {self.connections} keep-alive connections)"

    def run(self, port: int, load: Load, seconds: float) -> Measurement:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(_wrk_script(load))
        try:
            result = subprocess.run(
                [
                    self.executable,
                    "-t1",
                    f"-c{self.connections}",
                    f"-d{max(1, round(seconds))}s",
                    "-s",
                    script.name,
                    f"http://127.0.0.1:{port}",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            os.unlink(script.name)
        match = re.search(r"^KITH (\d+) (\d+) (\d+)$", result.stdout, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"unexpected wrk output:\n{result.stdout}\n{result.stderr}")
        requests, micros, failures = (int(value) for value in match.groups())
        return Measurement(requests=requests, seconds=micros / 1e6, failures=failures)


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrk_script(load: Load) -> str:
    paths = ",\n".join(f"  {_lua_string(path)}" for path in load.paths)
    all_headers = dict(load.headers)
    if load.body is not None:
        # JSON unless the load says otherwise (a provider's webhook posts a form).
        all_headers.setdefault("Content-Type", "application/json")
    headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in all_headers.items())
    if load.body is None:
        # Requests are built once up front so the generator spends its time sending.
        request = f"""
local requests = {{}}
init = function(args)
  for i, path in ipairs(paths) do
    requests[i] = wrk.format("GET", path, {{{headers}}})
  end
end
request = function()
  return requests[math.random(#requests)]
end
"""
    else:
        request = f"""
local counter = math.random(0, 40000000)
request = function()
  counter = counter + 1
  local body = string.gsub({_lua_string(load.body)}, "{{n}}", string.format("%08d", counter))
  return wrk.format({_lua_string(load.method)}, paths[math.random(#paths)], {{{headers}}}, body)
end
"""
    return f"""
local paths = {{
{paths}
}}
{request}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("KITH %d %d %d\\n", summary.requests, summary.duration,
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


class PythonGenerator(LoadGenerator):
    """A raw-socket keep-alive HTTP/1.1 client on asyncio, for machines without wrk. It costs
    more CPU per request than wrk, but far less than an HTTP client library would."""

    name = "python"

    def describe(self) -> str:
        return f"built-in asyncio generator ({self.connections} keep-alive connections)"

    def run(self, port: int, load: Load, seconds: float) -> Measurement:
        return asyncio.run(self._run(port, load, seconds))

    async def _run(self, port: int, load: Load, seconds: float) -> Measurement:
        headers = dict(load.headers)
        if load.body is not None:
            headers.setdefault("Content-Type", "application/json")
        header_lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        heads = [
            f"{load.method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{header_lines}"
            for path in load.paths
        ]
        if load.body is None:
            fixed = [(head + "\r\n").encode("latin-1") for head in heads]

            def request(rng: random.Random) -> bytes:
                return rng.choice(fixed)
        else:
            template = load.body

            def request(rng: random.Random) -> bytes:
                body = template.replace("{n}", f"{self._next_number():08d}").encode()
                head = f"{rng.choice(heads)}Content-Length: {len(body)}\r\n\r\n"
                return head.encode("latin-1") + body

        expected = load.expected_status()
        started = time.perf_counter()
        deadline = started + seconds
        counts = await asyncio.gather(
            *(
                self._connection(port, request, expected, deadline, random.Random(index))
                for index in range(self.connections)
            )
        )
        elapsed = time.perf_counter() - started
        return Measurement(
            requests=sum(done for done, _ in counts),
            seconds=elapsed,
            failures=sum(failed for _, failed in counts),
        )

    def _next_number(self) -> int:
        # One event loop: no two connections can take the same number.
        self._numbers = getattr(self, "_numbers", 0) + 1
        return self._numbers

    async def _connection(
        self,
        port: int,
        request: Callable[[random.Random], bytes],
        expected: int,
        deadline: float,
        rng: random.Random,
    ) -> tuple[int, int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done = failed = 0
        try:
            while time.perf_counter() < deadline:
                writer.write(request(rng))
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if match is None:
                    raise RuntimeError("the bench generator needs Content-Length responses")
                await reader.readexactly(int(match.group(1)))
                done += 1
                if status != expected:
                    failed += 1
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        return done, failed


def load_generator(choice: str, connections: int) -> LoadGenerator:
    """``wrk`` when asked for or found (``auto``), else the built-in generator."""
    executable = shutil.which("wrk")
    if choice == "wrk" and executable is None:
        raise SystemExit("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    if choice in ("wrk", "auto") and executable is not None:
        return Wrk(connections, executable)
    return PythonGenerator(connections)


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain-text table that reads well in a terminal and pastes into Markdown."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(headers))
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for row in rows:
        print(line(row))


# -- webhook benchmarks ----------------------------------------------------------------------

ENGINES = ("sqlite", "postgresql")


@dataclass
class WebhookBench:
    """A provider's webhooks measured against ``GET /api/health`` of the same ``kith serve``
    (configured with ``settings``, the text of its ``kith.toml``), alternating rounds with the
    same generator and concurrency; the best round of each counts. ``loads`` are the webhook
    requests by name; the ratio of each to health has ``target``."""

    title: str
    settings: str
    loads: Callable[[], dict[str, Load]]
    # What one webhook request stands for in the table's column ("events", "messages").
    unit: str
    target: float = 0.30


def measure_webhooks(
    bench: WebhookBench, engine: str, generator: LoadGenerator, options: Any
) -> dict[str, list[Measurement]] | str:
    """Each load's measurements on ``engine`` (health's first), or why the engine is skipped."""
    if engine == "postgresql":
        reason = postgres_unavailable()
        if reason is not None:
            return f"skipped: {reason}"
    with installation(engine) as settings:
        (settings.home / "kith.toml").write_text(bench.settings, encoding="utf-8")
        seed(settings, options.contacts)
        loads = {"health": Load(paths=["/api/health"]), **bench.loads()}
        results: dict[str, list[Measurement]] = {name: [] for name in loads}
        with running_server(settings) as server:
            for load in loads.values():
                generator.run(server.port, load, options.warmup)
            for _ in range(options.rounds):
                for name, load in loads.items():
                    results[name].append(generator.measure(server, load, options.seconds))
        return results


def add_load_options(
    parser: argparse.ArgumentParser,
    *,
    connections: int = 16,
    seconds: float = 4.0,
    warmup: float = 1.0,
    contacts: int = 300,
) -> None:
    """The options every benchmark against a running server takes: the load and its rounds,
    and how many contacts the fresh database holds."""
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--connections", type=int, default=connections)
    parser.add_argument("--seconds", type=float, default=seconds, help="per measurement")
    parser.add_argument("--warmup", type=float, default=warmup, help="seconds per endpoint")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best counts")
    parser.add_argument("--contacts", type=int, default=contacts)


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engines", default=",".join(ENGINES))


def chosen_engines(parser: argparse.ArgumentParser, options: argparse.Namespace) -> list[str]:
    """``--engines`` as a list, refusing an engine the benchmarks do not know."""
    engines = [engine.strip() for engine in options.engines.split(",") if engine.strip()]
    if set(engines) - set(ENGINES):
        parser.error(f"--engines takes {', '.join(ENGINES)}")
    return engines


def webhook_main(bench: WebhookBench, description: str, argv: list[str] | None = None) -> int:
    """The command line of a webhook benchmark: options, measurements, the ratio table; exits
    1 when a ratio misses the target."""
    parser = argparse.ArgumentParser(description=description)
    add_engine_option(parser)
    add_load_options(parser)
    options = parser.parse_args(argv)
    engines = chosen_engines(parser, options)
    generator = load_generator(options.generator, options.connections)

    print(f"Kith {bench.title} benchmark, {dt.date.today().isoformat()}")
    print(f"  machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, `kith serve`")
    print(f"  load generator: {generator.describe()}")
    print(
        f"  {options.rounds} round(s) of {options.seconds:g} s per endpoint after "
        f"{options.warmup:g} s warm-up; best round counts"
    )
    print()
    table = []
    missed = False
    for engine in engines:
        print(f"  measuring {engine} ...", file=sys.stderr, flush=True)
        results = measure_webhooks(bench, engine, generator, options)
        if isinstance(results, str):
            table.append([engine, "-", "-", "-", "-", results])
            continue
        health = max(m.per_second for m in results["health"])
        for name, rounds in results.items():
            if name == "health":
                continue
            rate = max(m.per_second for m in rounds)
            ratio = rate / health if health else 0.0
            failures = sum(m.failures for m in rounds)
            verdict = "ok" if ratio >= bench.target else "MISSED"
            missed = missed or ratio < bench.target
            table.append(
                [
                    engine,
                    name,
                    fmt_rate(rate),
                    fmt_rate(health),
                    f"{ratio:.3f}",
                    verdict + (f" ({failures} failed requests)" if failures else ""),
                ]
            )
    print_table(
        ["engine", "webhook", f"{bench.unit}/s", "health/s", "ratio", f"target >= {bench.target}"],
        table,
    )
    return 1 if missed else 0
