"""The API reference under /schema works without internet access: every script, style sheet
and icon the page loads is served by Kith itself."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

EXPECTED_TYPES = {"script": "text/javascript", "stylesheet": "text/css", "icon": "image/png"}


class _Assets(HTMLParser):
    """The URLs a browser fetches to show the page, by what they are."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" and values.get("src"):
            self.found.append(("script", values["src"]))
        elif tag == "link" and values.get("href"):
            self.found.append((values.get("rel", ""), values["href"]))
        elif tag in ("img", "iframe") and values.get("src"):
            self.found.append((tag, values["src"]))


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
async def test_the_api_reference_loads_nothing_from_elsewhere(
    kith_client: httpx.AsyncClient, page: str
) -> None:
    response = await kith_client.get(page)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    parser = _Assets()
    parser.feed(response.text)
    kinds = {kind for kind, _ in parser.found}
    assert kinds == set(EXPECTED_TYPES), parser.found
    for kind, url in parser.found:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{kind} from elsewhere: {url}"
        assert url.startswith("/schema/"), url
        # Without a token, as a browser asks for it.
        asset = await kith_client.get(url)
        assert asset.status_code == 200, (url, asset.text[:200])
        assert asset.headers["content-type"].startswith(EXPECTED_TYPES[kind]), url
        assert len(asset.content) > 500, url


async def test_the_openapi_document_is_still_served(kith_client: httpx.AsyncClient) -> None:
    document = await kith_client.get("/schema/openapi.json")
    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.1")
    assert (await kith_client.get("/schema/openapi.yaml")).status_code == 200
    missing = await kith_client.get("/schema/assets/no-such-file.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
