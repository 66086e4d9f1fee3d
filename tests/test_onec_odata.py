"""Two-way sync over 1C's OData interface (SQLite and PostgreSQL), against a stand-in 1C that
speaks OData over real HTTP on 127.0.0.1: paged JSON, DataVersion, DeletionMark, creating
and patching counterparties. Also the Art. 19 notices and ``kith onec status``."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec
import pytest
from _onec_helpers import contact_of
from _threaded_http import QuietHandler, base_url, close, serve
from kith import ContactCreate, ContactPatch, ContactService, EmailIn, Kith, PhoneIn, Recipient
from kith.plugins.onec import privacy
from kith.plugins.onec.odata import OdataSync
from kith.plugins.onec.tables import OnecConflict, OnecLink, OnecNotice
from kith.settings import Settings
from kith.testing import KithCli, settings_for

USER, PASSWORD = "kith", "odata-secret"
ENTITY = "Catalog_Контрагенты"
PREFIX = "/base/odata/standard.odata/"
PAGE_SIZE = 2


def _ref(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _record(n: int, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "Ref_Key": _ref(n),
        "DataVersion": "AAAAAQAAAAA=",
        "DeletionMark": False,
        "Description": name,
        "НаименованиеПолное": name,
        "ЮридическоеФизическоеЛицо": "ЮридическоеЛицо",
        "ИНН": "",
        "КПП": "",
        "КонтактнаяИнформация": [],
        **extra,
    }


@dataclass
class StandIn:
    """A 1C information base as its OData interface shows it."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    persons: list[dict[str, Any]] | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    def full_reads(self) -> int:
        return sum(1 for method, path in self.requests if method == "GET" and "(guid'" in path)

    def bump(self, ref: str, **changes: Any) -> None:
        record = self.records[ref]
        record.update(changes)
        record["DataVersion"] = base64.b64encode(uuid.uuid4().bytes[:8]).decode()


