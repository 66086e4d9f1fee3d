"""Managing webhook subscriptions and reading their delivery log. The API and CLI call this."""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec
from kith import (
    SYSTEM,
    Actor,
    EventType,
    InvalidInput,
    Kith,
    NotFound,
    Page,
    check_limit,
    decode_cursor,
    encode_cursor,
    new_id,
    record_access,
    unset_to_dict,
    utcnow,
)
from kith.plugins.webhooks import secret_store
from kith.plugins.webhooks.privacy import RESPONSE_TEXT, open_response
from kith.plugins.webhooks.schemas import (
    DELIVERY_STATES,
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionPatch,
    SubscriptionWithSecret,
)
from kith.plugins.webhooks.signing import new_secret
from kith.plugins.webhooks.tables import WebhookDelivery, WebhookSubscription

# What reading a receiver's answer is recorded as in the contact's audit log.
READ_RESPONSE = "read_webhook_response"

# A dotted event name, optionally ending in ``.*``, or ``*`` for every event.
_PATTERN = re.compile(r"\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?")


def from_json(value: Any) -> Any:
    """A JSON column's value: piccolo hands JSON back as text."""
    if isinstance(value, str | bytes):
        return msgspec.json.decode(value)
    return value


def matches(patterns: Iterable[str], event_name: str) -> bool:
    """Whether any pattern (``contact.created``, ``contact.*``, ``*``) matches the name."""
    return any(fnmatch.fnmatchcase(event_name, pattern) for pattern in patterns)


