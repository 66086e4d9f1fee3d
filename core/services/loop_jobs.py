"""The worker's share of closing the loop: what ``kith worker`` (and ``kith serve``) run
periodically, and ``kith worker --once`` runs once."""

from __future__ import annotations

from kith.logs import get_logger
from kith.runtime import Kith

_log = get_logger("kith.loop")


async def run_reminders(kith: Kith) -> dict[str, int]:
    from kith.services.reminders import ReminderService

    service = ReminderService(kith)
    overdue = await service.publish_overdue()
    digests = await service.send_digests()
    delivered = await service.deliver_pending()
    return {"overdue": overdue, "digests": digests, "notifications": delivered}


async def run_rules(kith: Kith) -> dict[str, int]:
    from kith.services.cadences import CadenceService
    from kith.services.triggers import TriggerService

    tasks = await CadenceService(kith).create_tasks()
    fired = await TriggerService(kith).run_all()
    return {"cadence_tasks": tasks, "trigger_firings": fired}


async def run_tiers(kith: Kith) -> dict[str, int]:
    from kith.services.tiers import TierService

    return {"tier_changes": await TierService(kith).recompute()}


async def run_all(kith: Kith) -> dict[str, int]:
    """Everything once (``kith worker --once``): tiers first, as rules and cadences use them."""
    counts: dict[str, int] = {}
    for job in (run_tiers, run_rules, run_reminders):
        counts.update(await job(kith))
    return counts
