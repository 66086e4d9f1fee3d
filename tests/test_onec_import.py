"""Importing 1C's CommerceML files (SQLite and PostgreSQL): counterparties become
organizations and people with every contact type 1C writes, documents become orders on the
right timelines, re-imports change nothing, changed documents update, deletion marks archive."""

from __future__ import annotations

import decimal
import io
from pathlib import Path

import pytest
from _onec_helpers import FIXTURES, SAMPLES, SETTINGS_TOML, contact_of, timeline
from kith import ContactCreate, ContactService, EmailIn, Kith
from kith.plugins.onec import commerceml
from kith.plugins.onec.fields import usable_fields
from kith.plugins.onec.importer import OnecImporter
from kith.plugins.onec.tables import OnecLink, OnecOrder, json_value
from kith.settings import Settings
from kith.testing import settings_for

ROMASHKA = "0a1b2c3d-1111-4000-8000-000000000001"
IVANOV = "0a1b2c3d-1111-4000-8000-000000000002"
PETROVA = "0a1b2c3d-1111-4000-8000-000000000011"
ORDER = "b7c9e2d4-0001-4000-8000-00000000a001"


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path) -> Settings:
    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(SETTINGS_TOML, encoding="utf-8")
    return settings_for(home, kith_database_url)


async def _run(kith: Kith, path: Path) -> dict[str, int]:
    commerceml.survey(path)
    counts, _, finished = await OnecImporter(kith).import_file(path)
    assert finished
    assert counts.failed == 0, counts.errors
    return _plain(counts)


def _plain(counts: object) -> dict[str, int]:
    return {
        name: getattr(counts, name)
        for name in counts.__struct_fields__  # type: ignore[attr-defined]
        if name != "errors" and getattr(counts, name)
    }


async def test_counterparties_2_08_with_every_contact_type(kith: Kith) -> None:
    counts = await _run(kith, FIXTURES / "counterparties-2.08.xml")
    assert counts == {"counterparties_created": 3}

    romashka = await contact_of(kith, ROMASHKA)
    assert romashka.kind == "organization"
    assert romashka.name == 'ООО "Ромашка"'
    assert romashka.fields["inn"] == "7701234567"
    assert romashka.fields["kpp"] == "770101001"
    assert romashka.fields["legal_address"] == "101000, Москва, ул. Мясницкая, д. 1"
    assert romashka.fields["actual_address"].startswith("Москва, Чистопрудный")
    assert sorted(e.address for e in romashka.emails) == [
        "buh@romashka.example",
        "office@romashka.example",
        "sales@romashka.example",
    ]
    phones = {p.number: p.label for p in romashka.phones}
    assert phones == {
        "+74951234567": "work",
        "+74951234568": "work",
        "+79161234567": "mobile",
        "+74957654321": "",
        "+74957654322": "fax",
    }

    petrova = await contact_of(kith, PETROVA)
    assert (petrova.kind, petrova.family_name, petrova.given_name) == ("person", "Петрова", "Анна")
    assert petrova.fields["middle_name"] == "Сергеевна"
    assert petrova.organization_id == romashka.id

    ivanov = await contact_of(kith, IVANOV)
    assert (ivanov.kind, ivanov.family_name, ivanov.given_name) == ("person", "Иванов", "Иван")
    assert ivanov.fields["inn"] == "500100732259"
    assert ivanov.fields["legal_address"].startswith("Тверь")
    assert {p.number: p.label for p in ivanov.phones} == {
        "+79031112233": "mobile",
        "+74822334455": "home",
    }


async def test_counterparties_3_1_in_a_container(kith: Kith) -> None:
    counts = await _run(kith, FIXTURES / "counterparties-3.1.xml")
    assert counts == {"counterparties_created": 3}
    smirnov = await contact_of(kith, "3f0c1a2b-3131-4000-8000-000000000001")
    assert (smirnov.kind, smirnov.family_name, smirnov.fields["inn"]) == (
        "person",
        "Смирнов",
        "771234567890",
    )
    assert [e.address for e in smirnov.emails] == ["smirnov@ip.example"]
    vector = await contact_of(kith, "3f0c1a2b-3131-4000-8000-000000000002")
    assert (vector.kind, vector.fields["kpp"]) == ("organization", "781201001")
    assert [p.label for p in vector.phones] == ["work"]
    kuznetsov = await contact_of(kith, "3f0c1a2b-3131-4000-8000-000000000012")
    assert kuznetsov.organization_id == vector.id


