"""Core's side of the data-subject seams: checks before processing, and access reports.

Core calls these; plugins (the privacy plugin above all) answer through the hooks
``kith_check_new_contact``, ``kith_check_processing`` and ``kith_record_access``. Without
plugins every check passes and nothing is recorded, so core works on its own.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kith.actor import SYSTEM, Actor
from kith.errors import Conflict, InvalidInput, KithError
from kith.subjects import Access, ConsentGiven, ConsentLine, ConsentReceipt

if TYPE_CHECKING:
    from kith.runtime import Kith


class ProcessingRefused(Conflict):
    """A plugin refused an activity on a contact's data (a restricted contact, say)."""

    title = "Processing refused"


def _has_hook(kith: Kith, name: str) -> bool:
    plugins = getattr(kith, "plugins", None)
    return plugins is not None and plugins.implements(name)


async def check_new_contact(
    kith: Kith,
    contact_id: uuid.UUID,
    emails: Sequence[str],
    phones: Sequence[str],
    override_reason: str | None = None,
    actor: Actor = SYSTEM,
    *,
    positions: Mapping[str, Sequence[int]] | None = None,
) -> None:
    """Let plugins refuse a new contact, or emails and phones new to an existing one (a raised
    error propagates to the caller).

    ``positions`` is for a caller that passes only some of the values it was sent (a change
    passes the ones the contact does not hold yet): ``{"emails": [...], "phones": [...]}``,
    where each value passed stands in the caller's own list. A plugin's error naming
    ``emails[i]`` or ``phones[i]`` then names that position instead, so it points at what the
    caller sent.
    """
    if not _has_hook(kith, "kith_check_new_contact"):
        return
    assert kith.plugins is not None
    try:
        await kith.plugins.call_async(
            "kith_check_new_contact",
            kith=kith,
            contact_id=contact_id,
            emails=list(emails),
            phones=list(phones),
            override_reason=override_reason,
            actor=actor,
        )
    except KithError as exc:
        if positions:
            _renumber(exc, positions)
        raise


_POSITION = re.compile(r"\b(emails|phones)\[(\d+)\]")


def _renumber(exc: KithError, positions: Mapping[str, Sequence[int]]) -> None:
    """Rewrite ``emails[i]``/``phones[i]`` in an error's detail and extras to the caller's own
    positions (see :func:`check_new_contact`)."""

    def renumber(text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            kind, index = match.group(1), int(match.group(2))
            mapped = positions.get(kind)
            if mapped is None or index >= len(mapped):
                return match.group(0)
            return f"{kind}[{mapped[index]}]"

        return _POSITION.sub(replace, text)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return renumber(value)
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    exc.detail = renumber(exc.detail)
    exc.args = (exc.detail, *exc.args[1:])
    exc.extra = {key: walk(value) for key, value in exc.extra.items()}


async def processing_refusals(kith: Kith, contact_id: uuid.UUID, activity: str) -> list[str]:
    """Every plugin's reason to refuse ``activity`` on the contact's data (empty: go ahead)."""
    if not _has_hook(kith, "kith_check_processing"):
        return []
    assert kith.plugins is not None
    results = await kith.plugins.call_async(
        "kith_check_processing", kith=kith, contact_id=contact_id, activity=activity
    )
    return [str(result.value) for result in results if result.value]


async def refused_among(
    kith: Kith, contact_ids: Sequence[uuid.UUID], activity: str
) -> set[uuid.UUID]:
    """Of these contacts, those a plugin refuses ``activity`` for (restricted ones, say)."""
    if not contact_ids or not _has_hook(kith, "kith_check_processing"):
        return set()
    from kith.unit_of_work import UnitOfWork

    if UnitOfWork.open():
        # One connection in a transaction takes one query at a time.
        reasons = [await processing_refusals(kith, c, activity) for c in contact_ids]
    else:
        reasons = await asyncio.gather(
            *(processing_refusals(kith, c, activity) for c in contact_ids)
        )
    return {contact_id for contact_id, why in zip(contact_ids, reasons, strict=True) if why}


async def check_processing(kith: Kith, contact_id: uuid.UUID, activity: str) -> None:
    """Raise :class:`ProcessingRefused` (409) with the first reason a plugin gives."""
    reasons = await processing_refusals(kith, contact_id, activity)
    if reasons:
        raise ProcessingRefused(reasons[0], contact_id=str(contact_id), activity=activity)


async def record_access(
    kith: Kith,
    contact_id: uuid.UUID,
    action: str,
    actor: Actor = SYSTEM,
    channel: str = "api",
    **details: Any,
) -> None:
    """Report an access to a contact's personal data to the plugins (the audit log)."""
    if not _has_hook(kith, "kith_record_access"):
        return
    assert kith.plugins is not None
    access = Access(
        contact_id=contact_id, action=action, actor=actor.ref, channel=channel, details=details
    )
    await kith.plugins.call_async("kith_record_access", kith=kith, access=access)


async def record_consent(
    kith: Kith, contact_id: uuid.UUID, consent: ConsentGiven, actor: Actor = SYSTEM
) -> list[ConsentReceipt]:
    """Record consent given through a plugin's channel in the consent ledger (through
    ``kith_record_consent``); returns what each ledger recorded (none without one)."""
    if not _has_hook(kith, "kith_record_consent"):
        return []
    assert kith.plugins is not None
    results = await kith.plugins.call_async(
        "kith_record_consent", kith=kith, contact_id=contact_id, consent=consent, actor=actor
    )
    return [result.value for result in results if isinstance(result.value, ConsentReceipt)]


async def subject_consents(
    kith: Kith, contact_id: uuid.UUID, actor: Actor = SYSTEM, channel: str = "api"
) -> list[ConsentLine] | None:
    """Where the contact stands for each purpose (``kith_subject_consents``), reported as a
    read of their personal data; None when no plugin keeps a consent ledger."""
    if not _has_hook(kith, "kith_subject_consents"):
        return None
    assert kith.plugins is not None
    results = await kith.plugins.call_async(
        "kith_subject_consents", kith=kith, contact_id=contact_id
    )
    answers = [result.value for result in results if isinstance(result.value, list)]
    if not answers:
        return None
    await record_access(kith, contact_id, "read", actor, channel, part="consents")
    return [line for answer in answers for line in answer]


async def change_consent(
    kith: Kith,
    contact_id: uuid.UUID,
    purpose: str,
    action: str,
    actor: Actor = SYSTEM,
    channel: str = "api",
) -> list[ConsentReceipt]:
    """Record consent given (under the purpose's current notice) or withdrawn in the consent
    ledger (``kith_change_consent``); returns what each ledger recorded (none without one)."""
    if action not in ("given", "withdrawn"):
        raise InvalidInput("consent is either given or withdrawn", field="action")
    if not _has_hook(kith, "kith_change_consent"):
        return []
    assert kith.plugins is not None
    results = await kith.plugins.call_async(
        "kith_change_consent",
        kith=kith,
        contact_id=contact_id,
        purpose=purpose,
        action=action,
        channel=channel,
        actor=actor,
    )
    return [result.value for result in results if isinstance(result.value, ConsentReceipt)]
