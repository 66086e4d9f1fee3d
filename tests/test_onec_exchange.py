"""The CommerceML exchange over HTTP, walked as 1C walks it (SQLite and PostgreSQL):
checkauth → init → file in chunks → import (progress, then success) → query → success, the
zip variant, wrong passwords, hostile and malformed XML."""

from __future__ import annotations

import base64
import decimal
import io
import zipfile
from pathlib import Path

import httpx
import pytest
from _onec_helpers import (
    EXCHANGE_PASSWORD,
    EXCHANGE_USER,
    FIXTURES,
    SETTINGS_TOML,
    contact_of,
    timeline,
)
from kith import (
    ContactCreate,
    ContactService,
    EmailIn,
    InteractionCreate,
    InteractionService,
    Kith,
    UserService,
)
from kith.plugins.onec import commerceml
from kith.plugins.onec.tables import OnecExchange, OnecLink, OnecOrder
from kith.settings import Settings
from kith.testing import settings_for

PATH = "/bitrix/admin/1c_exchange.php"
ROMASHKA = "0a1b2c3d-1111-4000-8000-000000000001"
CHUNK = 1500


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path) -> Settings:
    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(SETTINGS_TOML, encoding="utf-8")
    return settings_for(home, kith_database_url)


@pytest.fixture
async def exchange_user(kith: Kith) -> str:
    await UserService(kith).add(EXCHANGE_USER, "agent", password=EXCHANGE_PASSWORD)
    return EXCHANGE_USER


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _lines(response: httpx.Response) -> list[str]:
    assert response.status_code == 200
    return response.content.decode("cp1251").split("\n")


async def _checkauth(client: httpx.AsyncClient, kind: str = "sale") -> None:
    """checkauth, then 1C sends the cookie it was given with every later step."""
    reply = _lines(
        await client.get(
            PATH,
            params={"type": kind, "mode": "checkauth"},
            headers=_basic(EXCHANGE_USER, EXCHANGE_PASSWORD),
        )
    )
    assert reply[0] == "success"
    client.cookies.set(reply[1], reply[2])


async def _upload(client: httpx.AsyncClient, kind: str, name: str, data: bytes) -> None:
    for start in range(0, len(data), CHUNK):
        reply = await client.post(
            PATH,
            params={"type": kind, "mode": "file", "filename": name},
            content=data[start : start + CHUNK],
        )
        assert _lines(reply) == ["success"]


async def _import(client: httpx.AsyncClient, kind: str, name: str) -> list[list[str]]:
    replies = []
    for _ in range(50):
        reply = _lines(
            await client.get(PATH, params={"type": kind, "mode": "import", "filename": name})
        )
        replies.append(reply)
        if reply[0] != "progress":
            break
    return replies


