"""Shared pieces of the 1C plugin's tests: fixture files, settings, reading what was stored."""

from __future__ import annotations

import uuid
from pathlib import Path

from kith import ContactOut, ContactService, InteractionOut, InteractionService, Kith
from kith.plugins.onec.tables import OnecLink

FIXTURES = Path(__file__).parent / "fixtures" / "onec"
ROOT = Path(__file__).resolve().parents[1]


def _samples() -> Path:
    """``../shared/samples/1c`` beside the project (or beside a folder holding it)."""
    for folder in ROOT.parents:
        candidate = folder / "shared" / "samples" / "1c"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "samples" / "1c"


SAMPLES = _samples()
EXCHANGE_USER = "1c-exchange@firm.example"
EXCHANGE_PASSWORD = "correct horse battery staple"

SETTINGS_TOML = f"""
[onec]
exchange_user = "{EXCHANGE_USER}"
file_limit_bytes = 65536
batch_size = 2
import_seconds = 30
"""


async def contact_of(kith: Kith, onec_id: str) -> ContactOut:
    link = await OnecLink.select().where(OnecLink.onec_id == onec_id).first()
    assert link is not None, f"no link for {onec_id}"
    return await ContactService(kith).get(link["kith_id"])


async def timeline(kith: Kith, contact_id: uuid.UUID) -> list[InteractionOut]:
    page = await InteractionService(kith).timeline(contact_id)
    return list(page.items)
