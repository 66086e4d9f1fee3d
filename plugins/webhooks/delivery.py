"""Delivering events to webhook subscriptions.

The event bus hands every event to :meth:`WebhookDeliverer.handle` (at least once). It records
one delivery row per matching subscription (idempotent by event id) and makes the first
attempts at once. From then on each delivery has its own schedule: a failed attempt is retried
with exponential backoff by :meth:`WebhookDeliverer.run_due` (the worker loop, or
``kith webhooks deliver``) until it succeeds or runs out of attempts.

Isolation: subscriptions are delivered to concurrently and each one's deliveries one after
another, so a slow or dead receiver only ever holds up its own queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
from kith import (
    Actor,
    ContactService,
    Event,
    InteractionService,
    Kith,
    NotFound,
    __version__,
    get_logger,
    new_id,
    record_access,
    utcnow,
)
from kith.plugins.webhooks import consent, secret_store
from kith.plugins.webhooks.privacy import seal_response
from kith.plugins.webhooks.schemas import DeliveryRun, WebhookSettings
from kith.plugins.webhooks.service import from_json, matches
from kith.plugins.webhooks.signing import (
    ATTEMPT_HEADER,
    DELIVERY_ID_HEADER,
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)
from kith.plugins.webhooks.tables import WebhookDelivery, WebhookSubscription

log = get_logger("kith.webhooks")

HISTORY_KEPT = 20
ERROR_TEXT_KEPT = 300
USER_AGENT = f"Kith-Webhooks/{__version__}"
WEBHOOKS_ACTOR = Actor(kind="plugin", name="webhooks")
WEBHOOK_CHANNEL = "webhook"

Clock = Callable[[], dt.datetime]


def settings_of(kith: Kith) -> WebhookSettings:
    """The ``[webhooks]`` section of ``kith.toml`` (all of it optional)."""
    return kith.settings.parsed("webhooks", WebhookSettings)


def _bus_clock(kith: Kith) -> Clock:
    """The event bus's clock, read at each call (tests move it on to reach retries)."""
    bus = getattr(kith, "bus", None)
    return (lambda: bus.clock()) if bus is not None else utcnow


def backoff(attempt: int, settings: WebhookSettings) -> dt.timedelta:
    """How long to wait after failed attempt number ``attempt`` (1, 2, ...): doubling, capped."""
    seconds = settings.backoff_base_seconds * 2 ** (attempt - 1)
    return dt.timedelta(seconds=min(seconds, settings.backoff_max_seconds))


def envelope(event: Event) -> dict[str, Any]:
    """What a delivery keeps of its event: names and ids, never personal data."""
    return msgspec.to_builtins(
        {
            "id": event.id,
            "event": event.name,
            "occurred_at": event.occurred_at,
            "actor": event.actor,
            "contact_id": event.contact_id,
            "data": event.payload,
        }
    )


