"""What the 1C exchange hands back and where it answers (SQLite and PostgreSQL): the paths
configured in ``[onec] exchange_paths``, and orders logged in Kith for customers 1C already
knows, sent with their buyer under the buyer's 1C Ид, held back while the buyer is restricted,
and shaped like the real query replies 1C reads."""

from __future__ import annotations

import base64
import decimal
import io
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from _onec_helpers import EXCHANGE_PASSWORD, EXCHANGE_USER, FIXTURES, SAMPLES, contact_of
from kith import InteractionCreate, InteractionService, Kith, UserService, hookimpl
from kith.plugin_manager import PluginError, load_plugin_manager
from kith.plugins.onec import commerceml
from kith.plugins.onec.importer import OnecImporter
from kith.plugins.onec.tables import OnecLink
from kith.privacy.rights.restriction import RestrictionService
from kith.settings import Settings, SettingsError
from kith.subjects import Access
from kith.testing import settings_for

ROMASHKA = "0a1b2c3d-1111-4000-8000-000000000001"
IVANOV = "0a1b2c3d-1111-4000-8000-000000000002"
PATH = "/erp/site-exchange"
SETTINGS_TOML = f"""
[onec]
exchange_user = "{EXCHANGE_USER}"
exchange_paths = ["{PATH}"]
"""


class AccessLog:
    """A plugin for one test that keeps the accesses reported to the audit log."""

    def __init__(self) -> None:
        self.accesses: list[Access] = []

    @hookimpl
    async def kith_record_access(self, kith: Kith, access: Access) -> None:
        self.accesses.append(access)


ACCESS_LOG = AccessLog()


@pytest.fixture
def kith_plugins() -> list[Any]:
    return [ACCESS_LOG]


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path) -> Settings:
    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(SETTINGS_TOML, encoding="utf-8")
    return settings_for(home, kith_database_url)


def _lines(response: httpx.Response) -> list[str]:
    assert response.status_code == 200
    return response.content.decode("cp1251").split("\n")


async def _session(client: httpx.AsyncClient, path: str = PATH) -> list[str]:
    token = base64.b64encode(f"{EXCHANGE_USER}:{EXCHANGE_PASSWORD}".encode()).decode()
    reply = _lines(
        await client.get(
            path,
            params={"type": "sale", "mode": "checkauth"},
            headers={"Authorization": f"Basic {token}"},
        )
    )
    if reply[0] == "success":
        client.cookies.set(reply[1], reply[2])
    return reply


async def _query(client: httpx.AsyncClient) -> list[commerceml.Item]:
    reply = await client.get(PATH, params={"type": "sale", "mode": "query"})
    assert reply.status_code == 200
    return list(commerceml.read_items(io.BytesIO(reply.content)))


async def _known_customers(kith: Kith) -> None:
    await UserService(kith).add(EXCHANGE_USER, "agent", password=EXCHANGE_PASSWORD)
    path = FIXTURES / "counterparties-2.08.xml"
    commerceml.survey(path)
    _, _, finished = await OnecImporter(kith).import_file(path)
    assert finished


async def test_the_exchange_answers_at_the_configured_path_only(
    kith: Kith, kith_client: httpx.AsyncClient
) -> None:
    await UserService(kith).add(EXCHANGE_USER, "agent", password=EXCHANGE_PASSWORD)
    assert (await _session(kith_client))[0] == "success"
    init = await kith_client.get(PATH, params={"type": "sale", "mode": "init"})
    assert _lines(init)[0] == "zip=yes"
    # The default addresses are not served when others are configured.
    for default in ("/1c/exchange", "/bitrix/admin/1c_exchange.php"):
        assert (await kith_client.get(default, params={"mode": "checkauth"})).status_code == 404


@pytest.mark.parametrize(
    "paths",
    ['["/api/exchange"]', '["1c/exchange"]', '["/1c/../api"]', '["/1c/{id}"]', "[]"],
    ids=["under-api", "relative", "dot-dot", "parameter", "none"],
)
def test_an_unusable_exchange_path_is_refused_at_start(tmp_path: Path, paths: str) -> None:
    (tmp_path / "kith.toml").write_text(f"[onec]\nexchange_paths = {paths}\n", encoding="utf-8")
    manager = load_plugin_manager()
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'kith.db'}")
    with pytest.raises(SettingsError, match="exchange_paths"):
        manager.check_settings(settings)


def test_a_configured_route_that_is_not_a_handler_names_the_plugin(tmp_path: Path) -> None:
    class BadRoutes:
        @hookimpl
        def kith_register_configured_routes(self, settings: Settings, register: Any) -> None:
            register(settings.parsed("onec", object))

    manager = load_plugin_manager()
    manager.register(BadRoutes(), "bad-routes")
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'kith.db'}")
    with pytest.raises(PluginError, match=r"bad-routes.*kith_register_configured_routes"):
        manager.routes(settings)