def check_url(url: str) -> str:
    """The URL, stripped, if webhooks may be sent to it; :class:`InvalidInput` otherwise."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        # An unclosed or non-address IPv6 bracket.
        raise InvalidInput(f"the webhook URL {url!r} is not a valid URL", field="url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        got = f"{parts.scheme}:" if parts.scheme else "no scheme"
        raise InvalidInput(
            f"a webhook URL must start with http:// or https:// (got {got} in {url!r})",
            field="url",
        )
    if not parts.hostname:
        raise InvalidInput(f"the webhook URL {url!r} names no host", field="url")
    try:
        parts.port  # noqa: B018 - validates the port number
    except ValueError:
        raise InvalidInput(f"the webhook URL {url!r} has an invalid port", field="url") from None
    if parts.username or parts.password:
        # Listings show the URL; the signature is how a receiver knows the request is Kith's.
        raise InvalidInput(
            "put no user name or password in the webhook URL (it is shown in listings); "
            "receivers authenticate Kith by the Kith-Signature header",
            field="url",
        )
    return url


def _known_event_names(kith: Kith) -> list[str] | None:
    """Declared event names, or None when the plugin manager offers none to check against."""
    declared = getattr(kith, "event_types", None)
    if not declared:
        return None
    values = declared.values() if isinstance(declared, dict) else declared
    return sorted(item.name if isinstance(item, EventType) else str(item) for item in values)


def check_events(kith: Kith, patterns: Iterable[str]) -> list[str]:
    """Event patterns, each well-formed and matching at least one declared event type."""
    known = _known_event_names(kith)
    cleaned: list[str] = []
    for index, raw in enumerate(patterns):
        pattern = raw.strip()
        field = f"events[{index}]"
        if not _PATTERN.fullmatch(pattern):
            raise InvalidInput(
                f"{raw!r} is not an event name or pattern like contact.created, contact.* or *",
                field=field,
            )
        if known is not None and not any(fnmatch.fnmatchcase(name, pattern) for name in known):
            raise InvalidInput(
                f"no event type matches {pattern!r}; known events: {', '.join(known)}",
                field=field,
            )
        if pattern not in cleaned:
            cleaned.append(pattern)
    return cleaned


def subscription_out(row: dict[str, Any]) -> SubscriptionOut:
    return SubscriptionOut(
        id=row["id"],
        url=row["url"],
        events=list(from_json(row["events"]) or []),
        include_personal_data=bool(row["include_personal_data"]),
        active=bool(row["active"]),
        description=row["description"] or "",
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _delivery_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "subscription_id": row["subscription"],
        "event_id": row["event_id"],
        "event_name": row["event_name"],
        "state": row["state"],
        "attempts": row["attempts"],
        "status_code": row["status_code"],
        "error": row["error"],
        "response_bytes": row["response_bytes"],
        "next_attempt_at": row["next_attempt_at"],
        "last_attempt_at": row["last_attempt_at"],
        "delivered_at": row["delivered_at"],
        "created_at": row["created_at"],
        "history": msgspec.convert(from_json(row["history"]) or [], list[AttemptOut]),
    }


def delivery_out(row: dict[str, Any]) -> DeliveryOut:
    """A delivery as listed: Kith's account of each attempt, none of the receiver's text."""
    return DeliveryOut(**_delivery_fields(row))


class WebhookService:
    """Subscriptions (create, list, change, remove, rotate the secret) and the delivery log."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    async def create(
        self, data: SubscriptionCreate, actor: Actor = SYSTEM
    ) -> SubscriptionWithSecret:
        """A new subscription; the returned secret is the only time it is shown."""
        url = check_url(data.url)
        events = check_events(self.kith, data.events)
        secret = data.secret.strip() if data.secret else new_secret()
        if len(secret) < 16:
            raise InvalidInput("a secret needs at least 16 characters", field="secret")
        now = utcnow()
        subscription_id = new_id()
        async with self.kith.unit_of_work(actor):
            stored = await secret_store.store(self.kith, subscription_id, secret)
            await WebhookSubscription.insert(
                WebhookSubscription(
                    id=subscription_id,
                    url=url,
                    events=events,
                    secret=stored.secret,
                    sealed_secret=stored.sealed_secret,
                    include_personal_data=data.include_personal_data,
                    active=data.active,
                    description=data.description.strip(),
                    created_by=actor.ref,
                    created_at=now,
                    updated_at=now,
                )
            ).run()
        return SubscriptionWithSecret(subscription=await self.get(subscription_id), secret=secret)

    async def get(self, subscription_id: uuid.UUID) -> SubscriptionOut:
        row = await self._subscription_row(subscription_id)
        return subscription_out(row)

    async def _subscription_row(self, subscription_id: uuid.UUID) -> dict[str, Any]:
        row = (
            await WebhookSubscription.select()
            .where(WebhookSubscription.id == subscription_id)
            .first()
            .run()
        )
        if row is None:
            raise NotFound(f"webhook subscription {subscription_id} does not exist")
        return row

    async def list(self) -> list[SubscriptionOut]:
        rows = await WebhookSubscription.select().order_by(WebhookSubscription.id).run()
        return [subscription_out(row) for row in rows]

    async def update(
        self, subscription_id: uuid.UUID, patch: SubscriptionPatch, actor: Actor = SYSTEM
    ) -> SubscriptionOut:
        changes = unset_to_dict(patch)
        values: dict[Any, Any] = {WebhookSubscription.updated_at: utcnow()}
        if "url" in changes:
            values[WebhookSubscription.url] = check_url(str(changes["url"]))
        if "events" in changes:
            values[WebhookSubscription.events] = check_events(
                self.kith,
                changes["events"],  # type: ignore[arg-type]
            )
        if "include_personal_data" in changes:
            values[WebhookSubscription.include_personal_data] = bool(
                changes["include_personal_data"]
            )
        if "description" in changes:
            values[WebhookSubscription.description] = str(changes["description"]).strip()
        if "active" in changes:
            values[WebhookSubscription.active] = bool(changes["active"])
        async with self.kith.unit_of_work(actor):
            await self.get(subscription_id)
            await (
                WebhookSubscription.update(values)
                .where(WebhookSubscription.id == subscription_id)
                .run()
            )
        return await self.get(subscription_id)

    async def rotate_secret(
        self, subscription_id: uuid.UUID, secret: str | None = None, actor: Actor = SYSTEM
    ) -> SubscriptionWithSecret:
        """Replace the secret; deliveries from now on are signed with the new one, and with the
        old one too for ``[webhooks] secret_grace_seconds`` (two ``v1=`` signatures), so that
        receivers can change over without refusing any."""
        secret = secret.strip() if secret else new_secret()
        if len(secret) < 16:
            raise InvalidInput("a secret needs at least 16 characters", field="secret")
        # Imported here: the deliverer builds on this module.
        from kith.plugins.webhooks.delivery import settings_of

        grace = dt.timedelta(seconds=settings_of(self.kith).secret_grace_seconds)
        async with self.kith.unit_of_work(actor):
            row = await self._subscription_row(subscription_id)
            old, _, _ = await secret_store.secrets_of(self.kith, row)
            now = utcnow()
            keep = old if grace and old != secret else None
            until = now + grace if keep else None
            stored = await secret_store.store(self.kith, subscription_id, secret, keep)
            await (
                WebhookSubscription.update(
                    {
                        **stored.values(),
                        WebhookSubscription.previous_secret_until: until,
                        WebhookSubscription.updated_at: now,
                    }
                )
                .where(WebhookSubscription.id == subscription_id)
                .run()
            )
        return SubscriptionWithSecret(
            subscription=await self.get(subscription_id), secret=secret, previous_secret_until=until
        )

    async def remove(self, subscription_id: uuid.UUID, actor: Actor = SYSTEM) -> SubscriptionOut:
        """Delete a subscription with its delivery log; pending deliveries are not sent."""
        async with self.kith.unit_of_work(actor):
            removed = await self.get(subscription_id)
            await (
                WebhookSubscription.delete().where(WebhookSubscription.id == subscription_id).run()
            )
        return removed

    async def deliveries(
        self,
        subscription_id: uuid.UUID | None = None,
        state: str | None = None,
        event_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[DeliveryOut]:
        """The delivery log, newest first."""
        limit = check_limit(limit)
        if state is not None and state not in DELIVERY_STATES:
            raise InvalidInput(
                f"state must be one of {', '.join(DELIVERY_STATES)}, got {state!r}", field="state"
            )
        query = WebhookDelivery.select()
        if subscription_id is not None:
            await self.get(subscription_id)
            query = query.where(WebhookDelivery.subscription == subscription_id)
        if state is not None:
            query = query.where(WebhookDelivery.state == state)
        if event_id is not None:
            query = query.where(WebhookDelivery.event_id == event_id)
        if cursor is not None:
            (last,) = decode_cursor(cursor, 1)
            try:
                query = query.where(WebhookDelivery.id < uuid.UUID(last))
            except ValueError:
                raise InvalidInput(
                    "the cursor is not one this server handed out", field="cursor"
                ) from None
        # Ids are UUIDv7, so ordering by id is ordering by creation time.
        rows = await query.order_by(WebhookDelivery.id, ascending=False).limit(limit + 1).run()
        items = [delivery_out(row) for row in rows[:limit]]
        next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
        return Page(items=items, next_cursor=next_cursor)

    async def _row(self, delivery_id: uuid.UUID) -> dict[str, Any]:
        row = await WebhookDelivery.select().where(WebhookDelivery.id == delivery_id).first().run()
        if row is None:
            raise NotFound(f"webhook delivery {delivery_id} does not exist")
        found: dict[str, Any] = row
        return found

    async def delivery(self, delivery_id: uuid.UUID) -> DeliveryOut:
        return delivery_out(await self._row(delivery_id))

    async def delivery_detail(
        self,
        delivery_id: uuid.UUID,
        actor: Actor = SYSTEM,
        channel: str = "api",
        context: Mapping[str, str] | None = None,
    ) -> DeliveryDetail:
        """One delivery with the start of its receiver's last answer, opened from its seal;
        the read is recorded in the contact's audit log (with ``context``, such as who ran a
        command)."""
        row = await self._row(delivery_id)
        text = await open_response(self.kith, row["contact_id"], row["id"], row[RESPONSE_TEXT])
        if text is not None:
            await record_access(
                self.kith,
                row["contact_id"],
                READ_RESPONSE,
                actor,
                channel=channel,
                delivery_id=str(delivery_id),
                **(context or {}),
            )
        return DeliveryDetail(**_delivery_fields(row), response_text=text)

    async def retry(
        self, delivery_id: uuid.UUID, now: dt.datetime | None = None, actor: Actor = SYSTEM
    ) -> DeliveryOut:
        """Queue a failed delivery for one more attempt at the next pass (or ``now``)."""
        async with self.kith.unit_of_work(actor):
            current = await self.delivery(delivery_id)
            if current.state != "failed":
                raise InvalidInput(
                    f"delivery {delivery_id} is {current.state}; only failed deliveries are "
                    "retried by hand (pending ones are retried automatically)",
                    field="delivery_id",
                )
            await (
                WebhookDelivery.update(
                    {
                        WebhookDelivery.state: "pending",
                        WebhookDelivery.next_attempt_at: now or utcnow(),
                    }
                )
                .where(WebhookDelivery.id == delivery_id)
                .run()
            )
        return await self.delivery(delivery_id)
