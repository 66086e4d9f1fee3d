"""Settings: defaults, kith.toml, environment over file, and one readable line per bad value."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from kith.bootstrap import open_kith
from kith.http import create_app
from kith.services.users import UserService
from kith.settings import Settings, SettingsError, load_settings
from kith.tables import ApiToken


def write_toml(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text(text, encoding="utf-8")


def test_defaults_need_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.home == (tmp_path / "kith-data").resolve()
    assert settings.database_kind == "sqlite"
    assert settings.sqlite_path == (tmp_path / "kith-data" / "kith.sqlite3").resolve()
    assert settings.default_region == "GB"
    assert settings.timezone == "UTC"
    assert settings.log_format == "auto"
    assert settings.max_request_bytes == 1_048_576
    assert settings.token_cache_seconds == 5.0


def test_values_from_kith_toml(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        'default_region = "de"\ntimezone = "Europe/Berlin"\nlog_format = "json"\n'
        'max_request_bytes = 65536\ndatabase_url = "postgresql://kith@db.internal:5433/crm"\n'
        "token_cache_seconds = 30\n"
        '\n[telephony]\nprovider = "twilio"\n',
    )
    settings = load_settings({"KITH_HOME": str(tmp_path)})
    assert settings.default_region == "DE"
    assert settings.timezone == "Europe/Berlin"
    assert settings.log_format == "json"
    assert settings.max_request_bytes == 65536
    assert settings.token_cache_seconds == 30.0
    assert settings.database_kind == "postgresql"
    assert settings.database_url == "postgresql://kith@db.internal:5433/crm"
    # A plugin's own table is kept for it.
    assert settings.section("telephony") == {"provider": "twilio"}
    assert settings.section("absent") == {}


def test_environment_beats_kith_toml(tmp_path: Path) -> None:
    write_toml(
        tmp_path, 'default_region = "DE"\ntimezone = "Europe/Berlin"\ntoken_cache_seconds = 30\n'
    )
    settings = load_settings(
        {
            "KITH_HOME": str(tmp_path),
            "KITH_DEFAULT_REGION": "US",
            "KITH_TIMEZONE": "Asia/Tokyo",
            "KITH_TOKEN_CACHE_SECONDS": "0.5",
        }
    )
    assert settings.default_region == "US"
    assert settings.timezone == "Asia/Tokyo"
    assert settings.token_cache_seconds == 0.5


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("300", 300.0), ("2.5", 2.5)])
def test_token_cache_seconds_from_environment(tmp_path: Path, value: str, seconds: float) -> None:
    """0 turns the cache off; 300 is the longest allowed."""
    settings = load_settings({"KITH_HOME": str(tmp_path), "KITH_TOKEN_CACHE_SECONDS": value})
    assert settings.token_cache_seconds == seconds


def test_log_format_is_case_insensitive(tmp_path: Path) -> None:
    assert load_settings({"KITH_HOME": str(tmp_path), "KITH_LOG_FORMAT": "JSON"}).log_format == (
        "json"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KITH_DATABASE_URL", "mysql://kith@localhost/kith"),
        ("KITH_DATABASE_URL", "kith.sqlite3"),
        ("KITH_DATABASE_URL", "postgresql://"),
        ("KITH_DATABASE_URL", "postgresql://db.internal"),
        ("KITH_DATABASE_URL", "postgresql://db.internal:port/kith"),
        ("KITH_DATABASE_URL", "postgresql://db.internal:99999/kith"),
        ("KITH_DATABASE_URL", "sqlite://"),
        ("KITH_DEFAULT_REGION", "XX"),
        ("KITH_DEFAULT_REGION", "Britain"),
        ("KITH_DEFAULT_REGION", ""),
        ("KITH_TIMEZONE", "Mars/Olympus_Mons"),
        ("KITH_TIMEZONE", "../../etc/passwd"),
        ("KITH_TIMEZONE", ""),
        ("KITH_LOG_FORMAT", "xml"),
        ("KITH_MAX_REQUEST_BYTES", "1MB"),
        ("KITH_MAX_REQUEST_BYTES", "-1"),
        ("KITH_MAX_REQUEST_BYTES", "100"),
        ("KITH_TOKEN_CACHE_SECONDS", "-1"),
        ("KITH_TOKEN_CACHE_SECONDS", "300.5"),
        ("KITH_TOKEN_CACHE_SECONDS", "3600"),
        ("KITH_TOKEN_CACHE_SECONDS", "5s"),
        ("KITH_TOKEN_CACHE_SECONDS", ""),
        ("KITH_TOKEN_CACHE_SECONDS", "nan"),
        ("KITH_PUBLIC_URL", "crm.example.com"),
        ("KITH_PUBLIC_URL", "ftp://crm.example.com"),
        ("KITH_PUBLIC_URL", "https://"),
        ("KITH_PUBLIC_URL", "https://crm.example.com/?from=mail"),
        ("KITH_PUBLIC_URL", "https://crm.example.com:99999"),
        ("KITH_PUBLIC_URL", "https://crm example.com"),
    ],
)
def test_invalid_value_is_one_line_naming_the_setting(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"KITH_HOME": str(tmp_path), name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}:")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('default_region = "XX"', "default_region"),
        ('timezone = "Nowhere/Town"', "timezone"),
        ('log_format = "fancy"', "log_format"),
        ("max_request_bytes = 10", "max_request_bytes"),
        ('max_request_bytes = "lots"', "max_request_bytes"),
        ('database_url = "oracle://x/y"', "database_url"),
        ("token_cache_seconds = -0.5", "token_cache_seconds"),
        ("token_cache_seconds = 301", "token_cache_seconds"),
        ('token_cache_seconds = "a while"', "token_cache_seconds"),
        ("token_cache_seconds = true", "token_cache_seconds"),
        ('public_url = "localhost:8000"', "public_url"),
        ("public_url = 8000", "public_url"),
    ],
)
def test_invalid_value_in_toml_names_key_and_file(tmp_path: Path, line: str, key: str) -> None:
    write_toml(tmp_path, line + "\n")
    with pytest.raises(SettingsError) as caught:
        load_settings({"KITH_HOME": str(tmp_path)})
    message = str(caught.value)
    assert message.startswith(f"{key} in kith.toml:")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("https://crm.example.com", "https://crm.example.com"),
        ("https://crm.example.com/", "https://crm.example.com"),
        ("http://10.0.0.5:8000/kith/", "http://10.0.0.5:8000/kith"),
    ],
)
def test_public_url_makes_absolute_links(tmp_path: Path, value: str, stored: str) -> None:
    settings = load_settings({"KITH_HOME": str(tmp_path), "KITH_PUBLIC_URL": value})
    assert settings.public_url == stored
    assert settings.link("/api/x?y=1") == f"{stored}/api/x?y=1"
    # A request's own address does not override it.
    assert settings.link("/api/x", base="http://internal:8000/") == f"{stored}/api/x"


def test_without_public_url_links_point_at_this_machine(tmp_path: Path) -> None:
    settings = load_settings({"KITH_HOME": str(tmp_path)})
    assert settings.public_url == ""
    assert settings.link("/api/x") == "http://127.0.0.1:8000/api/x"
    assert settings.link("/api/x", base="http://kith.test/") == "http://kith.test/api/x"


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    write_toml(tmp_path, "default_region = \n[broken\n")
    with pytest.raises(SettingsError) as caught:
        load_settings({"KITH_HOME": str(tmp_path)})
    message = str(caught.value)
    assert "kith.toml" in message
    assert "not valid TOML" in message
    assert "\n" not in message


def test_home_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "not-a-dir"
    target.write_text("", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"^KITH_HOME:"):
        load_settings({"KITH_HOME": str(target)})


def test_database_password_is_not_repeated_in_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {"KITH_HOME": str(tmp_path), "KITH_DATABASE_URL": "mysql://kith:s3cret-pw@db/kith"}
        )
    assert "s3cret-pw" not in str(caught.value)


# -- settings drive a running installation (both engines) --------------------------------------


async def test_toml_settings_reach_the_running_app(kith_settings: Settings) -> None:
    """kith.toml next to a real database (each engine): its request limit is enforced."""
    write_toml(kith_settings.home, "max_request_bytes = 2048\n")
    settings = load_settings(
        {
            "KITH_HOME": str(kith_settings.home),
            "KITH_DATABASE_URL": kith_settings.database_url,
            "KITH_LOG_FORMAT": "json",
        }
    )
    assert settings.max_request_bytes == 2048
    kith = open_kith(settings)
    await kith.start()
    try:
        await UserService(kith).add("owner@firm.example", "admin")
        issued = await UserService(kith).create_token("owner@firm.example")
        headers = {"Authorization": f"Bearer {issued.secret}", "Content-Type": "application/json"}
        app = create_app(kith, manage_lifecycle=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kith.test") as client:
            health = await client.get("/api/health")
            assert health.json()["database"] == settings.database_kind
            too_big = await client.post(
                "/api/contacts",
                content=b'{"name": "' + b"x" * 4096 + b'"}',
                headers=headers,
            )
            assert too_big.status_code == 413
            small = await client.post("/api/contacts", content=b'{"name": "Ada"}', headers=headers)
            assert small.status_code == 201
    finally:
        await kith.close()


async def test_token_cache_off_reaches_the_running_app(kith_settings: Settings) -> None:
    """KITH_TOKEN_CACHE_SECONDS=0 (each engine): a token revoked by another process is refused
    on the next request, where the default would still accept it for a few seconds."""
    settings = load_settings(
        {
            "KITH_HOME": str(kith_settings.home),
            "KITH_DATABASE_URL": kith_settings.database_url,
            "KITH_LOG_FORMAT": "json",
            "KITH_TOKEN_CACHE_SECONDS": "0",
        }
    )
    kith = open_kith(settings)
    await kith.start()
    try:
        await UserService(kith).add("owner@firm.example", "admin")
        issued = await UserService(kith).create_token("owner@firm.example")
        headers = {"Authorization": f"Bearer {issued.secret}"}
        app = create_app(kith, manage_lifecycle=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kith.test") as client:
            assert (await client.get("/api/contacts", headers=headers)).status_code == 200
            # What `kith tokens revoke` in another process writes.
            await (
                ApiToken.update({ApiToken.revoked_at: dt.datetime.now(dt.UTC)})
                .where(ApiToken.id == issued.token.id)
                .run()
            )
            refused = await client.get("/api/contacts", headers=headers)
            assert refused.status_code == 401
            assert "revoked" in refused.json()["detail"]
    finally:
        await kith.close()
