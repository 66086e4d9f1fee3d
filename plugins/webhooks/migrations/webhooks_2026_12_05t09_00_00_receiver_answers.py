"""What receivers answer is kept sealed: its size, and its start as a personal field.

Deliveries recorded before kept the first 300 characters of an answer (and a redirect's
location) readable in ``error`` and in each attempt of ``history``; that text came from another
system and may quote the person. It is cut back here to Kith's own words (``HTTP 422``), which is
all the new version writes there. The old text is dropped, not sealed: a migration holds no keys.
"""

from __future__ import annotations

import json
import re
from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer, Text
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-05T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "receivers' answers sealed"

BATCH = 500
_HTTP = re.compile(r"^(HTTP \d{3})\b")
_EXCEPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::|$)")
# Written by Kith itself, or by the operating system about the connection: kept whole.
_OWN_WORDS = ("no answer within ", "not sent: ", "ConnectError", "ConnectTimeout")


def kith_words(error: str | None) -> str | None:
    """What is left of an old error once the receiver's text is taken out."""
    if error is None or error.startswith(_OWN_WORDS):
        return error
    status = _HTTP.match(error)
    if status:
        return status.group(1)
    exception = _EXCEPTION.match(error)
    # Other transport errors may quote what the receiver sent: their type name stays.
    return exception.group(1) if exception else "the receiver's answer is no longer kept"


def _history(value: Any) -> tuple[str, bool]:
    attempts = json.loads(value) if isinstance(value, str | bytes) else list(value or [])
    changed = False
    for attempt in attempts:
        if isinstance(attempt, dict) and attempt.get("error") is not None:
            kept = kith_words(attempt["error"])
            changed = changed or kept != attempt["error"]
            attempt["error"] = kept
    return json.dumps(attempts), changed


async def scrub() -> None:
    """Cut every delivery's error and attempts back to Kith's own words, a batch at a time."""
    engine = engine_finder()
    assert engine is not None
    last: Any = None
    while True:
        if last is None:
            query = QueryString(
                "SELECT id, error, history FROM webhooks_delivery ORDER BY id LIMIT {}", BATCH
            )
        else:
            query = QueryString(
                "SELECT id, error, history FROM webhooks_delivery WHERE id > {} "
                "ORDER BY id LIMIT {}",
                last,
                BATCH,
            )
        rows = await engine.run_querystring(query)
        if not rows:
            return
        for row in rows:
            error = kith_words(row["error"])
            history, history_changed = _history(row["history"])
            if error != row["error"] or history_changed:
                await engine.run_querystring(
                    QueryString(
                        "UPDATE webhooks_delivery SET error = {}, history = {} WHERE id = {}",
                        error,
                        history,
                        row["id"],
                    )
                )
        last = rows[-1]["id"]


def _params(secret: bool) -> dict[str, Any]:
    return {
        "default": None,
        "null": True,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": secret,
    }


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="webhooks", description=DESCRIPTION)
    manager.add_raw(scrub)
    manager.add_column(
        table_class_name="WebhookDelivery",
        tablename="webhooks_delivery",
        column_name="response_bytes",
        db_column_name="response_bytes",
        column_class_name="Integer",
        column_class=Integer,
        params=_params(secret=False),
        schema=None,
    )
    manager.add_column(
        table_class_name="WebhookDelivery",
        tablename="webhooks_delivery",
        column_name="response_text",
        db_column_name="response_text",
        column_class_name="Text",
        column_class=Text,
        params=_params(secret=True),
        schema=None,
    )
    return manager