async def test_a_full_exchange_as_1c_walks_it(
    kith: Kith, kith_client: httpx.AsyncClient, exchange_user: str
) -> None:
    # A customer made in Kith, with an order: it must come back in the query reply.
    contacts = ContactService(kith)
    kith_customer = await contacts.create(
        ContactCreate(
            kind="person",
            given_name="Мария",
            family_name="Соколова",
            emails=[EmailIn(address="sokolova@example.com")],
        )
    )
    order, _ = await InteractionService(kith).log(
        kith_customer.id,
        InteractionCreate(kind="order", summary="Web order", amount=decimal.Decimal("990.00")),
    )

    await _checkauth(kith_client)
    init = _lines(
        await kith_client.get(PATH, params={"type": "sale", "mode": "init", "version": "3.1"})
    )
    assert init == ["zip=yes", "file_limit=65536", "version=3.1"]

    # A path before the name is dropped, as 1C sometimes sends one.
    data = (FIXTURES / "counterparties-2.08.xml").read_bytes()
    await _upload(kith_client, "sale", "import_files/counterparties___1a2b.xml", data)
    orders = (FIXTURES / "orders-2.10.bom.xml").read_bytes()
    await _upload(kith_client, "sale", "orders___3c4d.xml", orders)
    replies = await _import(kith_client, "sale", "counterparties___1a2b.xml")
    assert replies[-1][0] == "success"
    replies = await _import(kith_client, "sale", "orders___3c4d.xml")
    assert replies[-1][0] == "success"

    romashka = await contact_of(kith, ROMASHKA)
    assert [o.kind for o in await timeline(kith, romashka.id)] == ["order", "order"]
    assert await OnecOrder.count() == 3

    query = await kith_client.get(PATH, params={"type": "sale", "mode": "query"})
    assert query.status_code == 200
    assert query.headers["content-type"].startswith("application/xml")
    assert "windows-1251" in query.headers["content-type"]
    assert b'encoding="windows-1251"' in query.content[:60]
    items = list(commerceml.read_items(io.BytesIO(query.content)))
    documents = [i for i in items if isinstance(i, commerceml.Document)]
    assert [d.onec_id for d in documents] == [str(order.id)]
    [buyer] = documents[0].counterparties
    assert (buyer.onec_id, buyer.family_name, buyer.given_name) == (
        str(kith_customer.id),
        "Соколова",
        "Мария",
    )
    assert [p.value for p in buyer.points] == ["sokolova@example.com"]
    # Nothing 1C sent comes back to it.
    assert {i.onec_id for i in items} == {str(order.id)}

    assert _lines(await kith_client.get(PATH, params={"type": "sale", "mode": "success"})) == [
        "success"
    ]
    offered = await OnecLink.select(OnecLink.state).where(OnecLink.kith_id == kith_customer.id)
    assert [row["state"] for row in offered] == ["active"]
    # Handed over once: the next reply has nothing new.
    again = await kith_client.get(PATH, params={"type": "sale", "mode": "query"})
    assert list(commerceml.read_items(io.BytesIO(again.content))) == []

    # 1C sends the same files again: nothing changes.
    links = await OnecLink.count()
    await _checkauth(kith_client)
    await kith_client.get(PATH, params={"type": "sale", "mode": "init"})
    await _upload(kith_client, "sale", "orders___3c4d.xml", orders)
    replies = await _import(kith_client, "sale", "orders___3c4d.xml")
    assert replies[-1][0] == "success"
    assert await OnecLink.count() == links
    assert await OnecOrder.count() == 3
    assert len(await timeline(kith, romashka.id)) == 2
    # The uploaded files are gone once imported: they hold personal data.
    assert not any((Path(kith.settings.home) / "onec" / "sale").glob("*.xml"))


async def test_the_zip_variant_and_progress(
    kith: Kith, kith_client: httpx.AsyncClient, exchange_user: str
) -> None:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(FIXTURES / "counterparties-3.1.xml", "data/contragents___ab12.xml")
        archive.write(FIXTURES / "orders-2.10.bom.xml", "orders___cd34.xml")
    await _checkauth(kith_client, "catalog")
    await kith_client.get(PATH, params={"type": "catalog", "mode": "init"})
    await _upload(kith_client, "catalog", "exchange.zip", packed.getvalue())
    replies = await _import(kith_client, "catalog", "contragents___ab12.xml")
    assert replies[-1][0] == "success"
    # batch_size = 2 in these tests' settings; a file of three orders with their buyers is
    # imported in more than one slice when a slice is short, which the import_seconds
    # setting decides; here one request suffices, and the answer says how many.
    replies = await _import(kith_client, "catalog", "orders___cd34.xml")
    assert replies[-1] == ["success", "3 imported"]
    vector = await contact_of(kith, "3f0c1a2b-3131-4000-8000-000000000002")
    assert vector.kind == "organization"
    assert len(await timeline(kith, (await contact_of(kith, ROMASHKA)).id)) == 2


