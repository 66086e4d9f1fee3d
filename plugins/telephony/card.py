"""The contact card's "Call" section: click-to-call from the signed-in person's extension."""

from __future__ import annotations

import uuid

from kith import Actor, CardSection, Kith, KithError, Role
from kith.plugins.telephony.providers_registry import providers_of
from kith.plugins.telephony.services import CallService
from markupsafe import Markup

KEY = "call"


async def section(
    kith: Kith, contact_id: uuid.UUID, actor: Actor, csrf_input: str
) -> CardSection | None:
    """A "Call" button for staff with an extension, when a provider can place calls."""
    if actor.role == Role.COMPLIANCE or actor.kind != "user" or actor.id is None:
        return None
    providers = providers_of(kith)
    if not providers:
        return None
    service = CallService(kith)
    try:
        extension = await service.extension_of(actor.id)
    except KithError:
        return None
    html = Markup(
        '<form method="post" action="/contacts/{}/card/{}" class="inline">{}'
        '<button type="submit" class="primary">Call from extension {}</button></form>'
    ).format(contact_id, KEY, Markup(csrf_input), extension)

    async def submit(form: dict[str, str]) -> None:
        await service.call(contact_id, actor, providers)

    return CardSection(key=KEY, title="Call", html=str(html), order=40, submit=submit)
