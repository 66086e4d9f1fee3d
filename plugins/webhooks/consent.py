"""The consent seam: may a subscription that allows personal data receive this contact's?

Sending a contact's fields to another system is processing that needs a lawful basis; for
webhooks that basis is the contact's consent to the ``webhooks`` purpose (declared by this
plugin). The plugins answer through ``kith_check_processing`` with the activity
``purpose:webhooks`` (the privacy plugin from its consent ledger); with no plugin answering,
the data is shared. A False here makes the delivery carry ids only (``"personal_data":
"withheld"``), never fail.
"""

from __future__ import annotations

import uuid

from kith import Kith, processing_refusals

PURPOSE = "webhooks"


async def may_share(kith: Kith, contact_id: uuid.UUID) -> bool:
    """Whether the contact's personal data may go out in a webhook (consent to the
    ``webhooks`` purpose, and no restriction under Art. 18)."""
    return not await processing_refusals(kith, contact_id, f"purpose:{PURPOSE}")


async def refusal(kith: Kith, contact_id: uuid.UUID | None) -> str | None:
    """Why no event about the contact may go out now (a restriction of processing, asked of
    the plugins through ``kith_check_processing``), or None."""
    if contact_id is None:
        return None
    subject = contact_id if isinstance(contact_id, uuid.UUID) else uuid.UUID(str(contact_id))
    reasons = await processing_refusals(kith, subject, "webhook.delivery")
    return reasons[0] if reasons else None
