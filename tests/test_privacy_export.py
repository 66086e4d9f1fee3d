"""Access and portability: the package validates against its own schema, holds every source
(plugins through the export hook) as JSON and CSV with a README for the person, is written in
flat memory for a subject with 10 k interactions, and is downloadable and audited."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import uuid
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from _privacy_subjects import (
    BODY,
    EMAIL,
    GIVEN,
    bulk_interactions,
    make_person,
    run_request,
)
from _privacy_workflow import cli_env, make_user, run_services
from kith.hookspecs import hookimpl
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.export import ExportBuilder, ExportService
from kith.runtime import Kith
from kith.subjects import ExportSection, Recipient


class Loyalty:
    """A plugin holding loyalty points about contacts; it answers the export hook."""

    def __init__(self) -> None:
        self.points: dict[uuid.UUID, int] = {}

    @hookimpl
    def kith_register_recipients(self, register: Any) -> None:
        register(
            Recipient(
                name="loyalty partner",
                description="The partner that runs the points scheme",
                country="CH",
                safeguards="adequacy decision",
            )
        )

    @hookimpl
    async def kith_subject_export(self, kith: Kith, contact_id: uuid.UUID) -> ExportSection:
        return ExportSection(
            source="loyalty",
            description="Your loyalty points",
            tables={
                "balances": [{"points": self.points.get(contact_id, 0), "tier": "gold"}],
                "history": [
                    {"change": 10, "reason": "signup", "at": "2026-01-01T00:00:00Z"},
                    {"change": -3, "reason": None, "at": "2026-02-01T00:00:00Z"},
                ],
            },
        )


LOYALTY = Loyalty()


@pytest.fixture
def kith_plugins() -> list[Any]:
    return [("loyalty", LOYALTY)]


def _documents(archive: zipfile.ZipFile) -> dict[str, Any]:
    return {
        name: json.loads(archive.read(name))
        for name in archive.namelist()
        if name.endswith(".json") and name != "schema.json"
    }


async def test_package_validates_against_its_schema_and_holds_plugin_data(
    kith: Kith, kith_client, kith_auth
) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=3, orders=1)
    LOYALTY.points[contact_id] = 42
    previewed, done = await run_request(kith, "access", contact_id, officer)
    assert done.state == "done" and previewed.preview is not None
    planned = {p.location: p.count for p in previewed.preview}
    assert planned["kith.json#interactions"] == 4 and planned["loyalty.json#history"] == 2

    headers = await kith_auth("compliance")
    response = await kith_client.get(f"/api/privacy/requests/{done.id}/package", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    assert {"README.txt", "schema.json", "kith.json", "loyalty.json", "kith.privacy.json"} <= names
    assert "webhooks.json" not in names  # the webhooks plugin holds nothing about them

    schema = json.loads(archive.read("schema.json"))
    jsonschema.Draft202012Validator.check_schema(schema)
    documents = _documents(archive)
    jsonschema.validate(documents, schema, cls=jsonschema.Draft202012Validator)
    # The schema is strict: a document with an unexpected member does not validate.
    broken = json.loads(json.dumps(documents))
    broken["kith.json"]["tables"]["contact"][0]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft202012Validator)

    kith_doc = documents["kith.json"]
    assert kith_doc["subject"] == {"contact_id": str(contact_id)}
    assert kith_doc["tables"]["contact"][0]["given_name"] == GIVEN
    assert EMAIL.lower() in {p["value"] for p in kith_doc["tables"]["contact_points"]}
    assert len(kith_doc["tables"]["interactions"]) == 4
    assert documents["loyalty.json"]["tables"]["balances"] == [{"points": 42, "tier": "gold"}]

    # CSV copies of every table.
    rows = list(csv.DictReader(io.StringIO(archive.read("csv/kith/interactions.csv").decode())))
    assert len(rows) == 4 and {r["kind"] for r in rows} == {"note", "order"}
    assert BODY in {r["body"] for r in rows}
    assert "csv/loyalty/history.csv" in names and "csv/kith.privacy/subject_requests.csv" in names

    # The README for the person: files, purposes, recipients, retention, sources, rights.
    readme = archive.read("README.txt").decode()
    for expected in (
        "kith.json",
        "loyalty.json",
        "schema.json",
        "customer_relationship",
        "legitimate interests",
        "loyalty partner",
        "CH, safeguards: adequacy decision",
        "HOW LONG WE KEEP IT",
        "10 years",
        "interaction: onec",
        "contact: api",
        "Art. 77",
    ):
        assert expected in readme, expected

    # The certificate names every file and the package's checksum, and the export is audited.
    assert done.outcome is not None
    package = next(e for e in done.outcome if e.method == "export_package")
    assert package.detail == f"sha256 {__import__('hashlib').sha256(response.content).hexdigest()}"
    assert any(e.location == "loyalty.json#balances" for e in done.outcome)
    actions = [e.action for e in await AuditLog(kith).entries(contact_id)]
    assert "export" in actions

    # Agents may not download packages.
    agent = await kith_auth("agent")
    refused = await kith_client.get(f"/api/privacy/requests/{done.id}/package", headers=agent)
    assert refused.status_code == 403


async def test_a_package_lists_the_request_it_answers_as_answering(kith: Kith) -> None:
    officer = await make_user(kith)
    contact_id = await make_person(kith, notes=0, orders=0)
    _, earlier = await run_request(kith, "access", contact_id, officer)
    _, done = await run_request(kith, "portability", contact_id, officer)
    package = await ExportService(kith).for_request(done.id)
    assert package is not None
    readable = b"".join(await ExportService(kith).hand_out(package))
    with zipfile.ZipFile(io.BytesIO(readable)) as archive:
        requests = _documents(archive)["kith.privacy.json"]["tables"]["subject_requests"]
        rows = list(
            csv.DictReader(
                io.StringIO(archive.read("csv/kith.privacy/subject_requests.csv").decode())
            )
        )
        readme = archive.read("README.txt").decode()
    states = {row["id"]: (row["type"], row["state"]) for row in requests}
    # The earlier request is done; the one this package answers is not "running" to the person.
    assert states == {
        str(earlier.id): ("access", "done"),
        str(done.id): ("portability", "answering"),
    }
    assert {(row["id"], row["state"]) for row in rows} == {
        (str(earlier.id), "done"),
        (str(done.id), "answering"),
    }
    assert "the one this package answers is listed as answering" in readme
    # Outside a request's package, the state is the request's own.
    section = await kith.plugins.call_one(
        "privacy.requests", "kith_subject_export", kith=kith, contact_id=contact_id
    )
    assert {row["state"] for row in section.tables["subject_requests"]} == {"done"}


async def test_ten_thousand_interactions_are_exported_in_flat_memory(
    kith: Kith, tmp_path: Path
) -> None:
    contact_id = await make_person(kith, notes=0, orders=0)
    await bulk_interactions(kith, contact_id, 10_000)
    small_id = await make_person(kith, notes=0, orders=0, name_suffix=" small")
    await bulk_interactions(kith, small_id, 500)

    async def peak(subject: uuid.UUID, target: Path) -> int:
        tracemalloc.start()
        try:
            await ExportBuilder(kith, subject).write(target)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small = await peak(small_id, tmp_path / "small.zip")
    large = await peak(contact_id, tmp_path / "large.zip")
    # Twenty times the rows, about the same memory: pages, not the whole timeline.
    assert large < small + 4_000_000, (small, large)
    assert large < 16_000_000, large
    with zipfile.ZipFile(tmp_path / "large.zip") as archive:
        document = json.loads(archive.read("kith.json"))
        assert len(document["tables"]["interactions"]) == 10_000
        lines = archive.read("csv/kith/interactions.csv").decode().count("\n")
        assert lines == 10_001


def test_cli_exports_a_contact(kith_database_url: str, tmp_path: Path) -> None:
    from kith.cli import main

    home = tmp_path / "kith-home"
    runner, env = cli_env(kith_database_url, home)
    contact_id = run_services(env, lambda kith: make_person(kith, notes=1, orders=0))
    target = tmp_path / "out.zip"
    result = runner.invoke(main, ["privacy", "export", str(contact_id), "-o", str(target)], env=env)
    assert result.exit_code == 0, result.output
    assert "kith.json: contact 1, contact_points 3, interactions 1" in result.output
    with zipfile.ZipFile(target) as archive:
        assert "README.txt" in archive.namelist()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    packages = run_services(env, lambda kith: ExportService(kith).prune())
    assert packages == 0  # young packages stay
