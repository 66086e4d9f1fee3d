"""The OpenAPI document tells the truth: schemathesis, with every check it has, finds nothing
the server does that the document does not say (statuses, content types, bodies, constraints,
which operations need a token)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from kith.bootstrap import open_kith
from kith.http import create_app
from kith.plugin_manager import load_plugin_manager
from kith.services.users import UserService
from kith.settings import Settings
from kith.testing import settings_for
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())
# What schemathesis accepts for valid data by default.
ACCEPTED = ["2xx", "401", "403", "404"]
# What it accepts as a refusal of invalid data by default.
REFUSED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]


async def _admin_token(kith_settings: Settings) -> str:
    kith = open_kith(kith_settings, plugin_manager=load_plugin_manager())
    await kith.start()
    try:
        users = UserService(kith)
        await users.add("admin@conformance.example", "admin")
        return (await users.create_token("admin@conformance.example")).secret
    finally:
        await kith.close()


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, _kith_templates: Any) -> Any:
    # SQLite only, on a database of this module's own: the generated requests build up data
    # across operations, and the app runs on schemathesis's own event loop.
    home: Path = tmp_path_factory.mktemp("openapi") / "kith-home"
    kith_settings = settings_for(home, _kith_templates.sqlite_copy(home))
    token = asyncio.run(_admin_token(kith_settings))
    kith = open_kith(kith_settings, plugin_manager=load_plugin_manager())
    app = create_app(kith, dispatch=False)
    config = SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": f"Bearer {token}"},
            # Valid data may still break a rule JSON Schema cannot state: a cursor only this
            # server hands out, a purpose declared in the settings, an email address that must
            # have a deliverable form, one field needed unless another is given, a record that
            # must exist or be in the right state. The answer is then 422 or 409, never a 400.
            "checks": {
                "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "409", "422"]},
                # A body longer than the server takes (`max_request_bytes`) is refused before it
                # is read: 413, which schemathesis does not count among refusals.
                "negative_data_rejection": {"expected-statuses": [*REFUSED, "413"]},
            },
            "operations": [
                {
                    # A withdrawal link's token is signed by the server: one it did not sign is
                    # refused (400), one past its date has expired (410).
                    "include-path": "/api/privacy/consent/withdraw",
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400", "410"]}
                    },
                }
            ],
        }
    )
    return schemathesis.openapi.from_asgi("/schema/openapi.json", app, config=config)


# Each operation with valid data and with data the document rules out: schemathesis's pytest
# integration cannot be used, it relies on a pytest internal that pytest 9 removed.
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
# About 25 requests an operation, half of them with data the document rules out.
EXAMPLES_PER_MODE = 13


def test_every_operation_does_what_the_document_says(api_schema: Any) -> None:
    failures: dict[str, str] = {}
    tested = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        tested.append(operation.label)
        for mode in MODES:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_MODE,
                derandomize=True,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                case.call_and_validate(checks=ALL_CHECKS)

            try:
                run()
            except Unsatisfiable:
                # Nothing the document rules out can be sent (an operation without inputs).
                continue
            except (Exception, BaseExceptionGroup) as exc:
                # A failing request can carry a body of a megabyte; its start says enough.
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:4000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    documented = [
        (method, path)
        for path, item in api_schema.raw_schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(tested) == len(documented) > 50


PUBLIC = {
    ("get", "/api/health"),
    ("post", "/f/{form_id}"),
    ("get", "/f/{form_id}"),
    ("get", "/f/{form_id}/embed"),
    ("get", "/f/{form_id}/token"),
    ("get", "/f/{form_id}/confirm"),
    ("get", "/api/privacy/public-key"),
    ("get", "/api/privacy/consent/withdraw"),
    ("post", "/api/privacy/consent/withdraw"),
    # 1C's exchange checks the exchange user's password itself (HTTP Basic, then a cookie).
    ("get", "/1c/exchange"),
    ("post", "/1c/exchange"),
    ("get", "/bitrix/admin/1c_exchange.php"),
    ("post", "/bitrix/admin/1c_exchange.php"),
    # Telephony providers' webhooks: signed by the provider, no token.
    ("post", "/api/telephony/twilio/status"),
    ("post", "/api/telephony/twilio/recording"),
    ("get", "/api/telephony/zadarma"),
    ("post", "/api/telephony/zadarma"),
    ("post", "/api/telephony/mango/events/call"),
    ("post", "/api/telephony/mango/events/summary"),
    ("post", "/api/telephony/mango/events/record/added"),
    ("get", "/api/messengers/{channel}"),
    ("post", "/api/messengers/{channel}"),
}


def test_the_document_says_who_needs_a_token_and_what_errors_look_like(api_schema: Any) -> None:
    document = api_schema.raw_schema
    operations = {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert set(operations) >= PUBLIC
    for key, operation in operations.items():
        responses = operation["responses"]
        if key in PUBLIC:
            assert operation["security"] == [], key
            assert "401" not in responses, key
            continue
        assert operation["security"] == [{"bearer": []}], key
        for status in ("401", "403"):
            content = responses[status]["content"]
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }, key
    create = operations[("post", "/api/contacts")]["responses"]
    assert {"400", "409", "413", "415", "422"} <= set(create)
    assert "404" in operations[("get", "/api/contacts/{contact_id}")]["responses"]
    # Constraints the server enforces on list items, which the framework left out.
    tags = document["components"]["schemas"]["ContactCreate"]["properties"]["tags"]
    assert tags["items"]["minLength"] == 1
    # An amount is read from a JSON number as well as from a string.
    amount = document["components"]["schemas"]["InteractionCreate"]["properties"]["amount"]
    assert {"type": "number"} in next(n["anyOf"] for n in amount["anyOf"] if "anyOf" in n)
    withdraw = operations[("get", "/api/privacy/consent/withdraw")]["responses"]
    assert "text/html" in withdraw["200"]["content"]
    assert "text/html" in withdraw["410"]["content"]
    ropa = operations[("get", "/api/privacy/ropa")]["responses"]["200"]["content"]
    assert {"application/json", "text/markdown"} <= set(ropa)
