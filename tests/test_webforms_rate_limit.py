"""Submissions of one client address to one form are rate-limited, on litestar's memory store
in one process and on Redis (``KITH_REDIS_URL``) when several processes serve."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest
from kith import Kith
from kith.plugins.webforms import signing
from kith.plugins.webforms.tables import WebFormSubmission
from kith.settings import Settings
from kith.testing import TokenFactory, settings_for

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_unavailable() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return None
    except OSError as error:
        return f"no Redis on 127.0.0.1:6379 ({error})"


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        reason = redis_unavailable()
        if reason:
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
    return str(request.param)


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path, store: str) -> Settings:
    extra = {"redis_url": REDIS_URL} if store == "redis" else {}
    return settings_for(
        tmp_path / "kith-home",
        kith_database_url,
        webforms_min_fill_seconds="0",
        webforms_rate_per_client="3",
        **extra,
    )


async def test_a_client_over_the_limit_is_refused_and_nothing_stored(
    kith: Kith, kith_client, kith_auth: TokenFactory
):
    # A form id of its own: Redis keeps counting across tests.
    form_id = f"limited-{uuid.uuid4().hex[:8]}"
    body = {
        "id": form_id,
        "title": "Limited",
        "fields": [{"name": "email", "maps_to": "email", "required": True}],
    }
    created = await kith_client.post("/api/forms", json=body, headers=await kith_auth("admin"))
    assert created.status_code == 201
    token = signing.fill_token(signing.signing_key(kith.settings.home), form_id, time.time() - 5)

    codes = []
    for number in range(5):
        response = await kith_client.post(
            f"/f/{form_id}", data={"email": f"p{number}@example.com", "_kith_t": token}
        )
        codes.append(response.status_code)
    assert codes == [200, 200, 200, 429, 429]
    assert await WebFormSubmission.count().run() == 3
    # Reading the form is not limited.
    assert (await kith_client.get(f"/f/{form_id}")).status_code == 200
