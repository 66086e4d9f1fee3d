"""The first run as a new user meets it: `kith serve` on a fresh install prints a set-up code,
the browser's first visit creates the first admin with it, and afterwards there is no code
and no set-up page."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from test_serve import empty_database_url, start, stop, wait_for_health

CODE = re.compile(r"set-up code ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})")
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery"

__all__ = ["empty_database_url"]


def test_the_code_kith_serve_prints_creates_the_first_admin_once(
    empty_database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "kith-data"
    served = start(home, empty_database_url, tmp_path / "first")
    try:
        wait_for_health(served)
        found = CODE.search(served.output())
        assert found, served.output()
        base = f"http://127.0.0.1:{served.port}"
        with httpx.Client(base_url=base) as browser:
            first = browser.get("/")
            assert first.status_code == 302 and first.headers["location"] == "/setup"
            form = browser.get("/setup")
            token = CSRF.search(form.text)
            assert token
            made = browser.post(
                "/setup",
                data={
                    "_csrf_token": token.group(1),
                    "code": found.group(1),
                    "email": "owner@firm.example",
                    "password": PASSWORD,
                    "password_again": PASSWORD,
                },
            )
            assert made.status_code == 303 and made.headers["location"] == "/my-day"
            assert browser.get("/my-day").status_code == 200
            assert browser.get("/setup").status_code == 404
    finally:
        stop(served)

    again = start(home, empty_database_url, tmp_path / "again")
    try:
        wait_for_health(again)
        assert "set-up code" not in again.output()
        assert httpx.get(f"http://127.0.0.1:{again.port}/setup").status_code == 404
    finally:
        stop(again)
