"""Conversations and messages."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import UUID, Integer, Text, Timestamptz, Varchar
from piccolo.engine import engine_finder
from piccolo.table import Table

ID = "2026-12-10T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "conversations and messages"


# Frozen copies of the tables as this migration makes them.
class MessengerConversation(Table, tablename="messenger_conversation"):
    id = UUID(primary_key=True)
    channel = Varchar(length=50)
    chat_key = Varchar(length=200)
    chat_ref = Text(null=True, default=None)
    contact_id = UUID(null=True, default=None)
    last_inbound_at = Timestamptz(null=True, default=None)
    last_message_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class MessengerMessage(Table, tablename="messenger_message"):
    id = UUID(primary_key=True)
    conversation_id = UUID()
    contact_id = UUID(null=True, default=None)
    channel = Varchar(length=50)
    external_id = Varchar(length=200, null=True, default=None)
    direction = Varchar(length=10)
    text = Text(null=True, default=None)
    attachments = Text(null=True, default=None)
    attachment_count = Integer(default=0)
    status = Varchar(length=20)
    template = Varchar(length=200, null=True, default=None)
    purpose = Varchar(length=50, null=True, default=None)
    interaction_id = UUID(null=True, default=None)
    attempts = Integer(default=0)
    error = Varchar(length=300, null=True, default=None)
    created_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()


INDEXES = (
    # One conversation per chat; one message per provider message id (repeats are refused).
    "CREATE UNIQUE INDEX messenger_conversation_chat ON messenger_conversation (channel, chat_key)",
    "CREATE INDEX messenger_conversation_contact ON messenger_conversation (contact_id)",
    "CREATE UNIQUE INDEX messenger_message_external ON messenger_message (channel, external_id)",
    "CREATE INDEX messenger_message_contact ON messenger_message (contact_id, created_at)",
    "CREATE INDEX messenger_message_conversation ON messenger_message (conversation_id)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="messengers", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        assert engine is not None
        for table in (MessengerConversation, MessengerMessage):
            # The SQL of this engine (the frozen copies are not bound to one).
            table._meta.db = engine
            for statement in table.create_table().ddl:
                await engine.run_ddl(statement)
        for statement in INDEXES:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    return manager
