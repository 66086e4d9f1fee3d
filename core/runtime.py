"""The running Kith: settings, database, protector and event sink, shared by HTTP, CLI and worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kith.actor import SYSTEM, Actor
from kith.events import CORE_EVENT_TYPES, EventType
from kith.personal import CORE_PERSONAL_FIELDS, PersonalField
from kith.protection import FieldProtector, PlaintextProtector
from kith.settings import Settings
from kith.storage import Database
from kith.subjects import Subscriber
from kith.unit_of_work import DiscardingSink, EventSink, UnitOfWork

if TYPE_CHECKING:
    from kith.plugin_manager import KithPluginManager


class Kith:
    """One installation, opened for use. Services take it as their only dependency."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        protector: FieldProtector | None = None,
        sink: EventSink | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.protector: FieldProtector = protector or PlaintextProtector()
        self.sink: EventSink = sink or DiscardingSink()
        # What the plugins add; open_kith fills these in. The defaults are core's own, for a
        # Kith built by hand without plugins.
        self.plugins: KithPluginManager | None = None
        self.personal_fields: list[PersonalField] = list(CORE_PERSONAL_FIELDS)
        self.event_types: dict[str, EventType] = {t.name: t for t in CORE_EVENT_TYPES}
        self.subscribers: list[Subscriber] = []
        # Section name -> the validated msgspec Struct of its kith.toml table.
        self.settings_sections: dict[str, Any] = {}

    def unit_of_work(self, actor: Actor = SYSTEM) -> UnitOfWork:
        return UnitOfWork(self.database, self.sink, actor)

    async def start(self) -> None:
        await self.database.start()
        if self.plugins is not None:
            await self.plugins.startup(self)

    async def close(self) -> None:
        await self.database.close()