async def test_orders_land_on_timelines_and_reimport_changes_nothing(kith: Kith) -> None:
    await _run(kith, FIXTURES / "counterparties-2.08.xml")
    counts = await _run(kith, FIXTURES / "orders-2.10.bom.xml")
    assert counts["orders_created"] == 3
    romashka = await contact_of(kith, ROMASHKA)
    orders = await timeline(kith, romashka.id)
    assert [o.kind for o in orders] == ["order", "order"]
    first = next(o for o in orders if o.external_id == ORDER)
    assert first.amount == decimal.Decimal("12500.00")
    assert first.summary == "Order ТД-0001 of 2026-11-28: 12500.00 RUB (Согласован)"
    assert "Кофемашина × 1 шт = 10000.00" in first.body
    assert "Доставка до 12:00" in first.body
    detail = await OnecOrder.select().where(OnecOrder.id == first.id).first()
    assert detail is not None
    assert (detail["number"], detail["currency"], detail["status"]) == (
        "ТД-0001",
        "RUB",
        "Согласован",
    )
    assert (detail["paid"], detail["shipped"], len(json_value(detail["lines"]))) == (
        False,
        False,
        2,
    )
    payment = next(o for o in orders if o.external_id != ORDER)
    assert payment.summary.startswith("Payment ПП-0007")
    ivanov = await contact_of(kith, IVANOV)
    [shipment] = await timeline(kith, ivanov.id)
    assert shipment.amount == decimal.Decimal("3400.50")
    shipped = await OnecOrder.select().where(OnecOrder.id == shipment.id).first()
    assert shipped is not None and shipped["shipped"] is True

    links = await OnecLink.count()
    again = await _run(kith, FIXTURES / "orders-2.10.bom.xml")
    assert again == {"orders_unchanged": 3}
    assert await OnecLink.count() == links
    assert len(await timeline(kith, romashka.id)) == 2


async def test_a_changed_order_updates_and_a_deletion_mark_archives(kith: Kith) -> None:
    path = FIXTURES / "orders-2.10.bom.xml"
    await _run(kith, path)
    changed = path.read_bytes().decode("utf-8-sig")
    changed = changed.replace("<Значение>Согласован</Значение>", "<Значение>Выполнен</Значение>")
    changed = changed.replace(
        "<Наименование>Заказ оплачен</Наименование><Значение>false",
        "<Наименование>Заказ оплачен</Наименование><Значение>true",
    )
    tmp = Path(kith.settings.home) / "changed.xml"
    tmp.write_text(changed, encoding="utf-8")
    counts = await _run(kith, tmp)
    assert counts == {"orders_updated": 1, "orders_unchanged": 2, "counterparties_unchanged": 1}
    romashka = await contact_of(kith, ROMASHKA)
    orders = await timeline(kith, romashka.id)
    first = next(o for o in orders if o.external_id == ORDER)
    assert first.summary == "Order ТД-0001 of 2026-11-28: 12500.00 RUB (Выполнен, paid)"
    detail = await OnecOrder.select().where(OnecOrder.id == first.id).first()
    assert detail is not None and detail["paid"] is True

    deleted = changed.replace(
        f"<Ид>{IVANOV}</Ид>", f"<Ид>{IVANOV}</Ид><ПометкаУдаления>true</ПометкаУдаления>"
    )
    tmp.write_text(deleted, encoding="utf-8")
    counts = await _run(kith, tmp)
    assert counts["counterparties_archived"] == 1
    assert (await contact_of(kith, IVANOV)).archived


async def test_a_counterparty_matches_by_inn_then_email(kith: Kith) -> None:
    # The plugin's fields, as `kith migrate` adds them.
    assert "inn" in await usable_fields(kith)
    contacts = ContactService(kith)
    by_inn = await contacts.create(
        ContactCreate(kind="organization", name="Romashka LLC", fields={"inn": "7701234567"})
    )
    by_email = await contacts.create(
        ContactCreate(given_name="Ivan", emails=[EmailIn(address="ivanov@mail.example")])
    )
    counts = await _run(kith, FIXTURES / "counterparties-2.08.xml")
    assert counts["counterparties_matched"] == 2
    assert (await contact_of(kith, ROMASHKA)).id == by_inn.id
    assert (await contact_of(kith, IVANOV)).id == by_email.id
    # 1C wins the legal details of a matched contact; Kith's contact details stay and 1C's
    # are added.
    ivanov = await contacts.get(by_email.id)
    assert (ivanov.family_name, ivanov.given_name) == ("Иванов", "Иван")
    assert [e.address for e in ivanov.emails] == ["ivanov@mail.example"]