async def test_wrong_password_fails_and_stores_nothing(
    kith: Kith, kith_client: httpx.AsyncClient, exchange_user: str
) -> None:
    reply = _lines(
        await kith_client.get(
            PATH,
            params={"type": "sale", "mode": "checkauth"},
            headers=_basic(EXCHANGE_USER, "not the password"),
        )
    )
    assert reply[0] == "failure"
    assert "wrong user name or password" in reply[1]
    other_user = _lines(
        await kith_client.get(
            PATH,
            params={"type": "sale", "mode": "checkauth"},
            headers=_basic("someone@firm.example", EXCHANGE_PASSWORD),
        )
    )
    assert other_user[0] == "failure"
    # Without a session, no step is taken: the upload is refused and nothing lands.
    data = (FIXTURES / "orders-2.10.bom.xml").read_bytes()
    upload = _lines(
        await kith_client.post(
            PATH, params={"type": "sale", "mode": "file", "filename": "orders.xml"}, content=data
        )
    )
    assert upload[0] == "failure"
    kith_client.cookies.set("kith_onec", "made-up")
    imported = _lines(
        await kith_client.get(
            PATH, params={"type": "sale", "mode": "import", "filename": "orders.xml"}
        )
    )
    assert imported[0] == "failure"
    assert await OnecLink.count() == 0
    assert await ContactService(kith).list() is not None
    assert not (Path(kith.settings.home) / "onec" / "sale" / "orders.xml").exists()


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<КоммерческаяИнформация><Документ><Ид>1</Ид><Комментарий>&lol4;</Комментарий></Документ></КоммерческаяИнформация>
""".encode()

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE x [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<КоммерческаяИнформация><Документ><Ид>1</Ид><Комментарий>&secret;</Комментарий></Документ></КоммерческаяИнформация>
""".encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (BILLION_LAUGHS, "declares a DTD or entities"),
        (EXTERNAL_ENTITY, "declares a DTD or entities"),
    ],
    ids=["billion-laughs", "external-entity"],
)
async def test_hostile_xml_is_refused(
    kith: Kith,
    kith_client: httpx.AsyncClient,
    exchange_user: str,
    body: bytes,
    reason: str,
) -> None:
    await _checkauth(kith_client)
    await kith_client.get(PATH, params={"type": "sale", "mode": "init"})
    await _upload(kith_client, "sale", "orders.xml", body.decode().encode("utf-8"))
    [reply] = await _import(kith_client, "sale", "orders.xml")
    assert reply[0] == "failure"
    assert reason in reply[1]
    assert await OnecLink.count() == 0
    assert await OnecOrder.count() == 0


async def test_malformed_xml_names_line_and_column_and_writes_nothing(
    kith: Kith, kith_client: httpx.AsyncClient, exchange_user: str
) -> None:
    good = (FIXTURES / "orders-2.10.bom.xml").read_bytes()
    # The first two documents are whole; the file breaks in the third.
    broken = good.replace("<Номер>ПП-0007</Номер>".encode(), "<Номер>ПП-0007</Нмер>".encode())
    await _checkauth(kith_client)
    await kith_client.get(PATH, params={"type": "sale", "mode": "init"})
    await _upload(kith_client, "sale", "orders.xml", broken)
    [reply] = await _import(kith_client, "sale", "orders.xml")
    line = next(
        n for n, text in enumerate(good.decode("utf-8-sig").splitlines(), 1) if "ПП-0007" in text
    )
    assert reply[0] == "failure"
    assert f"line {line}, column" in reply[1]
    assert await OnecLink.count() == 0
    assert await OnecOrder.count() == 0
    status = await OnecExchange.select().where(OnecExchange.state == "failed")
    assert any(f"line {line}" in row["error"] for row in status)


async def test_steps_without_a_type_or_mode_fail(
    kith: Kith, kith_client: httpx.AsyncClient, exchange_user: str
) -> None:
    await _checkauth(kith_client)
    assert _lines(await kith_client.get(PATH, params={"type": "sale", "mode": "dance"}))[0] == (
        "failure"
    )
    assert _lines(await kith_client.get(PATH, params={"type": "goods", "mode": "init"}))[0] == (
        "failure"
    )
    too_big = b"x" * 70_000
    reply = _lines(
        await kith_client.post(
            PATH, params={"type": "sale", "mode": "file", "filename": "big.xml"}, content=too_big
        )
    )
    assert reply[0] == "failure" and "file_limit" in reply[1]
    escape = _lines(
        await kith_client.post(
            PATH, params={"type": "sale", "mode": "file", "filename": "../"}, content=b"x"
        )
    )
    assert escape[0] == "failure"


async def test_a_long_import_answers_progress_until_done(
    kith: Kith, kith_client: httpx.AsyncClient, exchange_user: str
) -> None:
    import msgspec
    from kith.plugins.onec.settings import OnecSettings, onec_settings

    # A slice shorter than one batch: every request imports one batch (two items) and
    # answers progress, as a large file would with the default slice.
    short = msgspec.structs.replace(onec_settings(kith), import_seconds=1e-9)
    kith.settings._parsed[("onec", OnecSettings)] = short
    await _checkauth(kith_client)
    await kith_client.get(PATH, params={"type": "sale", "mode": "init"})
    await _upload(
        kith_client, "sale", "orders.xml", (FIXTURES / "orders-2.10.bom.xml").read_bytes()
    )
    replies = await _import(kith_client, "sale", "orders.xml")
    assert replies == [["progress", "2 of 3 imported"], ["success", "3 imported"]]
    assert await OnecOrder.count() == 3