def _handler(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> tuple[str, str | None, dict[str, list[str]]] | None:
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self._answer(401, {"odata.error": {"message": {"value": "unauthorised"}}})
                return None
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            stand_in.requests.append((method, path))
            if not path.startswith(PREFIX):
                self._answer(404, {})
                return None
            name = path[len(PREFIX) :]
            match = re.fullmatch(r"(\w+)\(guid'([0-9a-f-]{36})'\)", name)
            if match:
                return match.group(1), match.group(2), parse_qs(parts.query)
            return name, None, parse_qs(parts.query)

        def do_GET(self) -> None:
            routed = self._route("GET")
            if routed is None:
                return
            entity, ref, query = routed
            if entity == "Catalog_КонтактныеЛицаПартнеров":
                if stand_in.persons is None:
                    self._answer(404, {})
                else:
                    self._answer(200, {"value": stand_in.persons})
                return
            if entity != ENTITY:
                self._answer(404, {})
                return
            if ref is not None:
                self._answer(200, stand_in.records[ref])
                return
            top = int(query.get("$top", ["1000"])[0])
            skip = int(query.get("$skip", ["0"])[0])
            rows = [stand_in.records[k] for k in sorted(stand_in.records)][skip : skip + top]
            if "$select" in query:
                keys = query["$select"][0].split(",")
                rows = [{k: r[k] for k in keys} for r in rows]
            self._answer(200, {"odata.metadata": "…", "value": rows})

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length", "0"))
            return dict(json.loads(self.rfile.read(length)))

        def do_POST(self) -> None:
            routed = self._route("POST")
            if routed is None:
                return
            record = self._body()
            ref = str(uuid.uuid4())
            record.update(Ref_Key=ref, DataVersion="AAAAAgAAAAA=", DeletionMark=False)
            stand_in.records[ref] = record
            self._answer(201, record)

        def do_PATCH(self) -> None:
            routed = self._route("PATCH")
            if routed is None:
                return
            _, ref, _ = routed
            assert ref is not None
            stand_in.bump(ref, **self._body())
            self._answer(200, stand_in.records[ref])

    return Handler


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    one_c = StandIn()
    server = serve(_handler(one_c))
    one_c.url = base_url(server) + PREFIX
    try:
        yield one_c
    finally:
        close(server)


@pytest.fixture
def kith_settings(stand_in: StandIn, kith_database_url: str, tmp_path: Path) -> Settings:
    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(
        f"""
[onec]
odata_url = "{stand_in.url}"
odata_user = "{USER}"
odata_page_size = {PAGE_SIZE}
""",
        encoding="utf-8",
    )
    # The password as an operator would give it: in the environment, not in kith.toml.
    return settings_for(home, kith_database_url, onec_odata_password=PASSWORD)


def _seed(stand_in: StandIn) -> None:
    phone = {
        "Тип": "Телефон",
        "Представление": "+7 495 111-22-33",
        "НомерТелефона": "+7 495 111-22-33",
    }
    email = {
        "Тип": "АдресЭлектроннойПочты",
        "Представление": "info@alfa.example",
        "АдресЭП": "info@alfa.example",
    }
    address = {
        "Тип": "Адрес",
        "Вид": "Юридический адрес",
        "Представление": "Москва, ул. Тверская, 1",
    }
    records = [
        _record(
            1,
            "ООО Альфа",
            ИНН="7701000001",
            КПП="770101001",
            КонтактнаяИнформация=[phone, email, address],
        ),
        _record(2, "ООО Бета", ИНН="7701000002"),
        _record(
            3, "Сидоров Пётр Ильич", ЮридическоеФизическоеЛицо="ФизическоеЛицо", ИНН="770100000003"
        ),
        _record(4, "ООО Гамма"),
        _record(5, "ООО Старая", DeletionMark=True),
    ]
    stand_in.records = {r["Ref_Key"]: r for r in records}


async def test_pull_pages_and_is_incremental_by_data_version(kith: Kith, stand_in: StandIn) -> None:
    _seed(stand_in)
    report = await OdataSync(kith).pull()
    assert report.read == 5
    assert report.counts.counterparties_created == 5
    assert report.counts.counterparties_archived == 1
    # Five records in pages of two: three pages of keys, then each record read in full.
    key_pages = [p for m, p in stand_in.requests if m == "GET" and p.endswith(ENTITY)]
    assert len(key_pages) == 3
    assert stand_in.full_reads() == 5

    alfa = await contact_of(kith, _ref(1))
    assert (alfa.kind, alfa.name, alfa.fields["inn"], alfa.fields["kpp"]) == (
        "organization",
        "ООО Альфа",
        "7701000001",
        "770101001",
    )
    assert [p.number for p in alfa.phones] == ["+74951112233"]
    assert [e.address for e in alfa.emails] == ["info@alfa.example"]
    assert alfa.fields["legal_address"] == "Москва, ул. Тверская, 1"
    sidorov = await contact_of(kith, _ref(3))
    assert (sidorov.kind, sidorov.family_name, sidorov.given_name) == ("person", "Сидоров", "Пётр")
    assert (await contact_of(kith, _ref(5))).archived

    # Nothing changed in 1C: only the keys are read again.
    stand_in.requests.clear()
    again = await OdataSync(kith).pull()
    assert (again.read, again.changed, stand_in.full_reads()) == (5, 0, 0)

    # One record changes in 1C: only it is read in full, and Kith follows.
    stand_in.requests.clear()
    stand_in.bump(_ref(2), Description="ООО Бета-Плюс", КПП="770102002")
    changed = await OdataSync(kith).pull()
    assert (changed.changed, stand_in.full_reads()) == (1, 1)
    beta = await contact_of(kith, _ref(2))
    assert (beta.name, beta.fields["kpp"]) == ("ООО Бета-Плюс", "770102002")


async def test_conflicts_follow_the_policy_and_are_recorded(kith: Kith, stand_in: StandIn) -> None:
    _seed(stand_in)
    await OdataSync(kith).pull()
    alfa = await contact_of(kith, _ref(1))
    # Both sides change the name and the phone.
    await ContactService(kith).update(
        alfa.id,
        ContactPatch(name="Alfa Ltd", phones=[PhoneIn(number="+7 495 999-00-00", primary=True)]),
    )
    new_phone = {
        "Тип": "Телефон",
        "Представление": "+7 495 222-33-44",
        "НомерТелефона": "+7 495 222-33-44",
    }
    stand_in.bump(_ref(1), Description="ООО Альфа-Групп", КонтактнаяИнформация=[new_phone])
    report = await OdataSync(kith).pull()
    assert report.counts.conflicts == 2
    alfa = await contact_of(kith, _ref(1))
    # 1C wins the legal details (the name); Kith keeps its contact details.
    assert alfa.name == "ООО Альфа-Групп"
    assert [p.number for p in alfa.phones] == ["+74959990000"]
    recorded = await OnecConflict.select(OnecConflict.field, OnecConflict.winner).where(
        OnecConflict.contact_id == alfa.id
    )
    assert sorted((r["field"], r["winner"]) for r in recorded) == [
        ("name", "onec"),
        ("phones", "kith"),
    ]


async def test_push_sends_new_customers_once(kith: Kith, stand_in: StandIn) -> None:
    contacts = ContactService(kith)
    made = await contacts.create(
        ContactCreate(
            kind="organization",
            name="Delta GmbH",
            emails=[EmailIn(address="office@delta.example")],
        )
    )
    report = await OdataSync(kith).push()
    assert report.pushed == 1
    [record] = stand_in.records.values()
    assert record["Description"] == "Delta GmbH"
    assert record["ЮридическоеФизическоеЛицо"] == "ЮридическоеЛицо"
    assert record["КонтактнаяИнформация"][0]["АдресЭП"] == "office@delta.example"
    link = (
        await OnecLink.select()
        .where((OnecLink.kith_id == made.id) & (OnecLink.kind == "counterparty"))
        .first()
    )
    assert link is not None and link["onec_id"] == record["Ref_Key"]
    assert (await OdataSync(kith).push()).pushed == 0
    # Pulling it back changes nothing: it is the same contact, in step.
    pulled = await OdataSync(kith).pull()
    assert pulled.changed == 0
    assert len((await contacts.list()).items) == 1


async def test_erasure_and_rectification_are_told_to_1c(kith: Kith, stand_in: StandIn) -> None:
    _seed(stand_in)
    await OdataSync(kith).pull()
    alfa = await contact_of(kith, _ref(1))
    recipient = privacy.ONEC_RECIPIENT
    preview = await privacy.notify_preview(recipient, alfa.id)
    assert preview is not None and (preview.outcome, preview.count) == ("done", 1)
    notice = uuid.uuid4()
    told = await privacy.notify(kith, recipient, "erasure", alfa.id, notice)
    assert told is not None and told.outcome == "done"
    # Once per notice id, however often the erasure job repeats it.
    await privacy.notify(kith, recipient, "erasure", alfa.id, notice)
    assert await OnecNotice.count() == 1
    other = Recipient(name="someone else", description="", owner="elsewhere")
    assert await privacy.notify(kith, other, "erasure", alfa.id, notice) is None

    beta = await contact_of(kith, _ref(2))
    await ContactService(kith).update(beta.id, ContactPatch(name="ООО Бета (исправлено)"))
    await privacy.notify(kith, recipient, "rectification", beta.id, uuid.uuid4())

    report = await OdataSync(kith).push()
    assert report.notices_sent == 2
    assert stand_in.records[_ref(1)]["DeletionMark"] is True
    assert stand_in.records[_ref(2)]["Description"] == "ООО Бета (исправлено)"
    states = {row["state"] for row in await OnecNotice.select(OnecNotice.state)}
    assert states == {"sent"}

    # Erased in Kith: the link stays, holding nothing, and 1C's record no longer comes back.
    await privacy.erase(alfa.id)
    link = await OnecLink.select().where(OnecLink.onec_id == _ref(1)).first()
    assert link is not None and link["state"] == "erased"
    stand_in.bump(_ref(1), Description="ООО Альфа снова")
    report = await OdataSync(kith).pull()
    assert report.counts.counterparties_skipped == 1


def test_pull_and_status_commands(
    kith_settings: Settings, stand_in: StandIn, kith_cli: KithCli
) -> None:
    _seed(stand_in)
    env = {
        "KITH_HOME": str(kith_settings.home),
        "KITH_DATABASE_URL": kith_settings.database_url,
        "KITH_ONEC_ODATA_PASSWORD": PASSWORD,
    }
    pulled = kith_cli("onec", "pull", env=env)
    assert pulled.exit_code == 0, pulled.output
    assert "5 read from 1C, 5 changed in Kith (5 created" in pulled.output
    result = kith_cli("onec", "status", env=env)
    assert result.exit_code == 0, result.output
    assert "5 counterparties" in result.output
    assert "pull" in result.output and "done" in result.output
    # 1C unreachable: a readable line, and the failure is in the status.
    wrong = kith_cli("onec", "pull", env={**env, "KITH_ONEC_ODATA_PASSWORD": "wrong"})
    assert wrong.exit_code != 0
    assert "HTTP 401" in wrong.output
    assert "HTTP 401" in kith_cli("onec", "status", env=env).output


async def test_the_worker_syncs_on_a_schedule(kith: Kith, stand_in: StandIn) -> None:
    from kith.plugins.onec import kith_startup
    from kith.plugins.onec.settings import OnecSettings, onec_settings

    # Off by default: no job.
    kith_startup(kith)
    assert "onec.sync" not in kith.bus.jobs
    every = msgspec.structs.replace(onec_settings(kith), sync_minutes=15)
    kith.settings._parsed[("onec", OnecSettings)] = every
    kith_startup(kith)
    interval, job, _ = kith.bus.jobs["onec.sync"]
    assert interval == 15 * 60
    _seed(stand_in)
    await ContactService(kith).create(ContactCreate(kind="organization", name="Epsilon AG"))
    await job()
    assert (await contact_of(kith, _ref(4))).name == "ООО Гамма"
    assert any(r.get("Description") == "Epsilon AG" for r in stand_in.records.values())


async def test_contact_persons_are_linked_to_their_organization(
    kith: Kith, stand_in: StandIn
) -> None:
    _seed(stand_in)
    email = {"Тип": "АдресЭлектроннойПочты", "Представление": "kovalev@alfa.example"}
    stand_in.persons = [
        {
            "Ref_Key": _ref(101),
            "DataVersion": "AAAAAQAAAAA=",
            "DeletionMark": False,
            "Owner_Key": _ref(1),
            "Description": "Ковалёв Андрей",
            "КонтактнаяИнформация": [email],
        }
    ]
    await OdataSync(kith).pull()
    alfa = await contact_of(kith, _ref(1))
    kovalev = await contact_of(kith, _ref(101))
    assert (kovalev.kind, kovalev.family_name, kovalev.given_name) == (
        "person",
        "Ковалёв",
        "Андрей",
    )
    assert kovalev.organization_id == alfa.id
    assert [e.address for e in kovalev.emails] == ["kovalev@alfa.example"]