class _Outcome(msgspec.Struct):
    status_code: int | None
    # Kith's own words, never the receiver's: stored readable and logged.
    error: str | None
    duration_ms: int
    response_bytes: int | None = None
    # The receiver's words: stored sealed under the contact's key, never logged.
    response_text: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class WebhookDeliverer:
    """Records and sends deliveries for one opened Kith."""

    def __init__(
        self,
        kith: Kith,
        settings: WebhookSettings | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.kith = kith
        self.settings = settings or settings_of(kith)
        # Times in the delivery log follow the bus's clock; signatures use the real time.
        self.clock = clock or _bus_clock(kith)
        self._transport = transport

    # -- recording ---------------------------------------------------------------------------

    async def enqueue(self, event: Event) -> list[uuid.UUID]:
        """Record a delivery of ``event`` for every active subscription it matches; returns
        the ids of deliveries created now (none when the event was seen before)."""
        subscriptions = await (
            WebhookSubscription.select(WebhookSubscription.id, WebhookSubscription.events)
            .where(WebhookSubscription.active == True)  # noqa: E712 - piccolo builds SQL from ==
            .run()
        )
        wanted = [
            row["id"] for row in subscriptions if matches(from_json(row["events"]), event.name)
        ]
        if not wanted:
            return []
        async with self.kith.unit_of_work():
            seen = {
                row["subscription"]
                for row in await WebhookDelivery.select(WebhookDelivery.subscription)
                .where(WebhookDelivery.event_id == event.id)
                .run()
            }
            now = self.clock()
            rows = [
                WebhookDelivery(
                    id=new_id(),
                    subscription=subscription_id,
                    event_id=event.id,
                    event_name=event.name,
                    event=envelope(event),
                    contact_id=event.contact_id,
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
                for subscription_id in wanted
                if subscription_id not in seen
            ]
            if rows:
                await WebhookDelivery.insert(*rows).run()
        return [row.id for row in rows]

    async def handle(self, event: Event) -> None:
        """The event-bus handler: record the deliveries, then make their first attempts.

        A delivery whose subscription has deliveries waiting for a retry waits for the next
        pass instead: that receiver is failing, and its backlog goes first.
        """
        created = await self.enqueue(event)
        if created:
            await self.run_due(only=created)

    # -- sending -----------------------------------------------------------------------------

    async def run_due(self, only: list[uuid.UUID] | None = None) -> DeliveryRun:
        """Attempt every due delivery (or the due ones among ``only``), each subscription's
        one after another, subscriptions in parallel. A subscription whose attempt fails is
        left alone for the rest of this pass."""
        now = self.clock()
        query = (
            WebhookDelivery.select(WebhookDelivery.id, WebhookDelivery.subscription)
            .where(WebhookDelivery.state == "pending")
            .where(WebhookDelivery.next_attempt_at <= now)
            .where(WebhookDelivery.subscription.active == True)  # noqa: E712 - SQL, not Python
        )
        if only is not None:
            query = query.where(WebhookDelivery.id.is_in(only))
        rows = await (
            # Oldest first (ids are time-ordered): a subscription's backlog before its new
            # deliveries, which stop at its first failure.
            query.order_by(WebhookDelivery.id).limit(self.settings.batch_size).run()
        )
        queues: dict[uuid.UUID, list[uuid.UUID]] = {}
        for row in rows:
            queues.setdefault(row["subscription"], []).append(row["id"])
        if only is not None and queues:
            # A subscription with deliveries waiting for a retry is failing: its new delivery
            # waits behind that backlog instead of being tried inline again. (Fresh deliveries
            # of events handled at the same moment are no backlog.)
            backlog = await (
                WebhookDelivery.select(WebhookDelivery.subscription)
                .where(WebhookDelivery.state == "pending")
                .where(WebhookDelivery.attempts > 0)
                .where(WebhookDelivery.subscription.is_in(list(queues)))
                .where(WebhookDelivery.id.not_in(only))
                .run()
            )
            for row in backlog:
                queues.pop(row["subscription"], None)
        report = DeliveryRun()
        if not queues:
            return report
        limiter = asyncio.Semaphore(self.settings.max_parallel)
        async with self._client() as client:

            async def drain(ids: list[uuid.UUID]) -> None:
                async with limiter:
                    for delivery_id in ids:
                        state = await self._attempt(client, delivery_id)
                        if state is None:
                            continue
                        report.attempted += 1
                        if state == "delivered":
                            report.delivered += 1
                            continue
                        if state == "failed":
                            report.failed += 1
                        else:
                            report.retrying += 1
                        break

            await asyncio.gather(*(drain(ids) for ids in queues.values()))
        return report

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Run :meth:`run_due` every ``poll_seconds`` until ``stop`` is set."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.run_due()
            except Exception:
                # A database hiccup must not end the loop; the next pass tries again.
                log.exception("webhook delivery pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.poll_seconds)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.timeout_seconds),
            # A redirect is reported, not followed: the signature was made for this URL.
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            transport=self._transport,
        )

    async def _claim(self, delivery_id: uuid.UUID) -> dict[str, Any] | None:
        """Take a due delivery for this process by pushing its next attempt past the time an
        attempt can take; another process (or a later pass) skips it meanwhile, and takes it
        again if this one dies before recording the outcome."""
        now = self.clock()
        lease = now + dt.timedelta(seconds=2 * self.settings.timeout_seconds + 30)
        claimed = await (
            WebhookDelivery.update({WebhookDelivery.next_attempt_at: lease})
            .where(WebhookDelivery.id == delivery_id)
            .where(WebhookDelivery.state == "pending")
            .where(WebhookDelivery.next_attempt_at <= now)
            .returning(WebhookDelivery.id)
            .run()
        )
        if not claimed:
            return None
        row: dict[str, Any] | None = (
            await WebhookDelivery.select(
                *WebhookDelivery.all_columns(),
                WebhookDelivery.subscription.url,
                WebhookDelivery.subscription.id,
                WebhookDelivery.subscription.secret,
                WebhookDelivery.subscription.sealed_secret,
                WebhookDelivery.subscription.previous_secret,
                WebhookDelivery.subscription.previous_secret_until,
                WebhookDelivery.subscription.include_personal_data,
            )
            .where(WebhookDelivery.id == delivery_id)
            .first()
            .run()
        )
        return row

    async def _attempt(self, client: httpx.AsyncClient, delivery_id: uuid.UUID) -> str | None:
        """One attempt of one delivery; its new state, or None if another process had it."""
        row = await self._claim(delivery_id)
        if row is None:
            return None
        attempt = row["attempts"] + 1
        refused = await consent.refusal(self.kith, row["contact_id"])
        if refused is not None:
            # Not sent at all (a restricted contact, Art. 18): failed at once, retry by hand.
            outcome = _Outcome(status_code=None, error=f"not sent: {refused}", duration_ms=0)
            return await self._record(row, attempt, outcome, False, final=True)
        body, shared = await self.body(
            row["event"], bool(row["subscription.include_personal_data"])
        )
        timestamp = int(time.time())
        signing = await secret_store.signing_secrets(
            self.kith, row, dt.datetime.fromtimestamp(timestamp, dt.UTC), prefix="subscription."
        )
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(signing, timestamp, body),
            EVENT_ID_HEADER: str(row["event_id"]),
            EVENT_HEADER: row["event_name"],
            DELIVERY_ID_HEADER: str(row["id"]),
            ATTEMPT_HEADER: str(attempt),
        }
        outcome = await self._post(client, row["subscription.url"], headers, body)
        return await self._record(row, attempt, outcome, shared)

    async def _post(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str], body: bytes
    ) -> _Outcome:
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        size: int | None = None
        text: str | None = None
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            error = f"no answer within {self.settings.timeout_seconds:g} s"
        except httpx.ConnectError as exc:
            # Said by this machine (the resolver, the operating system), not by the receiver.
            error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        except httpx.HTTPError as exc:
            # A protocol error may quote what the receiver sent; only its kind is Kith's.
            error = f"{type(exc).__name__}: the answer could not be read"
            text = str(exc) or None
        else:
            status = response.status_code
            size = len(response.content)
            excerpt = " ".join(response.text[:ERROR_TEXT_KEPT].split())
            if response.is_redirect:
                location = response.headers.get("location", "")
                error = f"HTTP {status}: redirected, not followed; the answer names the location"
                text = f"Location: {location}" + (f"\n{excerpt}" if excerpt else "")
            elif not response.is_success:
                error = f"HTTP {status}"
                text = excerpt or None
        duration_ms = int((time.perf_counter() - started) * 1000)
        return _Outcome(
            status_code=status,
            error=error,
            duration_ms=duration_ms,
            response_bytes=size,
            response_text=text,
        )

    async def _record(
        self,
        row: dict[str, Any],
        attempt: int,
        outcome: _Outcome,
        shared: bool,
        final: bool = False,
    ) -> str:
        now = self.clock()
        history = list(from_json(row["history"]) or [])
        history.append(
            msgspec.to_builtins(
                {
                    "attempt": attempt,
                    "at": now,
                    "status_code": outcome.status_code,
                    "error": outcome.error,
                    "duration_ms": outcome.duration_ms,
                    "response_bytes": outcome.response_bytes,
                }
            )
        )
        values: dict[Any, Any] = {
            WebhookDelivery.attempts: attempt,
            WebhookDelivery.status_code: outcome.status_code,
            WebhookDelivery.error: outcome.error,
            WebhookDelivery.response_bytes: outcome.response_bytes,
            WebhookDelivery.response_text: await seal_response(
                self.kith, row["contact_id"], row["id"], outcome.response_text
            ),
            WebhookDelivery.last_attempt_at: now,
            WebhookDelivery.history: history[-HISTORY_KEPT:],
        }
        if shared:
            # Whatever the receiver answered, the data may have reached it.
            values[WebhookDelivery.shared_personal_data] = True
        if outcome.ok:
            state = "delivered"
            values |= {WebhookDelivery.delivered_at: now, WebhookDelivery.next_attempt_at: None}
        elif final or attempt >= self.settings.max_attempts:
            state = "failed"
            values[WebhookDelivery.next_attempt_at] = None
        else:
            state = "pending"
            values[WebhookDelivery.next_attempt_at] = now + backoff(attempt, self.settings)
        values[WebhookDelivery.state] = state
        await WebhookDelivery.update(values).where(WebhookDelivery.id == row["id"]).run()
        if shared and not row["shared_personal_data"] and row["contact_id"] is not None:
            # A disclosure to another system goes into the audit log, once per delivery.
            await record_access(
                self.kith,
                row["contact_id"],
                "disclose",
                WEBHOOKS_ACTOR,
                channel=WEBHOOK_CHANNEL,
                subscription_id=str(row["subscription"]),
                event_id=str(row["event_id"]),
                url=row["subscription.url"],
            )
        fields = {
            "delivery_id": str(row["id"]),
            "subscription_id": str(row["subscription"]),
            "event_id": str(row["event_id"]),
            "attempt": attempt,
            "status_code": outcome.status_code,
            "response_bytes": outcome.response_bytes,
        }
        if state == "delivered":
            log.info("webhook delivered", **fields)
        elif state == "failed":
            log.warning("webhook delivery failed for good", error=outcome.error, **fields)
        else:
            log.info("webhook delivery will be retried", error=outcome.error, **fields)
        return state

    # -- the request body --------------------------------------------------------------------

    async def body(self, stored: Any, include_personal_data: bool) -> tuple[bytes, bool]:
        """The JSON body for one attempt, built afresh each time from the stored envelope, and
        whether it carries personal data.

        Ids only, unless the subscription may receive personal data and the consent seam
        allows it for this contact; then the contact (and the interaction, for interaction
        events) is read through the services, so an erased contact is never sent later.
        """
        document = dict(from_json(stored))
        contact_id = document.get("contact_id")
        if not include_personal_data or not contact_id:
            return msgspec.json.encode(document), False
        subject = uuid.UUID(str(contact_id))
        if not await consent.may_share(self.kith, subject):
            document["personal_data"] = "withheld"
            return msgspec.json.encode(document), False
        # Read as the webhooks plugin, so the audit log shows who read it for what.
        contacts = ContactService(self.kith, WEBHOOK_CHANNEL)
        document["contact"] = await self._read(
            lambda item: contacts.get(item, WEBHOOKS_ACTOR), subject
        )
        interaction_id = (document.get("data") or {}).get("interaction_id")
        if interaction_id:
            interactions = InteractionService(self.kith, WEBHOOK_CHANNEL)
            document["interaction"] = await self._read(
                lambda item: interactions.get(item, WEBHOOKS_ACTOR), uuid.UUID(str(interaction_id))
            )
        shared = document["contact"] is not None or document.get("interaction") is not None
        return msgspec.json.encode(document), shared

    @staticmethod
    async def _read(read: Callable[[uuid.UUID], Awaitable[Any]], item_id: uuid.UUID) -> Any:
        try:
            return msgspec.to_builtins(await read(item_id))
        except NotFound:
            # Gone (deleted or erased) since the event: say so rather than fail the delivery.
            return None
