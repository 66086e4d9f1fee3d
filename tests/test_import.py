"""CSV import: files from spreadsheets and other CRMs (UTF-8 with or without BOM, windows-1251;
comma, semicolon or tab; Russian headers) become contacts with their organizations, tags and
custom fields; invalid, duplicate and suppressed rows are counted and listed in the error file
without stopping the others; a dry run stores nothing; an import killed with SIGKILL and run
again ends with exact counts and no duplicates; uploads over the API run as jobs; interaction
history imports once however often it is run. Every personal value is stored encrypted."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from _privacy_subjects import stored_bytes
from kith.bootstrap import open_kith
from kith.csv_reading import inspect
from kith.events import utcnow
from kith.import_mapping import parse_mapping, resolve
from kith.privacy.encryption.tables import DataKey
from kith.privacy.rights.suppression import SuppressionList
from kith.runtime import Kith
from kith.schemas import ContactCreate, EmailIn, FieldCreate, PhoneIn
from kith.services.contacts import ContactService
from kith.services.fields import FieldService
from kith.services.imports import ImportService
from kith.settings import Settings
from kith.tables import (
    Contact,
    ContactPoint,
    CustomFieldValue,
    ImportJob,
    Interaction,
    NameIndexState,
)
from kith.testing import TokenFactory, settings_for

T = TypeVar("T")
KITH = str(Path(sys.executable).with_name("kith"))

RUSSIAN_HEADER = ["Фамилия", "Имя", "Отчество", "Эл. почта", "Телефон", "Организация", "Теги"]
RUSSIAN_ROWS = [
    [
        "Шапошникова",
        "Ульяна",
        "Игоревна",
        "ulyana@shaposhnikova.example",
        "+7 912 345-67-89",
        "Ромашка",
        "vip, опт",
    ],
    ["Квасников", "Ерофей", "", "erofey@kvasnikov.example", "", "Ромашка", ""],
    ["Зябликов", "Платон", "", "not-an-address", "", "", ""],
    ["Шапошникова", "Уля", "", "ULYANA@shaposhnikova.example", "", "", ""],
]


def write_csv(path: Path, rows: list[list[str]], encoding: str, delimiter: str) -> Path:
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(text.getvalue().encode(encoding))
    return path


async def import_file(kith: Kith, path: Path, kind: str = "contacts", **options: Any) -> Any:
    service = ImportService(kith)
    mapping = options.pop("mapping", None)
    job = await service.create(kind, path, mapping=mapping, **options)
    return await service.run(job.id)


async def count(table: Any) -> int:
    return int(await table.count())


# -- reading files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [
        ("utf-8", ","),
        ("utf-8-sig", ";"),
        ("cp1251", ";"),
        ("cp1251", "\t"),
        ("utf-8", "\t"),
        ("utf-16", "\t"),
    ],
)
def test_encoding_and_delimiter_are_detected(tmp_path: Path, encoding: str, delimiter: str) -> None:
    path = write_csv(tmp_path / "in.csv", [RUSSIAN_HEADER, *RUSSIAN_ROWS], encoding, delimiter)
    facts = inspect(path)
    assert facts.format.encoding == encoding
    assert facts.format.delimiter == delimiter
    assert facts.header == RUSSIAN_HEADER
    assert facts.records == len(RUSSIAN_ROWS)


def test_a_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    from kith.csv_reading import CsvError

    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    with pytest.raises(CsvError, match="not text"):
        inspect(path)


async def test_a_row_holding_a_nul_character_is_invalid(kith: Kith, tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_bytes(b"Name,Email\r\nBad\x00Name,a@example.org\r\nGood,b@example.org\r\n")
    job = await import_file(kith, path)
    assert (job.imported, job.invalid) == (1, 1)


def test_headers_map_by_english_and_russian_names_and_custom_fields() -> None:
    header = ["E-mail", "Телефон рабочий", "Full name", "Company", "Отрасль", "Notes", "Email 2"]
    mapped = resolve(header, "contacts", [("industry", "Отрасль")], {})
    assert mapped == {
        0: "email",
        1: "phone",
        2: "name",
        3: "organization",
        4: "field.industry",
        6: "email",
    }
    overridden = resolve(
        header,
        "contacts",
        [],
        parse_mapping('[columns]\n"Notes" = "name"\n"Full name" = "ignore"').columns,
    )
    assert overridden[5] == "name" and 2 not in overridden


# -- importing contacts --------------------------------------------------------------------


async def test_contacts_import_from_a_windows_1251_file_with_russian_headers(
    kith: Kith, kith_engine: str, tmp_path: Path
) -> None:
    await FieldService(kith).add(FieldCreate(name="industry", type="text", label="Отрасль"))
    rows = [[*RUSSIAN_HEADER, "Отрасль"]] + [[*row, "розница"] for row in RUSSIAN_ROWS]
    path = write_csv(tmp_path / "crm.csv", rows, "cp1251", ";")
    job = await import_file(kith, path)
    assert (job.state, job.total, job.imported, job.invalid, job.duplicate) == ("done", 4, 2, 1, 1)
    contacts = ContactService(kith)
    people = (await contacts.list(limit=50)).items
    by_name = {c.name: c for c in people}
    assert set(by_name) == {"Ульяна Игоревна Шапошникова", "Ерофей Квасников", "Ромашка"}
    ulyana = by_name["Ульяна Игоревна Шапошникова"]
    assert (ulyana.given_name, ulyana.family_name) == ("Ульяна", "Шапошникова")
    assert [e.address for e in ulyana.emails] == ["ulyana@shaposhnikova.example"]
    assert [p.number for p in ulyana.phones] == ["+79123456789"]
    assert ulyana.tags == ["vip", "опт"]
    assert ulyana.fields == {"industry": "розница"}
    assert ulyana.source == f"import:{job.id}"
    # A fresh installation's first contacts, imported, are found by a name search.
    assert [c.id for c in (await contacts.list(q="шапош ульян")).items] == [ulyana.id]
    assert await NameIndexState.count() == 1
    # One organization, created once and linked to both people.
    org = by_name["Ромашка"]
    assert org.kind == "organization"
    assert ulyana.organization_id == by_name["Ерофей Квасников"].organization_id == org.id
    # Names, emails and phones are encrypted where they are stored.
    stored = stored_bytes(kith, kith_engine).lower()
    for needle in ("Шапошникова", "Квасников", "ulyana@shaposhnikova", "79123456789"):
        assert needle.lower().encode() not in stored, needle


async def test_utf8_bom_and_tab_files_import_alike(kith: Kith, tmp_path: Path) -> None:
    header = ["Name", "Email", "Phone"]
    bom = write_csv(
        tmp_path / "bom.csv",
        [header, ["Agafya Tikhonova", "agafya@example.org", "+44 20 7946 0001"]],
        "utf-8-sig",
        ",",
    )
    tab = write_csv(
        tmp_path / "tab.tsv",
        [["Фамилия", "Имя", "E-mail"], ["Тихонов", "Лука", "luka@example.org"]],
        "utf-8",
        "\t",
    )
    assert (await import_file(kith, bom)).imported == 1
    assert (await import_file(kith, tab)).imported == 1
    names = sorted(c.name for c in (await ContactService(kith).list()).items)
    assert names == ["Agafya Tikhonova", "Лука Тихонов"]


async def test_error_file_lists_each_rejected_row_with_its_line_reason_and_columns(
    kith: Kith, tmp_path: Path
) -> None:
    rows = [
        ["Name", "Email", "Phone"],
        ["Good One", "good@example.org", ""],
        ["Bad Email", "nope", ""],
        ["", "nameless@example.org", ""],
        ["Bad Phone", "", "12"],
        ["Twin Of Good", "GOOD@example.org", ""],
    ]
    path = write_csv(tmp_path / "mixed.csv", rows, "utf-8", ",")
    job = await import_file(kith, path)
    assert (job.imported, job.invalid, job.duplicate, job.rejected) == (1, 3, 1, 4)
    errors = await ImportService(kith).error_file(job.id)
    written = list(csv.reader(io.StringIO(errors.read_text(encoding="utf-8-sig"))))
    assert written[0] == ["line", "reason", "Name", "Email", "Phone"]
    assert [row[0] for row in written[1:]] == ["3", "4", "5", "6"]
    assert [row[2:] for row in written[1:]] == rows[2:]
    reasons = [row[1] for row in written[1:]]
    assert "not a valid email address" in reasons[0]
    assert "needs a name" in reasons[1]
    assert "phone number" in reasons[2]
    assert reasons[3].startswith("duplicate") and "line 2" in reasons[3]


async def test_a_dry_run_counts_and_changes_nothing(kith: Kith, tmp_path: Path) -> None:
    await ContactService(kith).create(
        ContactCreate(name="Existing", emails=[EmailIn("erofey@kvasnikov.example")])
    )
    await SuppressionList(kith).add("email", "zinaida@erased.example", "erasure")
    rows = [
        RUSSIAN_HEADER,
        *RUSSIAN_ROWS,
        ["Erased", "Zinaida", "", "zinaida@erased.example", "", "", ""],
    ]
    path = write_csv(tmp_path / "crm.csv", rows, "cp1251", ";")
    tables = (Contact, ContactPoint, ImportJob, Interaction, CustomFieldValue)
    before = [await count(t) for t in tables]
    errors = tmp_path / "would-fail.csv"
    report = await ImportService(kith).dry_run("contacts", path, error_path=errors)
    assert (report.total, report.valid, report.invalid, report.duplicate, report.suppressed) == (
        5,
        1,
        1,
        2,
        1,
    )
    assert [await count(t) for t in tables] == before
    assert len(errors.read_text(encoding="utf-8-sig").splitlines()) == 1 + 4


async def test_a_dry_run_finds_repeats_of_rows_many_batches_earlier(
    kith: Kith, tmp_path: Path
) -> None:
    # The digests of the values seen are kept between batches (on disk, not in memory).
    rows: list[list[str]] = [["Name", "Email", "Phone"]]
    rows += [[f"Person {n}", f"person{n}@example.org", ""] for n in range(1, 1201)]
    rows.append(["Repeat By Email", "PERSON7@example.org", ""])
    rows.append(["First Phone", "", "+7 912 345-67-89"])
    rows.append(["Repeat By Phone", "", "+7 (912) 3456789"])
    path = write_csv(tmp_path / "long.csv", rows, "utf-8", ",")
    errors = tmp_path / "would-fail.csv"
    report = await ImportService(kith).dry_run("contacts", path, error_path=errors)
    assert (report.total, report.valid, report.duplicate, report.invalid) == (1203, 1201, 2, 0)
    rejected = list(csv.reader(io.StringIO(errors.read_text(encoding="utf-8-sig"))))[1:]
    assert [(line, name) for line, _reason, name, *_ in rejected] == [
        ("1202", "Repeat By Email"),
        ("1204", "Repeat By Phone"),
    ]
    assert await count(Contact) == 0


async def test_a_suppressed_email_is_not_imported(kith: Kith, tmp_path: Path) -> None:
    await SuppressionList(kith).add("email", "zinaida@erased.example", "erasure")
    rows = [
        ["Name", "Email"],
        ["Zinaida Erased", "Zinaida@Erased.example"],
        ["Kept Person", "kept@example.org"],
    ]
    job = await import_file(kith, write_csv(tmp_path / "s.csv", rows, "utf-8", ","))
    assert (job.imported, job.suppressed, job.invalid) == (1, 1, 0)
    assert [c.name for c in (await ContactService(kith).list()).items] == ["Kept Person"]
    errors = (await ImportService(kith).error_file(job.id)).read_text(encoding="utf-8-sig")
    assert "asked to be erased" in errors


async def test_duplicates_within_the_file_and_of_stored_contacts_are_skipped(
    kith: Kith, tmp_path: Path
) -> None:
    stored = await ContactService(kith).create(
        ContactCreate(name="Stored", phones=[PhoneIn("+44 20 7946 0002")])
    )
    rows = [["Name", "Email", "Phone"]]
    rows += [[f"Person {i}", f"p{i}@example.org", ""] for i in range(7)]
    rows += [["Same Phone", "other@example.org", "020 7946 0002"]]
    # A repeat of a row committed in an earlier batch (batches of 3), and one in the same batch.
    rows += [["Person 1 again", "P1@example.org", ""], ["Person 8", "p8@example.org", ""]]
    rows += [["Person 8 again", "p8@example.org", ""]]
    job = await import_file(kith, write_csv(tmp_path / "d.csv", rows, "utf-8", ","), batch_size=3)
    assert (job.imported, job.duplicate) == (8, 3)
    errors = (await ImportService(kith).error_file(job.id)).read_text(encoding="utf-8-sig")
    assert f"contact {stored.id} has this phone" in errors
    # Running the same file again (a new import) adds nothing: every row is a duplicate.
    again = await import_file(kith, write_csv(tmp_path / "d.csv", rows, "utf-8", ","))
    assert (again.imported, again.duplicate) == (0, 11)
    assert await count(Contact) == 9
    assert await count(ContactPoint) == 9


async def test_a_file_without_a_name_column_is_refused_clearly(kith: Kith, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", [["Foo", "Bar"], ["1", "2"]], "utf-8", ",")
    from kith.errors import InvalidInput

    with pytest.raises(InvalidInput, match="no column of the file holds a name"):
        await ImportService(kith).create("contacts", path)
    assert await count(ImportJob) == 0


# -- interactions ------------------------------------------------------------------------


async def test_interaction_history_imports_once(kith: Kith, tmp_path: Path) -> None:
    contacts = ContactService(kith)
    anna = await contacts.create(ContactCreate(name="Anna", emails=[EmailIn("anna@example.org")]))
    boris = await contacts.create(ContactCreate(name="Boris", phones=[PhoneIn("+7 495 123-45-67")]))
    rows = [
        ["ID", "Дата", "Тип", "Направление", "Тема", "Эл. почта", "Телефон", "Длительность"],
        [
            "c-1",
            "01.12.2026 10:30",
            "Звонок",
            "входящий",
            "Asked for a quote",
            "",
            "+74951234567",
            "1:35",
        ],
        ["c-2", "2026-12-02 11:00", "note", "", "Sent the quote", "anna@example.org", "", ""],
        ["c-3", "2026-12-03", "meeting", "", "Nobody", "ghost@example.org", "", ""],
        # No external id: the file and the line stand for one.
        ["", "2026-12-04", "note", "", "No id", "anna@example.org", "", ""],
    ]
    path = write_csv(tmp_path / "history.csv", rows, "utf-8", ";")
    mapping = parse_mapping('source = "old-crm"')
    first = await import_file(kith, path, "interactions", mapping=mapping)
    assert (first.imported, first.invalid, first.duplicate) == (3, 1, 0)
    checked = await ImportService(kith).dry_run("interactions", path, mapping)
    assert (checked.valid, checked.invalid, checked.duplicate) == (0, 1, 3)
    again = await import_file(kith, path, "interactions", mapping=mapping)
    assert (again.imported, again.invalid, again.duplicate) == (0, 1, 3)
    stored = await Interaction.select().order_by(Interaction.occurred_at)
    call = stored[0]
    assert (call["contact"], call["kind"], call["direction"], call["duration_s"]) == (
        boris.id,
        "call",
        "inbound",
        95,
    )
    assert (call["source"], call["external_id"]) == ("old-crm", "c-1")
    assert {row["contact"] for row in stored[1:]} == {anna.id}


# -- the API ------------------------------------------------------------------------------


async def _finished(client: httpx.AsyncClient, location: str, headers: dict[str, str]) -> Any:
    for _ in range(400):
        job = (await client.get(location, headers=headers)).json()
        if job["state"] in ("done", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"the import did not finish: {job}")


async def test_an_upload_becomes_a_job_with_progress_counts_and_errors(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory, tmp_path: Path
) -> None:
    admin = await kith_auth("admin")
    path = write_csv(tmp_path / "crm.csv", [RUSSIAN_HEADER, *RUSSIAN_ROWS], "cp1251", ";")
    agent = await kith_auth("agent")
    refused = await kith_client.post(
        "/api/imports", files={"file": ("crm.csv", path.read_bytes(), "text/csv")}, headers=agent
    )
    assert refused.status_code == 403

    accepted = await kith_client.post(
        "/api/imports",
        files={"file": ("crm.csv", path.read_bytes(), "text/csv")},
        headers=admin,
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["total"] == 4 and accepted.json()["file_name"] == "crm.csv"
    job = await _finished(kith_client, accepted.headers["location"], admin)
    assert (job["state"], job["processed"], job["progress"]) == ("done", 4, 1.0)
    assert (job["imported"], job["invalid"], job["duplicate"], job["suppressed"]) == (2, 1, 1, 0)
    assert job["columns"]["Эл. почта"] == "email"
    errors = await kith_client.get(f"/api/imports/{job['id']}/errors.csv", headers=admin)
    assert errors.status_code == 200
    assert errors.headers["content-type"].startswith("text/csv")
    lines = errors.content.decode("utf-8-sig").splitlines()
    assert [line.split(";")[0] for line in lines] == ["line", "4", "5"]
    # The uploaded file is not kept once its rows are in the database.
    assert not list((kith.settings.home / "imports").glob("*[0-9a-f].csv"))

    # The CSV as the body, with a dry run: counts at once, nothing stored.
    dry = await kith_client.post(
        "/api/imports?dry_run=true",
        content=path.read_bytes(),
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert dry.status_code == 200, dry.text
    assert (dry.json()["valid"], dry.json()["duplicate"]) == (0, 3)
    assert len((await kith_client.get("/api/imports", headers=admin)).json()) == 1


async def test_bad_uploads_are_refused_with_problems(
    kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    admin = await kith_auth("admin")
    for response, status in [
        (await kith_client.post("/api/imports", json={"a": 1}, headers=admin), 415),
        (
            await kith_client.post(
                "/api/imports", content=b"", headers={**admin, "Content-Type": "text/csv"}
            ),
            422,
        ),
        (
            await kith_client.post(
                "/api/imports",
                content=b"Foo,Bar\n1,2\n",
                headers={**admin, "Content-Type": "text/csv"},
            ),
            422,
        ),
        (
            await kith_client.post(
                "/api/imports?mapping=%7Bnot",
                content=b"Name\nX\n",
                headers={**admin, "Content-Type": "text/csv"},
            ),
            422,
        ),
        (await kith_client.get(f"/api/imports/{uuid.uuid4()}", headers=admin), 404),
    ]:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"


# -- SIGKILL and resume -------------------------------------------------------------------


def _run(settings: Settings, work: Callable[[Kith], Awaitable[T]]) -> T:
    async def go() -> T:
        kith = open_kith(settings)
        await kith.start()
        try:
            return await work(kith)
        finally:
            await kith.close()

    return asyncio.run(go())


async def _progress(kith: Kith) -> int:
    row = await ImportJob.select(ImportJob.rows_done).first()
    return int(row["rows_done"]) if row else 0


async def _state(kith: Kith) -> dict[str, Any]:
    jobs = await ImportJob.select()
    emails = await ContactPoint.select(ContactPoint.lookup).where(ContactPoint.kind == "email")
    return {
        "jobs": [(j["state"], j["imported"], j["duplicate"], j["invalid"]) for j in jobs],
        "contacts": await count(Contact),
        "emails": len(emails),
        "distinct_emails": len({e["lookup"] for e in emails}),
    }


def test_an_import_killed_with_sigkill_resumes_with_exact_counts(
    kith_database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "kith-home"
    settings = settings_for(home, kith_database_url)
    rows = [["Фамилия", "Имя", "Эл. почта"]]
    total = 3000
    for i in range(total):
        rows.append([f"Фамилия{i}", f"Имя{i}", f"person{i}@example.org"])
    # Every 100th row repeats an earlier one; every 250th is invalid.
    for i in range(100, total, 100):
        rows[i + 1][2] = f"person{i - 50}@example.org"
    for i in range(125, total, 250):
        rows[i + 1][2] = "broken"
    path = write_csv(tmp_path / "big.csv", rows, "cp1251", ";")
    env = {**os.environ, "KITH_HOME": str(home), "KITH_DATABASE_URL": kith_database_url}
    process = subprocess.Popen(
        [KITH, "import", "contacts", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    async def kill_past_1000_rows() -> None:
        # One Kith for the whole watch: opening one per look took longer than the rest of the
        # import on a fast machine, which then finished before it was killed.
        kith = open_kith(settings)
        await kith.start()
        try:
            deadline = time.monotonic() + 120
            while await _progress(kith) < 1000:
                assert process.poll() is None, "the import ended before it could be killed"
                assert time.monotonic() < deadline, "the import made no progress"
                await asyncio.sleep(0.02)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            await kith.close()

    try:
        asyncio.run(kill_past_1000_rows())
    finally:
        process.wait()
    killed = _run(settings, _state)
    assert killed["jobs"][0][0] == "running"
    assert killed["contacts"] < total

    rerun = subprocess.run(
        [KITH, "import", "contacts", str(path)], env=env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "Resuming import" in rerun.stderr
    duplicates, invalid = 29, 12
    expected = total - duplicates - invalid
    final = _run(settings, _state)
    assert final["jobs"] == [("done", expected, duplicates, invalid)]
    assert final["contacts"] == final["emails"] == final["distinct_emails"] == expected


def test_kith_import_dry_run_and_errors_option(kith_database_url: str, tmp_path: Path) -> None:
    home = tmp_path / "kith-home"
    path = write_csv(tmp_path / "crm.csv", [RUSSIAN_HEADER, *RUSSIAN_ROWS], "cp1251", ";")
    env = {**os.environ, "KITH_HOME": str(home), "KITH_DATABASE_URL": kith_database_url}
    errors = tmp_path / "rejected.csv"
    dry = subprocess.run(
        [KITH, "import", "contacts", str(path), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stderr
    assert "2 valid, 1 invalid, 1 duplicates, 0 suppressed" in dry.stdout
    assert "Nothing was stored" in dry.stdout
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[columns]\n"Организация" = "ignore"\n"Теги" = "field.nope"\n', "utf-8")
    refused = subprocess.run(
        [KITH, "import", "contacts", str(path), "--dry-run", "--mapping", str(mapping)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert "no custom field of that name" in refused.stderr
    mapping.write_text('[columns]\n"Организация" = "ignore"\n', "utf-8")
    mapped = subprocess.run(
        [KITH, "import", "contacts", str(path), "--dry-run", "--mapping", str(mapping)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert mapped.returncode == 0, mapped.stderr
    assert "Ignored columns (map them in a mapping file): Организация" in mapped.stderr
    done = subprocess.run(
        [KITH, "import", "contacts", str(path), "--errors", str(errors)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "2 imported, 1 invalid, 1 duplicates" in done.stdout
    assert len(errors.read_text(encoding="utf-8-sig").splitlines()) == 3
    missing = subprocess.run(
        [KITH, "import", "resume", str(uuid.uuid4())], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 1 and missing.stderr.startswith("kith: import ")


async def test_a_row_repeating_a_refused_row_is_imported(kith: Kith, tmp_path: Path) -> None:
    await FieldService(kith).add(FieldCreate(name="employees", type="number"))
    rows = [
        ["Name", "Email", "Employees"],
        ["First Try", "twin@example.org", "many"],
        ["Second Try", "twin@example.org", "12"],
        ["Third Try", "twin@example.org", "13"],
    ]
    job = await import_file(kith, write_csv(tmp_path / "t.csv", rows, "utf-8", ","))
    assert (job.imported, job.invalid, job.duplicate) == (1, 1, 1)
    [contact] = (await ContactService(kith).list()).items
    assert (contact.name, contact.fields) == ("Second Try", {"employees": 12})


def test_large_files_parse_alike_in_a_worker_process() -> None:
    from kith.import_parsing import BatchParser
    from kith.import_rows import RowSpec

    spec = RowSpec(columns={0: "name", 1: "email", 2: "phone"}, region="RU", source="test")
    records = [
        (n + 2, [f"Person {n}", f"p{n}@example.org", f"8 912 000-{n:02d}-00"]) for n in range(40)
    ]
    records.append((42, ["Broken", "nope", ""]))

    async def parse(pooled: bool) -> list[Any]:
        parser = BatchParser("contacts", spec, pooled=pooled)
        try:
            return [rows async for _, rows in parser.parsed(iter(records), 7)]
        finally:
            parser.close()

    in_process, pooled = asyncio.run(parse(False)), asyncio.run(parse(True))
    assert pooled == in_process
    assert in_process[0][0].keys == [("email", "p0@example.org"), ("phone", "+79120000000")]
    assert in_process[-1][-1] == (
        42,
        "'nope' is not a valid email address: An email address must have an @-sign.",
    )


async def test_imports_whose_process_stopped_are_resumed_by_the_worker(
    kith: Kith, tmp_path: Path
) -> None:
    service = ImportService(kith)
    rows = [["Name", "Email"]] + [[f"Person {n}", f"p{n}@example.org"] for n in range(5)]
    stopped = await service.create("contacts", write_csv(tmp_path / "w.csv", rows, "utf-8", ","))
    fresh = await service.create("contacts", write_csv(tmp_path / "x.csv", rows[:2], "utf-8", ","))
    # A process on another machine took the first, then stopped renewing its lease.
    await (
        ImportJob.update(
            {
                ImportJob.state: "running",
                ImportJob.lease_owner: "elsewhere:1:gone",
                ImportJob.lease_until: utcnow() - dt.timedelta(seconds=1),
            }
        )
        .where(ImportJob.id == stopped.id)
        .run()
    )
    assert await service.resume_stopped() == [stopped.id]
    done = await service.get(stopped.id)
    assert (done.state, done.imported, done.processed) == ("done", 5, 5)
    # The other is pending, created a moment ago: the process that made it starts it.
    assert (await service.get(fresh.id)).state == "pending"
    assert await count(Contact) == 5


async def test_people_are_linked_to_organizations_already_stored(
    kith: Kith, tmp_path: Path
) -> None:
    contacts = ContactService(kith)
    stored = await contacts.create(ContactCreate(kind="organization", name="Ромашка Трейд"))
    await contacts.create(ContactCreate(kind="organization", name="Ромашка"))
    await contacts.create(ContactCreate(name="Трейд Ромашкин"))
    rows = [
        ["Name", "Company"],
        ["Agafya Tikhonova", "ромашка  трейд"],
        ["Luka Tikhonov", "Ромашка Трейд"],
        ["Long Company", "Ромашка " * 40],
    ]
    job = await import_file(kith, write_csv(tmp_path / "o.csv", rows, "utf-8", ","))
    assert (job.imported, job.invalid) == (2, 1)
    errors = (await ImportService(kith).error_file(job.id)).read_text(encoding="utf-8-sig")
    assert "organization: the organization's name is not valid" in errors
    people = (await contacts.people(stored.id)).items
    assert sorted(p.name for p in people) == ["Agafya Tikhonova", "Luka Tikhonov"]
    assert await count(Contact) == 5


async def test_create_many_refuses_each_contact_as_create_would(kith: Kith) -> None:
    from kith.errors import Conflict, InvalidInput, KithError

    contacts = ContactService(kith)
    stored = await contacts.create(
        ContactCreate(name="Stored", emails=[EmailIn("held@example.org")])
    )
    await SuppressionList(kith).add("phone", "+442079460999", "erasure")
    person = await contacts.create(ContactCreate(name="A Person"))
    outcomes = await contacts.create_many(
        [
            ContactCreate(name="Fine", emails=[EmailIn("Fine@Example.org")], tags=[" a ", "a"]),
            ContactCreate(name="  "),
            ContactCreate(name="Takes a held email", emails=[EmailIn("held@example.org")]),
            ContactCreate(name="First", emails=[EmailIn("twice@example.org")]),
            ContactCreate(name="Second", emails=[EmailIn("twice@example.org")]),
            ContactCreate(name="Under a person", organization_id=person.id),
            ContactCreate(name="Erased", phones=[PhoneIn("020 7946 0999")]),
        ]
    )
    fine, nameless, held, first, second, under, erased = outcomes
    assert not isinstance(fine, KithError)
    assert (fine.emails[0].address, fine.tags) == ("fine@example.org", ["a"])
    assert isinstance(nameless, InvalidInput) and "needs a name" in nameless.detail
    assert isinstance(held, Conflict) and held.extra["existing_contact_id"] == str(stored.id)
    assert not isinstance(first, KithError)
    assert isinstance(second, Conflict)
    assert isinstance(under, InvalidInput) and "is a person" in under.detail
    assert isinstance(erased, Conflict) and "asked to be erased" in erased.detail
    # What was created reads back as created, one at a time or many at once.
    assert await contacts.get(fine.id) == fine
    assert [c.id for c in (await contacts.list(q="fin")).items] == [fine.id]
    assert await count(Contact) == 4


async def test_contacts_made_in_the_worker_process_read_back_and_are_found(
    kith: Kith, kith_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parsing worker makes the contacts' keys, encryptions, blind indexes and name tokens
    (on PostgreSQL they are written with COPY): what it made reads back, is found, and a
    duplicate's key made there is not stored."""
    import kith.services.imports as imports

    monkeypatch.setattr(imports, "POOL_MIN_RECORDS", 1)
    rows = [RUSSIAN_HEADER] + [
        ["Иванов", f"Юлий{n}", "", f"petr{n}@ivanov.example", f"+7 912 000-{n:02d}-11", "", ""]
        for n in range(30)
    ]
    rows.append(["Иванов", "Повтор", "", "PETR3@ivanov.example", "", "", ""])
    path = write_csv(tmp_path / "people.csv", rows, "cp1251", ";")
    service = ImportService(kith, parallel=True)
    job = await service.create("contacts", path, batch_size=8)
    job = await service.run(job.id)
    assert (job.imported, job.duplicate) == (30, 1)
    contacts = ContactService(kith)
    [found] = (await contacts.list(q="petr7@ivanov.example")).items
    assert (found.name, found.given_name, found.family_name) == ("Юлий7 Иванов", "Юлий7", "Иванов")
    assert [e.address for e in found.emails] == ["petr7@ivanov.example"]
    assert [p.number for p in found.phones] == ["+79120000711"]
    assert (await contacts.get(found.id)).name == "Юлий7 Иванов"
    assert [c.id for c in (await contacts.list(q="+7 912 000-07-11")).items] == [found.id]
    assert [c.id for c in (await contacts.list(q="иванов юлий7")).items] == [found.id]
    # One data key per contact stored: the duplicate's was dropped with it.
    assert await count(DataKey) == await count(Contact) == 30
    stored = stored_bytes(kith, kith_engine).lower()
    for needle in ("Иванов", "petr7@ivanov", "79120000711"):
        assert needle.lower().encode() not in stored, needle


async def test_keys_given_to_the_worker_do_not_show_in_their_repr(kith: Kith) -> None:
    import pickle

    from kith.import_digests import digest_keys

    keys = await digest_keys(kith)
    assert keys is not None and keys.sealer is not None
    index = kith.protector.index  # type: ignore[attr-defined]
    secrets = [index.kind_key("email"), keys.sealer.wrapper._key]
    shown = repr(keys) + repr(pickle.loads(pickle.dumps(keys)))
    for secret in secrets:
        assert secret.hex() not in shown and repr(secret) not in shown
    # What the worker computes with them is what this process computes.
    copied = pickle.loads(pickle.dumps(keys))
    assert copied.lookup("email", "a@b.example") == kith.protector.lookup_key(
        "email", "a@b.example"
    )
