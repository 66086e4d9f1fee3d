"""The running Kith: settings, database, protector and event sink, shared by HTTP, CLI and worker."""

from __future__ import annotations

from kith.actor import SYSTEM, Actor
from kith.protection import FieldProtector, PlaintextProtector
from kith.settings import Settings
from kith.storage import Database
from kith.unit_of_work import DiscardingSink, EventSink, UnitOfWork


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

    def unit_of_work(self, actor: Actor = SYSTEM) -> UnitOfWork:
        return UnitOfWork(self.database, self.sink, actor)

    async def start(self) -> None:
        await self.database.start()

    async def close(self) -> None:
        await self.database.close()
