"""The running Kith: settings, database, protector and event bus, shared by HTTP, CLI, worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from kith.actor import SYSTEM, Actor
from kith.bus import EventBus
from kith.events import EventType
from kith.logs import get_logger
from kith.personal import CORE_PERSONAL_FIELDS, PersonalField
from kith.protection import FieldProtector, PlaintextProtector
from kith.settings import Settings
from kith.storage import Database
from kith.subjects import Subscriber
from kith.token_cache import TokenCache
from kith.unit_of_work import EventSink, UnitOfWork

if TYPE_CHECKING:
    from kith.plugin_manager import KithPluginManager

_log = get_logger("kith")
MERGE_CLOSE_EVERY_S = 3600.0


class Kith:
    """One installation, opened for use. Services take it as their only dependency.

    What plugins use of it: ``settings`` (:class:`Settings`), ``protector`` (seals a
    personal value with ``protect`` and opens it with ``reveal``), ``bus`` (the event bus:
    ``add_job``, ``subscribe``, ``drain``), ``unit_of_work(actor)`` (a transaction that
    publishes events), ``plugins`` (the plugin manager), ``personal_fields`` and ``state``
    (objects plugins keep for this installation, under keys of their own)."""

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
        # The event bus is the default sink: events go to its outbox in the same transaction.
        self.bus = EventBus(database, settings, kith=self, unit_of_work=self.unit_of_work)
        self.sink: EventSink = sink or self.bus
        # Core's own periodic work, run while the bus dispatches (kith serve, kith worker).
        self.bus.add_job("kith.merges.close", MERGE_CLOSE_EVERY_S, self._close_expired_merges)
        # Closing the loop: reminders and digests every half minute, cadence tasks and trigger
        # rules every five minutes, tiers hourly (an order updates its contact's tier at once).
        self.bus.add_job("kith.loop.reminders", 30.0, self._loop("run_reminders"), scheduled=True)
        self.bus.add_job("kith.loop.rules", 300.0, self._loop("run_rules"), scheduled=True)
        self.bus.add_job("kith.loop.tiers", 3600.0, self._loop("run_tiers"), scheduled=True)
        self.token_cache = TokenCache(settings.token_cache_seconds)
        # What the plugins add; open_kith fills these in. The defaults are core's own, for a
        # Kith built by hand without plugins.
        self.plugins: KithPluginManager | None = None
        self.personal_fields: list[PersonalField] = list(CORE_PERSONAL_FIELDS)
        # Objects plugins keep for this installation, e.g. a writer with a lifecycle: under a
        # key of the plugin's own, opened by its ``kith_startup`` (or on first use) and closed
        # by its ``kith_shutdown``. Per Kith rather than per process: the next Kith opened in
        # the same process (a test, a command run again) starts with none of the last one's.
        self.state: dict[str, Any] = {}

    @property
    def event_types(self) -> dict[str, EventType]:
        """Declared event types by name (core's and the plugins'); kept by the bus."""
        return self.bus.event_types

    @event_types.setter
    def event_types(self, value: Mapping[str, EventType]) -> None:
        self.bus.event_types = value

    @property
    def subscribers(self) -> list[Subscriber]:
        """The plugins' subscribers and in-process ones; kept by the bus."""
        return self.bus.subscribers

    @subscribers.setter
    def subscribers(self, value: Iterable[Subscriber]) -> None:
        self.bus.subscribers = value

    async def _close_expired_merges(self) -> None:
        """Delete what undoing a merge needed once its undo window has passed."""
        from kith.services.merges import MergeService

        await MergeService(self).close_expired()

    def _loop(self, name: str) -> Callable[[], Awaitable[None]]:
        """A periodic job of the loop (reminders, rules, tiers: kith.services.loop_jobs)."""

        async def job() -> None:
            from kith.services import loop_jobs

            await getattr(loop_jobs, name)(self)

        return job

    def unit_of_work(self, actor: Actor = SYSTEM) -> UnitOfWork:
        return UnitOfWork(self.database, self.sink, actor)

    async def start(self) -> None:
        await self.database.start()
        plugins = self.plugins
        if plugins is not None and plugins.implements("kith_startup") and await self._migrated():
            await plugins.startup(self)

    async def _migrated(self) -> bool:
        # Startup hooks may use their plugin's tables, so they run on a migrated database only:
        # ``kith migrate`` opens Kith before those tables exist.
        return not any(state.pending for state in await self.database.migration_states())

    async def close(self) -> None:
        await self.bus.stop()
        plugins = self.plugins
        if plugins is not None and plugins.implements("kith_shutdown"):
            for result in await plugins.call_async("kith_shutdown", kith=self, collect_errors=True):
                if result.error is not None:
                    _log.error(
                        "plugin.shutdown_failed",
                        plugin=result.plugin,
                        error=f"{type(result.error).__name__}: {result.error}",
                    )
        await self.database.close()
