"""The interaction table's indexes after the migrations: each lookup users depend on (a
contact's timeline and its deletion, someone's tasks, a user's removal, tasks coming due) is
served by an index, while logging an ordinary interaction writes no entry for a due time or an
assignee it does not have."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kith.runtime import Kith
from kith.tables import Interaction

AT = "2030-01-01T00:00:00+00:00"
ID = str(uuid.uuid4())

# (what a user does, the lookup it makes, the indexes that can serve it)
BY_CONTACT = ("kith_interaction_timeline", "kith_interaction_contact_kind")
LOOKUPS = [
    (
        "a contact's timeline",
        f"SELECT id FROM kith_interaction WHERE contact = '{ID}' ORDER BY occurred_at DESC",
        BY_CONTACT,
    ),
    (
        "deleting a contact",
        f"DELETE FROM kith_interaction WHERE contact = '{ID}'",
        BY_CONTACT,
    ),
    (
        "removing a user",
        f"UPDATE kith_interaction SET assignee = NULL WHERE assignee = '{ID}'",
        ("kith_interaction_assignee",),
    ),
    (
        "someone's tasks, of every kind",
        f"SELECT id FROM kith_interaction WHERE assignee = '{ID}' AND due_at < '{AT}'",
        ("kith_interaction_assignee",),
    ),
    (
        "interactions due before a time",
        f"SELECT id FROM kith_interaction WHERE due_at < '{AT}' ORDER BY due_at",
        ("kith_interaction_due_at",),
    ),
]


async def _plan(kith: Kith, sql: str) -> str:
    if kith.settings.database_url.startswith("sqlite"):
        rows = await Interaction.raw(f"EXPLAIN QUERY PLAN {sql}").run()
        return "\n".join(str(row["detail"]) for row in rows)
    # A handful of rows is cheaper to scan; ask which index the planner would use for a table
    # of any size.
    plans: list[Any] = []
    async with Interaction._meta.db.transaction():
        await Interaction.raw("SET LOCAL enable_seqscan = off").run()
        plans = await Interaction.raw(f"EXPLAIN {sql}").run()
    return "\n".join(str(row["QUERY PLAN"]) for row in plans)


@pytest.mark.parametrize(("doing", "sql", "indexes"), LOOKUPS, ids=[row[0] for row in LOOKUPS])
async def test_each_lookup_is_served_by_an_index(
    kith: Kith, doing: str, sql: str, indexes: tuple[str, ...]
) -> None:
    plan = await _plan(kith, sql)
    assert any(index in plan for index in indexes), (doing, plan)


async def test_an_interaction_without_due_time_or_assignee_is_not_in_their_indexes(
    kith: Kith,
) -> None:
    if kith.settings.database_url.startswith("sqlite"):
        rows = await Interaction.raw(
            "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'kith_interaction' "
            "AND type = 'index' AND sql IS NOT NULL"
        ).run()
        definitions = {row["name"]: row["sql"] for row in rows}
    else:
        rows = await Interaction.raw(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'kith_interaction'"
        ).run()
        definitions = {row["indexname"]: row["indexdef"] for row in rows}
    assert "kith_interaction_contact" not in definitions
    assert "due_at IS NOT NULL" in definitions["kith_interaction_due_at"]
    assert "assignee IS NOT NULL" in definitions["kith_interaction_assignee"]
