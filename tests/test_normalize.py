"""Normalisation of what people type: phones to E.164, emails lower-cased and validated."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kith.errors import InvalidInput
from kith.normalize import looks_like_email, looks_like_phone, normalize_email, normalize_phone
from kith.runtime import Kith
from kith.testing import TokenFactory

LONDON = "+442079460018"


@pytest.mark.parametrize(
    "typed",
    [
        "+44 20 7946 0018",
        "+44-20-7946-0018",
        "+44.20.7946.0018",
        "+44 (20) 7946 0018",
        "0044 20 7946 0018",
        "00442079460018",
        "020 7946 0018",
        "(020) 7946-0018",
        "020.7946.0018",
        "+44 (0) 20 7946 0018",
        "+44(0)2079460018",
        "\u00a0020\u00a07946\u00a00018\u00a0",
        "  +44 20 7946 0018\t",
        "tel:+44-20-7946-0018",
    ],
)
def test_one_number_typed_many_ways(typed: str) -> None:
    assert normalize_phone(typed, "GB") == LONDON


def test_national_format_follows_the_default_region() -> None:
    assert normalize_phone("030 123456", "DE") == "+4930123456"
    assert normalize_phone("(415) 555-2671", "US") == "+14155552671"
    assert normalize_phone("8 (495) 123-45-67", "RU") == "+74951234567"
    # An international number ignores the default region.
    assert normalize_phone("+1 415 555 2671", "DE") == "+14155552671"


@pytest.mark.parametrize("region", ["GB", "RU", "JP", "US", "DE"])
@pytest.mark.parametrize(
    ("typed", "stored"),
    [("0044 20 7946 0018", LONDON), ("00 1 415 555 2671", "+14155552671")],
)
def test_00_means_international_in_every_region(region: str, typed: str, stored: str) -> None:
    # Russia dials abroad with 810 and Japan with 010, so their rules read 0044... as a national
    # number: it would be stored as +7 0044... or +81 0044..., a different person's number.
    assert normalize_phone(typed, region) == stored


def test_00_before_a_number_typed_with_letters() -> None:
    assert normalize_phone("001 800 FLOWERS", "RU") == "+18003569377"
    assert normalize_phone("00 44 800 FLOWERS", "JP") == "+448003569377"


@pytest.mark.parametrize("typed", ["12", "abc", "+", "00", "+44 1", "call me", "0"])
def test_invalid_phone_says_what_is_wrong(typed: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(typed, "GB", field="phones[1]")
    assert caught.value.extra["field"] == "phones[1]"
    assert repr(typed) in caught.value.detail
    assert "\n" not in caught.value.detail


@pytest.mark.parametrize("typed", ["", "   ", "\u00a0"])
def test_empty_phone_is_refused(typed: str) -> None:
    with pytest.raises(InvalidInput, match="cannot be empty"):
        normalize_phone(typed, "GB")


def test_national_number_without_country_code_names_the_region() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone("8 (495) 123-45-67", "GB")
    assert "GB" in caught.value.detail
    assert "country code" in caught.value.detail


SEPARATORS = st.sampled_from(["", " ", "-", ".", "\u00a0", "  "])


@st.composite
def london_number_typed(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["+44", "0044", "+44 (0)", "0", "(0", "+44(", "0044 (0)"]))
    digits = "2079460018"
    out = [prefix]
    for index, digit in enumerate(digits):
        if index:
            out.append(draw(SEPARATORS))
        out.append(digit)
        if index == 1 and prefix.count("(") > prefix.count(")"):
            out.append(")")
    return draw(st.sampled_from(["", " ", "\u00a0"])) + "".join(out) + draw(SEPARATORS)


@given(london_number_typed())
def test_any_formatting_of_one_number_gives_one_e164(typed: str) -> None:
    assert normalize_phone(typed, "GB") == LONDON


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Ada@Example.COM", "ada@example.com"),
        ("  ada@example.com \t", "ada@example.com"),
        ("\u00a0ADA@EXAMPLE.COM\u00a0", "ada@example.com"),
        ("user@bücher.de", "user@bücher.de"),
        ("User@Bücher.De", "user@bücher.de"),
        # The ASCII (punycode) spelling of the same domain is the same address.
        ("user@XN--BCHER-KVA.DE", "user@bücher.de"),
    ],
)
def test_email_is_lower_cased_and_trimmed(typed: str, stored: str) -> None:
    assert normalize_email(typed) == stored


@pytest.mark.parametrize(
    "typed",
    ["no-at-sign", "a@b", "a@@b.com", "a b@c.com", "@example.com", "ada@", "a@localhost"],
)
def test_invalid_email_says_why(typed: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_email(typed, field="emails[0]")
    assert caught.value.extra["field"] == "emails[0]"
    assert "not a valid email address" in caught.value.detail
    assert "\n" not in caught.value.detail


@pytest.mark.parametrize("typed", ["", "   "])
def test_empty_email_is_refused(typed: str) -> None:
    with pytest.raises(InvalidInput, match="cannot be empty"):
        normalize_email(typed)


@given(st.lists(st.booleans(), min_size=16, max_size=16), st.sampled_from(["", " ", "\t"]))
def test_email_case_and_padding_never_matter(upper: list[bool], pad: str) -> None:
    address = "ada.king@example.org"
    typed = "".join(ch.upper() if flag else ch for ch, flag in zip(address, upper, strict=False))
    typed += address[len(upper) :]
    assert normalize_email(pad + typed + pad) == address


def test_error_messages_say_what_was_typed_and_why() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(" call me ", "GB")
    assert caught.value.detail.startswith("' call me ' is not a phone number: ")
    with pytest.raises(InvalidInput) as caught:
        normalize_phone("12", "GB")
    assert caught.value.detail == (
        "'12' is not a possible phone number in region GB (add the country code, like +44)"
    )
    assert caught.value.extra["field"] == "phone"
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(" ", "GB")
    assert caught.value.detail == "a phone number cannot be empty"
    assert caught.value.extra["field"] == "phone"
    with pytest.raises(InvalidInput) as caught:
        normalize_email(" ada@ ")
    assert caught.value.detail.startswith("'ada@' is not a valid email address: ")
    assert caught.value.extra["field"] == "email"
    with pytest.raises(InvalidInput) as caught:
        normalize_email(" ")
    assert caught.value.detail == "an email address cannot be empty"
    assert caught.value.extra["field"] == "email"


@pytest.mark.parametrize(
    "typed",
    [
        "12345",
        "+44 20 7946 0018",
        "(020) 7946-0018",
        "020.7946.0018",
        "020/7946/0018",
        "020\u00a07946\u00a00018",
        "  02079460018  ",
    ],
)
def test_what_a_search_treats_as_a_phone(typed: str) -> None:
    assert looks_like_phone(typed)
    assert not looks_like_email(typed)


@pytest.mark.parametrize(
    "typed",
    [
        "1234",
        "12 34",
        "X-12345",
        "Studio 54321",
        "54321 Studio",
        "Apt 12345",
        "020 7946 0018 x2",
        "#12345",
    ],
)
def test_what_a_search_does_not_treat_as_a_phone(typed: str) -> None:
    assert not looks_like_phone(typed)


def test_what_a_search_treats_as_an_email() -> None:
    assert looks_like_email("ada@example.com") and looks_like_email("@")
    assert not looks_like_email("Ada Lovelace")


# -- through the API, on both engines ----------------------------------------------------------


async def test_contact_stores_normalised_values(
    kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    headers = await kith_auth("agent")
    response = await kith_client.post(
        "/api/contacts",
        json={
            "name": "Ada",
            "emails": [{"address": "  Ada@Example.COM "}],
            "phones": [{"number": "+44 (0) 20 7946-0018"}, {"number": "0044\u00a0161 496 0000"}],
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [e["address"] for e in body["emails"]] == ["ada@example.com"]
    assert [p["number"] for p in body["phones"]] == [LONDON, "+441614960000"]


async def test_default_region_setting_reads_national_numbers(
    kith: Kith, kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    headers = await kith_auth("agent")
    kith.settings = dataclasses.replace(kith.settings, default_region="DE")
    response = await kith_client.post(
        "/api/contacts",
        json={"name": "Bert", "phones": [{"number": "030 123456"}]},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["phones"][0]["number"] == "+4930123456"


async def test_invalid_second_phone_names_it(
    kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    headers = await kith_auth("agent")
    response = await kith_client.post(
        "/api/contacts",
        json={"name": "Ada", "phones": [{"number": "020 7946 0018"}, {"number": "12"}]},
        headers=headers,
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "phones[1]"
    assert "'12'" in problem["detail"]


async def test_a_name_with_digits_is_searched_as_a_name(
    kith_client: httpx.AsyncClient, kith_auth: TokenFactory
) -> None:
    headers = await kith_auth("agent")
    for name in ("Studio 54321", "Studio 54"):
        created = await kith_client.post("/api/contacts", json={"name": name}, headers=headers)
        assert created.status_code == 201, created.text
    response = await kith_client.get("/api/contacts", params={"q": "Studio 54321"}, headers=headers)
    assert response.status_code == 200, response.text
    assert [item["name"] for item in response.json()["items"]] == ["Studio 54321"]
