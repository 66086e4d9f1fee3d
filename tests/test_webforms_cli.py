"""``kith forms``: add, list, show and disable forms from the command line."""

from __future__ import annotations

import json

from kith.settings import Settings
from kith.testing import KithCli


def env_of(settings: Settings) -> dict[str, str]:
    return {
        "KITH_HOME": str(settings.home),
        "KITH_DATABASE_URL": settings.database_url,
        "KITH_LOG_FORMAT": "json",
    }


def test_forms_are_added_listed_shown_and_disabled(kith_cli: KithCli, kith_settings: Settings):
    env = env_of(kith_settings)
    added = kith_cli(
        "forms", "add", "quote", "--title", "Get a quote",
        "--field", "name=name!", "--field", "email=email!", "--field", "note=message",
        "--purpose", "marketing=Send me offers",
        "--origin", "https://shop.example",
        "--task", "Call back", "--task-minutes", "30",
        env=env,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "/f/quote/embed" in added.output

    listed = kith_cli("forms", "list", env=env)
    assert "quote" in listed.output and "https://shop.example" in listed.output

    shown = json.loads(kith_cli("forms", "show", "quote", env=env).output)
    assert shown["task"] == {"summary": "Call back", "due_minutes": 30}
    assert [f["maps_to"] for f in shown["fields"]] == ["name", "email", "message"]
    assert shown["fields"][0]["required"] is True

    assert kith_cli("forms", "disable", "quote", env=env).exit_code == 0
    assert json.loads(kith_cli("forms", "show", "quote", env=env).output)["active"] is False


def test_a_form_without_email_or_phone_is_refused_readably(
    kith_cli: KithCli, kith_settings: Settings
):
    result = kith_cli(
        "forms", "add", "bad", "--title", "Bad", "--field", "name=name", env=env_of(kith_settings)
    )
    assert result.exit_code != 0
    assert "email or phone" in result.output
    assert "Traceback" not in result.output