def test_the_real_query_reply_parses_and_round_trips() -> None:
    sample = SAMPLES / "bitrix-sale-query-orders.cp1251.xml"
    if not sample.exists():
        pytest.skip(f"the shared 1C samples are not on this machine ({SAMPLES})")
    assert commerceml.survey(sample).documents == 2
    items = list(commerceml.read_items(sample))
    assert [i.onec_id for i in items] == ["132", "133"]
    order = items[1]
    assert isinstance(order, commerceml.Document)
    assert order.amount == "14380.5800"
    assert order.requisites["Статус заказа"] == "[N] Принят, ожидается оплата"
    assert order.counterparties[0].onec_id == "5#content-manager# Контент менджер"
    out = io.BytesIO()
    writer = commerceml.Writer(out, version="2.05")
    import datetime as dt

    writer.start(dt.datetime(2026, 12, 1))
    for item in items:
        assert isinstance(item, commerceml.Document)
        writer.document(item)
    writer.end()
    written = out.getvalue()
    assert written.startswith(b'<?xml version="1.0" encoding="windows-1251"?>')
    assert "Принят".encode("cp1251") in written
    assert list(commerceml.read_items(io.BytesIO(written))) == items
    empty = SAMPLES / "bitrix-sale-query-empty.cp1251.xml"
    assert list(commerceml.read_items(empty)) == []


async def test_the_real_query_reply_imports(kith: Kith) -> None:
    sample = SAMPLES / "bitrix-sale-query-orders.cp1251.xml"
    if not sample.exists():
        pytest.skip(f"the shared 1C samples are not on this machine ({SAMPLES})")
    counts = await _run(kith, sample)
    assert counts["orders_created"] == 2
    buyer = await contact_of(kith, "38#catalog_exchange#")
    [order] = await timeline(kith, buyer.id)
    assert order.amount == decimal.Decimal("231.74")


async def test_erasure_keeps_orders_under_the_legal_hold_and_tells_1c(kith: Kith) -> None:
    import uuid

    from kith.plugins.onec.query import QueryBuilder
    from kith.plugins.onec.tables import OnecNotice
    from kith.privacy.rights.erasure import ErasureService

    await _run(kith, FIXTURES / "counterparties-2.08.xml")
    await _run(kith, FIXTURES / "orders-2.10.bom.xml")
    ivanov = await contact_of(kith, IVANOV)
    [order] = await timeline(kith, ivanov.id)

    done = await ErasureService(kith).run(ivanov.id, job_id=uuid.uuid4())
    by_location = {(e.source, e.location): e for e in done.entries}
    assert by_location[("onec", "onec_order")].method == "legal_hold"
    assert by_location[("onec", "onec_link")].method == "anonymised"
    told = [e for e in done.entries if e.location == "1C:Enterprise"]
    assert told and told[0].outcome == "done"
    # The order is still there for the tax office; the person's details are not.
    assert await OnecOrder.count().where(OnecOrder.id == order.id) == 1
    link = await OnecLink.select().where(OnecLink.onec_id == IVANOV).first()
    assert link is not None and link["state"] == "erased"
    [notice] = await OnecNotice.select().where(OnecNotice.onec_id == IVANOV)
    assert notice["action"] == "erasure"

    # The next query reply tells 1C: the Ид with a deletion mark, nothing else.
    built = await QueryBuilder(kith).build("2.10")
    [erased] = [i for i in commerceml.read_items(io.BytesIO(built.body)) if i.onec_id == IVANOV]
    assert isinstance(erased, commerceml.Counterparty)
    assert erased.deleted and not erased.name and not erased.points

    # 1C sends the person again: they do not come back.
    counts = await _run(kith, FIXTURES / "counterparties-2.08.xml")
    assert counts["counterparties_skipped"] == 1
    assert not await OnecLink.exists().where(
        (OnecLink.onec_id == IVANOV) & (OnecLink.state == "active")
    )
