"""Export packages at rest: stored sealed under a key the person's data key protects, so erasure
makes every copy unreadable; handed out readable (and audited) to those allowed; large CSVs
spooled inside KITH_HOME, encrypted, never in the system's temporary folder."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _privacy_subjects import EMAIL, GIVEN, found_needles, make_person, run_request
from _privacy_workflow import cli_env, make_user, run_services
from kith.hookspecs import hookimpl
from kith.privacy.encryption.sealed_stream import (
    CHUNK_BYTES,
    SealedFileError,
    SealedWriter,
    read_sealed,
)
from kith.privacy.rights import export
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.export import ExportService, PackageUnreadable, open_package
from kith.runtime import Kith
from kith.subjects import ExportSection, Row, RowPages

# A value only the probe plugin's rows hold, repeated past the spool's memory limit.
SPILLED = "Spilled-Value-Of-The-Subject"


def _open_files() -> Iterator[tuple[str, str]]:
    """(descriptor path, what it points at) for every file this process has open."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            yield f"/proc/self/fd/{fd}", os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue


class Probe:
    """A plugin whose export has a large table, then one whose pages look at the temporary
    files the export has open while the large table's CSV is spooled."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    @hookimpl
    async def kith_subject_export(self, kith: Kith, contact_id: uuid.UUID) -> ExportSection:
        async def look() -> AsyncIterator[list[Row]]:
            for descriptor, target in _open_files():
                if "(deleted)" in target or target.startswith(tempfile.gettempdir()):
                    try:
                        with open(descriptor, "rb") as handle:
                            self.seen.append((target, handle.read()))
                    except OSError:
                        continue
            yield [{"looked": True}]

        return ExportSection(
            source="probe",
            description="Rows of a plugin",
            tables={
                "large": [{"value": f"{SPILLED} {EMAIL} {i}"} for i in range(200)],
                "probe": RowPages(count=1, pages=look),
            },
        )


PROBE = Probe()


@pytest.fixture
def kith_plugins() -> list[Any]:
    PROBE.seen.clear()
    return [("probe", PROBE)]


async def test_packages_are_sealed_and_handed_out_readable(
    kith: Kith, kith_client, kith_auth
) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith)
    _, done = await run_request(kith, "access", contact_id, officer)
    package = await ExportService(kith).for_request(done.id)
    assert package is not None
    stored = Path(package.path)
    assert stored.name.endswith(".zip.sealed")
    assert oct(stored.stat().st_mode & 0o777) == "0o600"
    content = stored.read_bytes()
    assert not zipfile.is_zipfile(stored)
    assert found_needles(content, [GIVEN, EMAIL, SPILLED]) == []

    response = await kith_client.get(
        f"/api/privacy/requests/{done.id}/package", headers=await kith_auth("compliance")
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].endswith('.zip"')
    # The ZIP handed out is the one the request's size and checksum describe.
    assert hashlib.sha256(response.content).hexdigest() == package.sha256
    assert len(response.content) == package.size
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert GIVEN in archive.read("kith.json").decode()
        assert SPILLED in archive.read("csv/probe/large.csv").decode()
    actions = [e.action for e in await AuditLog(kith).entries(contact_id, limit=100)]
    assert "export_handed_out" in actions


async def test_after_erasure_no_copy_of_a_package_opens(kith: Kith, tmp_path: Path) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith, orders=0)
    _, done = await run_request(kith, "access", contact_id, officer)
    package = await ExportService(kith).for_request(done.id)
    assert package is not None
    # A copy left behind: a backup of KITH_HOME, a file restored later.
    backup = tmp_path / "backup" / Path(package.path).name
    backup.parent.mkdir()
    shutil.copyfile(package.path, backup)
    assert b"".join(await open_package(kith, backup, contact_id)).startswith(b"PK")

    _, erased = await run_request(kith, "erasure", contact_id, officer)
    assert erased.state == "done"
    assert not Path(package.path).exists()
    with pytest.raises(PackageUnreadable, match="erased"):
        await open_package(kith, backup, contact_id)
    assert await ExportService(kith).for_request(done.id) is None


async def test_a_changed_package_does_not_open(kith: Kith) -> None:
    contact_id = await make_person(kith, orders=0)
    package = await ExportService(kith).export(contact_id)
    path = Path(package.path)
    data = bytearray(path.read_bytes())
    data[-40] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(PackageUnreadable, match="changed or cut short"):
        b"".join(await ExportService(kith).hand_out(package))
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(PackageUnreadable):
        b"".join(await ExportService(kith).hand_out(package))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see open files")
async def test_large_csvs_spool_encrypted_inside_kith_home(
    kith: Kith, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "SPOOL_BYTES", 1024)
    contact_id = await make_person(kith, orders=0)
    package = await ExportService(kith).export(contact_id)

    spool_folder = str(kith.settings.home / "tmp")
    inside = [(target, data) for target, data in PROBE.seen if target.startswith(spool_folder)]
    assert inside, "the large table's CSV was not spooled to a file inside KITH_HOME/tmp"
    assert all(found_needles(data, [SPILLED, EMAIL]) == [] for _, data in inside)
    # Nothing the export had open elsewhere holds the person's values in readable form.
    for target, data in PROBE.seen:
        if target.startswith(tempfile.gettempdir()) and not target.startswith(
            str(kith.settings.home)
        ):
            assert found_needles(data, [SPILLED]) == [], target
    assert os.listdir(spool_folder) == []
    readable = b"".join(await ExportService(kith).hand_out(package))
    with zipfile.ZipFile(io.BytesIO(readable)) as archive:
        assert archive.read("csv/probe/large.csv").decode().count(SPILLED) == 200


def test_the_cli_writes_the_readable_zip_only_where_asked(
    kith_database_url: str, tmp_path: Path
) -> None:
    from kith.cli import main

    runner, env = cli_env(kith_database_url, tmp_path / "kith-home")
    contact_id = run_services(env, lambda kith: make_person(kith, notes=1, orders=0))
    stored = runner.invoke(main, ["privacy", "export", str(contact_id)], env=env)
    assert stored.exit_code == 0, stored.output
    assert ".zip.sealed (sealed" in stored.stdout
    sealed = next((tmp_path / "kith-home" / "exports").glob("*.zip.sealed"))
    assert not zipfile.is_zipfile(sealed)

    target = tmp_path / "out.zip"
    written = runner.invoke(
        main, ["privacy", "export", str(contact_id), "-o", str(target)], env=env
    )
    assert written.exit_code == 0, written.output
    with zipfile.ZipFile(target) as archive:
        assert GIVEN in archive.read("kith.json").decode()
    assert oct(target.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("size", [0, 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES])
def test_sealed_files_round_trip_and_refuse_a_missing_last_chunk(size: int) -> None:
    key, header = os.urandom(32), b"header"
    plain = os.urandom(size)
    sink = io.BytesIO()
    with SealedWriter(sink, key, header) as writer:
        writer.write(plain[:7])
        writer.write(plain[7:])
    stored = sink.getvalue()
    assert stored.startswith(header)

    def opened(data: bytes, key: bytes = key, header: bytes = header) -> bytes:
        source = io.BytesIO(data)
        source.read(len(header))
        return b"".join(read_sealed(source, key, header))

    assert opened(stored) == plain
    # Cut at a chunk's end: what is left must not pass for the whole file.
    for cut in range(len(header), len(stored), CHUNK_BYTES + 16):
        with pytest.raises(SealedFileError):
            opened(stored[:cut])
    with pytest.raises(SealedFileError):
        opened(stored, os.urandom(32))
    # The header is authenticated with every chunk.
    with pytest.raises(SealedFileError):
        opened(b"HEADER" + stored[len(header) :], header=b"HEADER")
