"""What the telephony plugin answers for one data subject: its personal fields, the providers
as recipients, and a contact's calls (for access requests, erasure and merges)."""

from __future__ import annotations

import uuid
from typing import Any

from kith import (
    ErasureOutcome,
    ExportSection,
    Kith,
    PersonalField,
    Recipient,
    RecipientNotice,
    move_subject_rows,
)
from kith.plugins.telephony.recordings import recording_summary
from kith.plugins.telephony.tables import TelephonyCall, TelephonyRecordingPiece

SOURCE = "telephony"
TABLE = str(TelephonyCall._meta.tablename)
PURPOSE = "customer_relationship"
RECORDINGS = "call_recordings"
PIECES = str(TelephonyRecordingPiece._meta.tablename)

NUMBER_FIELD = PersonalField(
    table=TABLE,
    column="number",
    category="contact_details",
    purposes=(PURPOSE,),
    description="The other party's phone number of a call (E.164)",
    owner=SOURCE,
)
RECORDING_FIELD = PersonalField(
    table=TABLE,
    column="recording_ref",
    category="communications",
    purposes=(PURPOSE,),
    description="Where the provider keeps the recording of a call (its URL or file name)",
    retention=RECORDINGS,
    owner=SOURCE,
)
PERSONAL_FIELDS = (NUMBER_FIELD, RECORDING_FIELD)

# Recipient name -> provider name.
PROVIDER_NAMES = {"Twilio": "twilio", "Zadarma": "zadarma", "Mango Office": "mango"}
_DESCRIPTIONS = {
    "twilio": "Twilio (cloud telephony) places and records calls; it holds the call records "
    "and recordings of calls with the contact",
    "zadarma": "Zadarma (cloud PBX) places and records calls; it holds the call records and "
    "recordings of calls with the contact",
    "mango": "Mango Office (cloud PBX) places and records calls; it holds the call records "
    "and recordings of calls with the contact",
}
RECIPIENTS = tuple(
    Recipient(
        name=name,
        description=_DESCRIPTIONS[provider],
        categories=("contact_details", "communications"),
        purposes=(PURPOSE,),
        country="US" if provider == "twilio" else None,
        safeguards="standard contractual clauses" if provider == "twilio" else None,
        owner=SOURCE,
    )
    for name, provider in PROVIDER_NAMES.items()
)


async def _revealed(kith: Kith, contact_id: uuid.UUID, row: dict[str, Any]) -> dict[str, Any]:
    sealed = {name: row[name] for name in ("number", "recording_ref") if row[name] is not None}
    if not sealed:
        return {}
    return dict(await kith.protector.reveal(contact_id, TABLE, row["id"], sealed))


async def export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    """The contact's calls: when, which way, with what outcome, the number and recording."""
    rows = await (
        TelephonyCall.select()
        .where(TelephonyCall.contact_id == contact_id)
        .order_by(TelephonyCall.started_at)
        .run()
    )
    if not rows:
        return None
    items = []
    for row in rows:
        opened = await _revealed(kith, contact_id, row)
        items.append(
            {
                "provider": row["provider"],
                "direction": row["direction"],
                "number": opened.get("number"),
                "extension": row["extension"],
                "started_at": row["started_at"],
                "answered_at": row["answered_at"],
                "ended_at": row["ended_at"],
                "talk_seconds": row["talk_s"],
                "outcome": row["outcome"],
                "recording": opened.get("recording_ref"),
                "recording_kept": recording_summary(row),
            }
        )
    return ExportSection(
        source=SOURCE,
        description="Phone calls with you: when, which way, the number, the outcome, where "
        "the telephony provider keeps a recording, and the recordings Kith keeps (their audio "
        "files are handed over with this export)",
        tables={"calls": items},
    )


async def erase(contact_id: uuid.UUID, dry_run: bool = False) -> list[ErasureOutcome]:
    """Delete the contact's calls, with their numbers, recording references and the stored
    recordings (whose key the erasure destroys too). Idempotent."""
    found = int(await TelephonyCall.count().where(TelephonyCall.contact_id == contact_id))
    pieces = int(
        await TelephonyRecordingPiece.count().where(
            TelephonyRecordingPiece.contact_id == contact_id
        )
    )
    outcomes = []
    if not dry_run:
        await TelephonyRecordingPiece.delete().where(
            TelephonyRecordingPiece.contact_id == contact_id
        )
        await TelephonyCall.delete().where(TelephonyCall.contact_id == contact_id)
    if found:
        outcomes.append(
            ErasureOutcome(source=SOURCE, location=TABLE, method="deleted", count=found)
        )
    else:
        outcomes.append(ErasureOutcome(source=SOURCE, location=TABLE, method="not_present"))
    if pieces:
        outcomes.append(
            ErasureOutcome(source=SOURCE, location=PIECES, method="deleted", count=pieces)
        )
    return outcomes


