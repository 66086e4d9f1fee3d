"""Telling recipients of a rectification, restriction or erasure (Art. 19 GDPR).

Every recipient the plugins register (``kith_register_recipients``) is asked through the
``kith_notify_recipient`` hook, answered by the plugin that registered it (and, for a preview,
through ``kith_notify_recipient_preview``). Each outcome (done, failed with the reason, not
applicable) and how many of the recipient's endpoints were told is recorded in
``kith_privacy_recipient_notice`` and returned as certificate entries. A notice has a stable
id, so a resumed job asks again with the same id and a notice already recorded is not sent
twice.
"""

from __future__ import annotations

import uuid

from kith.events import utcnow
from kith.ids import new_id
from kith.logs import get_logger
from kith.privacy.rights import registry
from kith.privacy.rights.outcomes import CertificateEntry, PlannedAction
from kith.privacy.rights.tables import RecipientNoticeRecord
from kith.runtime import Kith
from kith.subjects import Recipient, RecipientAction, RecipientNotice

SOURCE = "recipients"
NAMESPACE = uuid.UUID("6f3c2a52-54a1-4b8e-9e55-5f0d7d0f3c11")
MAX_DETAIL = 300

log = get_logger("kith.privacy.rights.recipients")


def notice_id_for(key: str, action: str) -> uuid.UUID:
    """The stable id of one notice (``key`` names the job or request it belongs to)."""
    return uuid.uuid5(NAMESPACE, f"{key}|{action}")


def method_for(action: str) -> str:
    return f"notified_of_{action}"


async def preview(
    kith: Kith, contact_id: uuid.UUID, action: RecipientAction
) -> list[PlannedAction]:
    """One preview line per registered recipient, with how many of its endpoints would be
    told (``kith_notify_recipient_preview``; 0 when its plugin does not say)."""
    planned = []
    for recipient in registry.recipients(kith):
        count = 0
        if kith.plugins is not None:
            results = await kith.plugins.call_async(
                "kith_notify_recipient_preview",
                kith=kith,
                recipient=recipient,
                action=action,
                contact_id=contact_id,
            )
            answers = [r.value for r in results if isinstance(r.value, RecipientNotice)]
            count = answers[0].count if answers else 0
        planned.append(
            PlannedAction(
                source=SOURCE, location=recipient.name, method=method_for(action), count=count
            )
        )
    return planned


async def _ask(
    kith: Kith,
    recipient: Recipient,
    action: RecipientAction,
    contact_id: uuid.UUID,
    notice_id: uuid.UUID,
) -> RecipientNotice:
    plugins = kith.plugins
    if plugins is None:
        return RecipientNotice(outcome="failed", detail="no plugins are loaded")
    results = await plugins.call_async(
        "kith_notify_recipient",
        collect_errors=True,
        kith=kith,
        recipient=recipient,
        action=action,
        contact_id=contact_id,
        notice_id=notice_id,
    )
    for result in results:
        if result.error is not None:
            # The reason goes into the certificate: the error's type and first line only.
            first = str(result.error).splitlines()[0] if str(result.error) else ""
            return RecipientNotice(
                outcome="failed",
                detail=f"plugin {result.plugin}: {type(result.error).__name__}: {first}"[
                    :MAX_DETAIL
                ],
            )
        if isinstance(result.value, RecipientNotice):
            return result.value
    return RecipientNotice(
        outcome="failed",
        detail=f"no plugin answered for this recipient (registered by {recipient.owner}); "
        "tell them by hand",
    )


async def notify(
    kith: Kith,
    contact_id: uuid.UUID,
    action: RecipientAction,
    *,
    key: str,
    request_id: uuid.UUID | None = None,
) -> list[CertificateEntry]:
    """Tell every registered recipient; returns one certificate entry each."""
    notice_id = notice_id_for(key, action)
    done = {
        row["recipient"]: row
        for row in await RecipientNoticeRecord.select().where(
            RecipientNoticeRecord.notice_id == notice_id
        )
    }
    entries = []
    for recipient in registry.recipients(kith):
        row = done.get(recipient.name)
        if row is None:
            answer = await _ask(kith, recipient, action, contact_id, notice_id)
            at = utcnow()
            await (
                RecipientNoticeRecord.insert(
                    RecipientNoticeRecord(
                        id=new_id(),
                        notice_id=notice_id,
                        contact_id=contact_id,
                        action=action,
                        recipient=recipient.name,
                        owner=recipient.owner,
                        outcome=answer.outcome,
                        detail=answer.detail[:MAX_DETAIL],
                        endpoints=answer.count,
                        request_id=request_id,
                        at=at,
                    )
                )
                .on_conflict(action="DO NOTHING")
                .run()
            )
            outcome, detail, count = answer.outcome, answer.detail[:MAX_DETAIL], answer.count
            log.info(
                "recipient notified",
                contact_id=str(contact_id),
                recipient=recipient.name,
                action=action,
                outcome=outcome,
            )
        else:
            outcome, detail, at = row["outcome"], row["detail"], row["at"]
            count = row["endpoints"]
        entries.append(
            CertificateEntry(
                source=SOURCE,
                location=recipient.name,
                method=method_for(action),
                outcome=outcome,
                count=count,
                detail=detail or None,
                at=at,
            )
        )
    return entries


async def history(kith: Kith, contact_id: uuid.UUID) -> list[dict[str, object]]:
    """Every notice sent about a contact, oldest first."""
    return list(
        await RecipientNoticeRecord.select()
        .where(RecipientNoticeRecord.contact_id == contact_id)
        .order_by(RecipientNoticeRecord.at)
        .run()
    )
