"""The contact card's "Messages" section: the latest messages and a reply form."""

from __future__ import annotations

import uuid

import msgspec
from kith import Actor, CardSection, InvalidInput, Kith, Role
from kith.plugins.messengers.schemas import MessageIn
from kith.plugins.messengers.services import MessageService
from kith.web import N_
from markupsafe import Markup

KEY = "messages"
SHOWN = 20


async def section(
    kith: Kith, contact_id: uuid.UUID, actor: Actor, csrf_input: str
) -> CardSection | None:
    """The section, for contacts who have written on a messenger; agents get a reply form."""
    service = MessageService(kith)
    if not service.adapters:
        return None
    found = await service.messages(contact_id, actor, limit=SHOWN, channel="web")
    if not found:
        return None
    items = Markup("").join(
        Markup('<li class="message {}"><span class="meta">{} · {} · {}</span> {}{}</li>').format(
            m.direction,
            m.channel,
            m.created_at.strftime("%Y-%m-%d %H:%M"),
            m.status,
            m.text or "",
            Markup(" <em>({} attachment(s))</em>").format(m.attachment_count)
            if m.attachment_count
            else "",
        )
        for m in reversed(found)
    )
    html = Markup('<ol class="messages">{}</ol>').format(items)
    if actor.role != Role.COMPLIANCE:
        html += Markup(
            '<form method="post" action="/contacts/{}/card/{}" class="stack">{}'
            '<label for="message-text">Reply</label>'
            '<textarea id="message-text" name="text" rows="2" maxlength="4096" required></textarea>'
            '<button type="submit" class="primary">Send</button></form>'
        ).format(contact_id, KEY, Markup(csrf_input))

    async def submit(form: dict[str, str]) -> None:
        try:
            data = msgspec.convert({"text": form.get("text", "")}, MessageIn)
        except msgspec.ValidationError as exc:
            raise InvalidInput(str(exc), field="text") from None
        await service.send(contact_id, data, actor)

    return CardSection(key=KEY, title=N_("Messages"), html=str(html), order=50, submit=submit)