async def _recordings(kith: Kith, contact_id: uuid.UUID, provider: str) -> list[str]:
    rows = await (
        TelephonyCall.select(TelephonyCall.id, TelephonyCall.number, TelephonyCall.recording_ref)
        .where(
            (TelephonyCall.contact_id == contact_id)
            & (TelephonyCall.provider == provider)
            & TelephonyCall.recording_ref.is_not_null()
        )
        .run()
    )
    return [str((await _revealed(kith, contact_id, row))["recording_ref"]) for row in rows]


async def _had_calls(contact_id: uuid.UUID, provider: str) -> bool:
    return bool(
        await TelephonyCall.exists().where(
            (TelephonyCall.contact_id == contact_id) & (TelephonyCall.provider == provider)
        )
    )


def _none() -> RecipientNotice:
    return RecipientNotice(
        outcome="not_applicable", detail="no call with this contact went through this provider"
    )


async def notify_preview(
    kith: Kith, recipient: Recipient, contact_id: uuid.UUID
) -> RecipientNotice | None:
    provider = PROVIDER_NAMES.get(recipient.name)
    if recipient.owner != SOURCE or provider is None:
        return None
    if not await _had_calls(contact_id, provider):
        return _none()
    recordings = await _recordings(kith, contact_id, provider)
    return RecipientNotice(
        outcome="done",
        detail=f"{len(recordings)} recording(s) would be deleted at the provider",
        count=len(recordings),
    )


async def notify(
    kith: Kith, recipient: Recipient, action: str, contact_id: uuid.UUID
) -> RecipientNotice | None:
    """Art. 19: on erasure, delete the contact's recordings where the provider's API allows
    (Twilio), and say what is left to do by hand where it does not. The provider keeps no
    copy of Kith's contact data, so other actions have nothing to pass on."""
    provider = PROVIDER_NAMES.get(recipient.name)
    if recipient.owner != SOURCE or provider is None:
        return None
    if not await _had_calls(contact_id, provider):
        return _none()
    if action != "erasure":
        return RecipientNotice(
            outcome="not_applicable",
            detail="the provider holds call records only, not the contact's details",
        )
    recordings = await _recordings(kith, contact_id, provider)
    if not recordings:
        return RecipientNotice(outcome="done", detail="no recording of these calls was kept")
    if provider != "twilio":
        return RecipientNotice(
            outcome="failed",
            detail=f"{recipient.name} offers no API to delete recordings: delete "
            f"{len(recordings)} recording(s) of these calls in its account",
        )
    from kith.plugins.telephony.settings import settings_of
    from kith.plugins.telephony.twilio import TwilioProvider

    twilio = TwilioProvider(settings_of(kith).twilio)
    deleted = 0
    for ref in recordings:
        if await twilio.delete_recording(ref):
            deleted += 1
    if deleted < len(recordings):
        return RecipientNotice(
            outcome="failed",
            detail=f"Twilio deleted {deleted} of {len(recordings)} recording(s); delete the "
            "rest in its console",
            count=deleted,
        )
    return RecipientNotice(
        outcome="done", detail=f"Twilio deleted {deleted} recording(s)", count=deleted
    )


async def merge(kith: Kith, survivor: uuid.UUID, losers: list[uuid.UUID]) -> dict[str, Any] | None:
    """Calls of contacts merged into ``survivor`` become its own (sealed again under its key,
    their recordings too)."""
    from kith.plugins.telephony.recordings import RecordingService

    moved: dict[str, Any] = {}
    for loser in losers:
        ids = await move_subject_rows(
            kith, TelephonyCall, TelephonyCall.contact_id == loser, survivor
        )
        await RecordingService(kith).reseal(list(ids), loser, survivor)
        if ids:
            moved[str(loser)] = [str(i) for i in ids]
    return moved or None


async def unmerge(kith: Kith, survivor: uuid.UUID, note: dict[str, Any] | None) -> None:
    from kith.plugins.telephony.recordings import RecordingService

    for loser, ids in (note or {}).items():
        back = await move_subject_rows(
            kith,
            TelephonyCall,
            TelephonyCall.id.is_in([uuid.UUID(i) for i in ids])
            & (TelephonyCall.contact_id == survivor),
            uuid.UUID(loser),
        )
        await RecordingService(kith).reseal(list(back), survivor, uuid.UUID(loser))