async def test_orders_of_known_customers_go_to_1c_with_their_1c_counterparty(
    kith: Kith, kith_client: httpx.AsyncClient
) -> None:
    ACCESS_LOG.accesses.clear()
    await _known_customers(kith)
    romashka = await contact_of(kith, ROMASHKA)
    ivanov = await contact_of(kith, IVANOV)
    interactions = InteractionService(kith)
    order, _ = await interactions.log(
        romashka.id,
        InteractionCreate(kind="order", summary="Phone order", amount=decimal.Decimal("4200.00")),
    )
    held, _ = await interactions.log(
        ivanov.id, InteractionCreate(kind="order", summary="Web order")
    )
    # A note is not an order: it stays in Kith.
    await interactions.log(romashka.id, InteractionCreate(kind="note", summary="Called back"))
    await kith.bus.drain()
    await RestrictionService(kith).restrict(ivanov.id, "accuracy_contested")

    assert (await _session(kith_client))[0] == "success"
    items = await _query(kith_client)
    [document] = [i for i in items if isinstance(i, commerceml.Document)]
    assert (document.onec_id, document.amount, document.comment) == (
        str(order.id),
        "4200.00",
        "Phone order",
    )
    [buyer] = document.counterparties
    # The buyer under 1C's own Ид, with the details 1C expects of a counterparty.
    assert (buyer.onec_id, buyer.name, buyer.inn, buyer.kpp, buyer.role) == (
        ROMASHKA,
        romashka.name,
        "7701234567",
        "770101001",
        "Покупатель",
    )
    # Nothing else of Ivanov's goes while he is restricted; his order waits.
    assert not any(IVANOV in i.onec_id or str(held.id) == i.onec_id for i in items)
    waiting = await OnecLink.select(OnecLink.state).where(OnecLink.kith_id == held.id)
    assert [row["state"] for row in waiting] == ["pending"]
    disclosures = [a for a in ACCESS_LOG.accesses if a.action == "disclose"]
    assert [(a.contact_id, a.channel, a.details["recipient"]) for a in disclosures] == [
        (romashka.id, "onec", "1C:Enterprise")
    ]

    # Until 1C confirms, the order is offered again; after, it is 1C's.
    assert [i.onec_id for i in await _query(kith_client)] == [str(order.id)]
    await kith_client.get(PATH, params={"type": "sale", "mode": "success"})
    assert await _query(kith_client) == []
    # Once the restriction is lifted, Ivanov's order goes.
    await RestrictionService(kith).lift(ivanov.id, "details confirmed")
    [later] = await _query(kith_client)
    assert isinstance(later, commerceml.Document)
    assert (later.onec_id, later.counterparties[0].onec_id) == (str(held.id), IVANOV)


async def test_an_order_sent_back_by_1c_is_not_offered_again(kith: Kith) -> None:
    from kith.plugins.onec.query import QueryBuilder

    await _known_customers(kith)
    romashka = await contact_of(kith, ROMASHKA)
    await InteractionService(kith).log(
        romashka.id, InteractionCreate(kind="order", summary="Order")
    )
    await kith.bus.drain()
    # The event delivered twice (at-least-once delivery) queues the order once.
    await kith.bus.drain()
    first = await QueryBuilder(kith).build("2.10")
    assert first.counts["documents"] == 1
    assert await OnecLink.count().where(OnecLink.kind == "document") == 1


def _tags(element: ElementTree.Element) -> list[str]:
    return [child.tag.rsplit("}", 1)[-1] for child in element]


def _in_order(ours: list[str], theirs: list[str]) -> bool:
    """Whether the tags both hold come in the same order."""
    shared = [tag for tag in ours if tag in theirs]
    return shared == [tag for tag in theirs if tag in shared]


async def test_the_reply_is_shaped_like_a_real_query_reply(kith: Kith) -> None:
    from kith.plugins.onec.query import QueryBuilder

    sample = SAMPLES / "bitrix-sale-query-orders.cp1251.xml"
    if not sample.exists():
        pytest.skip(f"the shared 1C samples are not on this machine ({SAMPLES})")
    await _known_customers(kith)
    romashka = await contact_of(kith, ROMASHKA)
    await InteractionService(kith).log(
        romashka.id,
        InteractionCreate(kind="order", summary="Order", amount=decimal.Decimal("1.50")),
    )
    await kith.bus.drain()
    built = await QueryBuilder(kith).build("2.05")

    real = ElementTree.parse(sample).getroot()
    ours = ElementTree.fromstring(built.body)
    assert built.body.startswith(b'<?xml version="1.0" encoding="windows-1251"?>')
    assert ours.tag == real.tag == "КоммерческаяИнформация"
    assert ours.get("ВерсияСхемы") == real.get("ВерсияСхемы") == "2.05"
    [document] = ours.findall("Документ")
    real_document = real.findall("Документ")[0]
    assert _in_order(_tags(document), _tags(real_document))
    assert {"Ид", "Номер", "Дата", "ХозОперация", "Роль", "Валюта", "Сумма", "Контрагенты"} <= (
        set(_tags(document)) & set(_tags(real_document))
    )
    assert document.findtext("ХозОперация") == real_document.findtext("ХозОперация")
    assert document.findtext("Роль") == real_document.findtext("Роль")
    buyer = document.find("Контрагенты/Контрагент")
    real_buyer = real_document.find("Контрагенты/Контрагент")
    assert buyer is not None and real_buyer is not None
    assert _in_order(_tags(buyer), _tags(real_buyer))
    assert buyer.findtext("Роль") == real_buyer.findtext("Роль") == "Покупатель"
    assert buyer.findtext("Ид") == ROMASHKA
    # Read back as 1C's reply is read, the order carries its sum and buyer.
    [item] = commerceml.read_items(io.BytesIO(built.body))
    assert isinstance(item, commerceml.Document) and item.amount == "1.50"
    assert uuid.UUID(item.onec_id)
