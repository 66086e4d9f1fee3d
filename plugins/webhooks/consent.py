"""The consent seam: may a subscription that allows personal data receive this contact's?

Sending a contact's fields to another system is processing that needs a lawful basis; for
webhooks that basis is the contact's consent to the ``webhooks`` purpose (declared by this
plugin). The privacy module's consent ledger answers that question; until it is wired in here,
every contact of a subscription that allows personal data is shared, as before consent existed.
Whatever answers, a False here makes the delivery carry ids only (``"personal_data":
"withheld"``), never fail.
"""

from __future__ import annotations

import uuid

from kith.runtime import Kith

PURPOSE = "webhooks"


async def may_share(kith: Kith, contact_id: uuid.UUID) -> bool:
    """Whether the contact's personal data may go out in a webhook (the consent check, and a
    restricted contact's refusal under Art. 18, belong here)."""
    return True


async def refusal(kith: Kith, contact_id: uuid.UUID | None) -> str | None:
    """Why no event about the contact may go out now (a restriction of processing, asked of
    the plugins through ``kith_check_processing``), or None."""
    if contact_id is None:
        return None
    from kith.subject_checks import processing_refusals

    subject = contact_id if isinstance(contact_id, uuid.UUID) else uuid.UUID(str(contact_id))
    reasons = await processing_refusals(kith, subject, "webhook.delivery")
    return reasons[0] if reasons else None
