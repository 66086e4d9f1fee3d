"""The messengers plugin's tables: conversations (one per channel and chat) and messages."""

from __future__ import annotations

from kith import new_id
from piccolo.columns import UUID, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table


class MessengerConversation(Table, tablename="messenger_conversation"):
    """One chat on one channel, and the contact it belongs to.

    The provider's chat id is personal: it is stored sealed under the contact's key
    (``chat_ref``) and found by its blind index (``chat_key``)."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    channel = Varchar(length=50)
    chat_key = Varchar(length=200)
    chat_ref = Text(null=True, default=None, secret=True)
    contact_id = UUID(null=True, default=None)
    # The person's last message: WhatsApp allows free text for 24 hours after it.
    last_inbound_at = Timestamptz(null=True, default=None)
    last_message_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class MessengerMessage(Table, tablename="messenger_message"):
    """One message either way. The text and the attachment references are sealed under the
    contact's key; ``external_id`` is the provider's id (NULL until an outbound message is
    sent), unique per channel."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    conversation_id = UUID()
    contact_id = UUID(null=True, default=None)
    channel = Varchar(length=50)
    external_id = Varchar(length=200, null=True, default=None)
    direction = Varchar(length=10)
    text = Text(null=True, default=None, secret=True)
    attachments = Text(null=True, default=None, secret=True)
    attachment_count = Integer(default=0)
    status = Varchar(length=20)
    template = Varchar(length=200, null=True, default=None)
    purpose = Varchar(length=50, null=True, default=None)
    interaction_id = UUID(null=True, default=None)
    attempts = Integer(default=0)
    # Kith's or the provider's reason of a failure: no personal data.
    error = Varchar(length=300, null=True, default=None)
    created_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()


MESSENGER_TABLES: list[type[Table]] = [MessengerConversation, MessengerMessage]
