"""Consent on the contact's card: shown per purpose, read as personal data (audited), and
recorded or withdrawn by the roles the consent API lets, through the same ledger."""

from __future__ import annotations

import uuid

import pytest
from _privacy_workflow import NEWSLETTER, configure_privacy
from kith.actor import SYSTEM
from kith.hookspecs import hookimpl
from kith.runtime import Kith
from kith.schemas import ContactCreate
from kith.services.contacts import ContactService
from kith.subjects import Access
from test_web_sessions import add, browser_like, post_form, sign_in


class Reads:
    """Sees every access report, as the audit log does."""

    def __init__(self) -> None:
        self.seen: list[Access] = []

    @hookimpl
    def kith_record_access(self, access: Access) -> None:
        self.seen.append(access)


@pytest.fixture
def reads() -> Reads:
    return Reads()


@pytest.fixture
def kith_plugins(reads: Reads) -> list[object]:
    return [reads]


async def _contact(kith: Kith) -> uuid.UUID:
    configure_privacy(kith, purposes={"newsletter": NEWSLETTER})
    return (await ContactService(kith).create(ContactCreate(name="Ada Lovelace"))).id


async def test_compliance_records_and_withdraws_consent_on_the_card(
    kith: Kith, reads: Reads
) -> None:
    contact_id = await _contact(kith)
    email = await add(kith, "compliance")
    async with browser_like(kith) as client:
        await sign_in(client, email)
        card = f"/contacts/{contact_id}"
        page = await client.get(card)
        assert "newsletter" in page.text and "not asked" in page.text
        assert any(
            a.contact_id == contact_id
            and a.details.get("part") == "consents"
            and a.channel == "web"
            for a in reads.seen
        )
        given = await post_form(
            client, card, f"{card}/consent", {"purpose": "newsletter", "action": "given"}
        )
        assert given.status_code == 303
        page = await client.get(card)
        assert "given" in page.text and "Record a withdrawal" in page.text
        assert "(notice 1)" in page.text
        await post_form(
            client, card, f"{card}/consent", {"purpose": "newsletter", "action": "withdrawn"}
        )
        russian = await client.get(card, headers={"Accept-Language": "ru"})
        assert "Record consent given" not in russian.text
        unknown = await post_form(
            client, card, f"{card}/consent", {"purpose": "lottery", "action": "given"}
        )
        assert unknown.status_code == 422 and "lottery" in unknown.text
    # The same ledger the consent API reads: given, then withdrawn, from the web UI.
    assert kith.plugins is not None
    answers = await kith.plugins.call_async(
        "kith_subject_consents", kith=kith, contact_id=contact_id
    )
    (line,) = [line for a in answers if a.value for line in a.value if line.purpose == "newsletter"]
    assert (line.status, line.channel) == ("withdrawn", "web")


async def test_agents_see_consent_but_may_not_change_it(kith: Kith) -> None:
    contact_id = await _contact(kith)
    email = await add(kith, "agent")
    async with browser_like(kith) as client:
        await sign_in(client, email)
        card = f"/contacts/{contact_id}"
        page = await client.get(card)
        assert "newsletter" in page.text and "Record consent given" not in page.text
        refused = await post_form(
            client, card, f"{card}/consent", {"purpose": "newsletter", "action": "given"}
        )
        assert refused.status_code == 403
    assert kith.plugins is not None
    answers = await kith.plugins.call_async(
        "kith_subject_consents", kith=kith, contact_id=contact_id
    )
    statuses = {line.purpose: line.status for a in answers if a.value for line in a.value}
    assert statuses["newsletter"] == "none"


async def test_the_card_shows_where_consent_came_from(kith: Kith) -> None:
    contact_id = await _contact(kith)
    assert kith.plugins is not None
    # Given on the phone, through the ledger's hook (as kith.change_consent records it).
    receipts = await kith.plugins.call_async(
        "kith_change_consent",
        kith=kith,
        contact_id=contact_id,
        purpose="newsletter",
        action="given",
        channel="phone",
        actor=SYSTEM,
    )
    assert [r.value.notice_version for r in receipts if r.value] == [1]
    email = await add(kith, "agent")
    async with browser_like(kith) as client:
        await sign_in(client, email)
        page = (await client.get(f"/contacts/{contact_id}")).text
    row = page[page.index("<td>newsletter</td>") :].split("</tr>")[0]
    assert "given" in row and "<td>phone</td>" in row
