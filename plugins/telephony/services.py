"""Calls: every provider event goes through :meth:`CallService.record`, which keeps one call
per provider call id, on the matched contact's timeline, whatever order events arrive in."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from kith import (
    Actor,
    Conflict,
    ContactCreate,
    ContactIntake,
    ContactService,
    InteractionCreate,
    InteractionPatch,
    InteractionService,
    InvalidInput,
    Kith,
    NotFound,
    PhoneIn,
    UserService,
    check_processing,
    get_logger,
    new_id,
    normalize_phone,
    utcnow,
)
from kith.plugins.telephony.provider_events import CallEvent
from kith.plugins.telephony.providers import CallProvider
from kith.plugins.telephony.schemas import CallOut, ProviderStatus
from kith.plugins.telephony.settings import TelephonySettings, settings_of
from kith.plugins.telephony.tables import TelephonyCall, TelephonyEvent
from kith.plugins.telephony.working_hours import callback_due

ACTOR = Actor(kind="plugin", name="telephony")
CHANNEL = "telephony"
TABLE = str(TelephonyCall._meta.tablename)
BUILT_IN = ("twilio", "zadarma", "mango")
# A call placed through a provider that does not say its own id (Zadarma) carries Kith's until
# the provider's first event about it arrives, within this window.
PLACED_PREFIX = "callback-"
PLACED_WINDOW = dt.timedelta(minutes=10)
log = get_logger("kith.plugins.telephony")


def source_of(provider: str) -> str:
    """The ``source`` of the interactions, tasks and leads a provider's calls make."""
    return f"telephony.{provider}"


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, round((end - start).total_seconds()))


def call_out(row: dict[str, Any]) -> CallOut:
    return CallOut(
        id=row["id"],
        provider=row["provider"],
        call_id=row["call_id"],
        contact_id=row["contact_id"],
        interaction_id=row["interaction_id"],
        direction=row["direction"],
        extension=row["extension"],
        user_id=row["user_id"],
        queue=row["queue"],
        started_at=_utc(row["started_at"]),
        answered_at=_utc(row["answered_at"]),
        ended_at=_utc(row["ended_at"]),
        duration_s=row["duration_s"],
        talk_s=row["talk_s"],
        outcome=row["outcome"],
        transfers=list(row["transfers"] or []),
        recording_seconds=row["recording_seconds"],
        has_recording=row["recording_ref"] is not None,
        recording_stored=row.get("recording_stored_at") is not None,
        callback_task_id=row["callback_task_id"],
        callback_closed_by=row["callback_closed_by"],
    )


def _load_json(row: dict[str, Any]) -> dict[str, Any]:
    # Both engines give JSON columns back as text.
    for name in ("transfers", "published"):
        value = row.get(name)
        if isinstance(value, str | bytes):
            row[name] = msgspec.json.decode(value or b"[]")
    return row


def summary_of(row: dict[str, Any]) -> str:
    """The timeline line of a call (no personal data: that is on the contact)."""
    direction = {"inbound": "Inbound", "outbound": "Outbound"}.get(row["direction"], "Internal")
    outcome = row["outcome"] or ("in progress" if row["answered_at"] else "ringing")
    text = f"{direction} call, {outcome}"
    if row["talk_s"]:
        minutes, seconds = divmod(int(row["talk_s"]), 60)
        text += f", {minutes} min {seconds} s" if minutes else f", {seconds} s"
    if row["extension"]:
        text += f" (extension {row['extension']})"
    return text


class CallService:
    """Calls from provider events, missed-call callbacks and click-to-call."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith
        self.settings: TelephonySettings = settings_of(kith)

    # -- matching ------------------------------------------------------------------------------

    def _is_extension(self, value: str | None) -> bool:
        if not value:
            return False
        return value in self.settings.extensions or (value.isdigit() and len(value) <= 5)

    def _number(self, value: str | None) -> str | None:
        """The E.164 form of a party's number; None for an extension, a withheld or a
        malformed number."""
        if not value or self._is_extension(value):
            return None
        try:
            return normalize_phone(value, self.kith.settings.default_region)
        except InvalidInput:
            return None

    def _direction(self, event: CallEvent) -> str:
        if event.direction is not None:
            return event.direction
        return "outbound" if self._is_extension(event.from_number) else "inbound"

    async def _user_for(self, extension: str | None) -> uuid.UUID | None:
        email = self.settings.extensions.get(extension or "")
        if not email:
            return None
        try:
            return (await UserService(self.kith).by_email(email)).id
        except NotFound:
            log.warning("telephony.unknown_extension_user", extension=extension)
            return None

    async def _match(self, provider: str, number: str) -> tuple[uuid.UUID, bool]:
        """The contact holding ``number``, or a new lead for it; and whether it is new."""
        lead = ContactCreate(
            name=number,
            phones=[PhoneIn(number=number, primary=True)],
            tags=["lead"],
            source=source_of(provider),
        )
        intake = ContactIntake(ContactService(self.kith, CHANNEL))
        # Most callers are known: a lookup by blind index, without reading the contact. Only
        # an unknown number takes the locked find-or-create, which makes one lead however
        # many events about it arrive at once.
        found = await intake.match(lead)
        if found is not None:
            return found[0], False
        made = await intake.find_or_create(lead, ACTOR)
        return made.contact.id, made.created

    # -- recording events ----------------------------------------------------------------------

    async def record(self, event: CallEvent, contact_id: uuid.UUID | None = None) -> CallOut | None:
        """Take in one provider event: None when it was taken in before (same provider and
        key), else the call as it stands now. ``contact_id`` pins the contact of a call Kith
        placed itself."""
        async with self.kith.unit_of_work(ACTOR) as uow:
            # One event of a call at a time; events of other calls run alongside.
            await self.kith.database.lock([f"telephony\x00{event.provider}\x00{event.call_id}"])
            seen = await TelephonyEvent.exists().where(
                (TelephonyEvent.provider == event.provider) & (TelephonyEvent.key == event.key)
            )
            if seen:
                return None
            now = utcnow()
            await TelephonyEvent.insert(
                TelephonyEvent(
                    id=new_id(),
                    provider=event.provider,
                    key=event.key,
                    call_id=event.call_id,
                    kind=event.kind,
                    at=_utc(event.at),
                    received_at=now,
                )
            )
            found = (
                await TelephonyCall.select()
                .where(
                    (TelephonyCall.provider == event.provider)
                    & (TelephonyCall.call_id == event.call_id)
                )
                .first()
            )
            new_lead = False
            if found is None and contact_id is None:
                found = await self._placed_call(event, now)
            if found is None:
                row, new_lead = await self._new_call(event, contact_id, now)
                before: dict[str, Any] = {}
            else:
                row = _load_json(dict(found))
                placed_as = row.pop("placed_as", None)
                before = dict(row)
                if placed_as is not None:
                    row["call_id"] = event.call_id
            await self._apply(row, event)
            await self._follow_up(row, uow, new_lead)
            await self._save(row, before, now)
        return call_out(row)

    async def _placed_call(self, event: CallEvent, now: dt.datetime) -> dict[str, Any] | None:
        """The call Kith placed (click-to-call) that this first event of a provider call is
        about, taken over under the provider's call id; None when it is another call.

        Mango's events name the command that placed the call. Zadarma's name nothing: the
        placed call is the one of the same extension to the same number, placed moments ago
        and not yet taken over (its id is still Kith's own)."""
        placed: list[dict[str, Any]] = []
        command = event.detail.get("command_id", "")
        if event.provider == "mango" and command:
            placed = await TelephonyCall.select().where(
                (TelephonyCall.provider == event.provider) & (TelephonyCall.call_id == command)
            )
        elif event.provider == "zadarma" and event.direction == "outbound" and event.extension:
            number = self._number(event.to_number)
            candidates = await (
                TelephonyCall.select()
                .where(
                    (TelephonyCall.provider == event.provider)
                    & TelephonyCall.call_id.like(f"{PLACED_PREFIX}%")
                    & (TelephonyCall.extension == event.extension)
                    & (TelephonyCall.created_at >= now - PLACED_WINDOW)
                    & TelephonyCall.contact_id.is_not_null()
                )
                .order_by(TelephonyCall.created_at)
            )
            for candidate in candidates:
                opened = await self.kith.protector.reveal(
                    candidate["contact_id"], TABLE, candidate["id"], {"number": candidate["number"]}
                )
                if number is not None and opened["number"] == number:
                    placed = [candidate]
                    break
        if not placed:
            return None
        row = dict(placed[0])
        log.info("telephony.placed_call_linked", provider=event.provider, call_id=str(row["id"]))
        await TelephonyEvent.update({TelephonyEvent.call_id: event.call_id}).where(
            (TelephonyEvent.provider == event.provider) & (TelephonyEvent.call_id == row["call_id"])
        )
        # Saved with the rest of the event's changes: the row's id and timeline entry stay.
        row["placed_as"] = row["call_id"]
        return row

    async def _new_call(
        self, event: CallEvent, contact_id: uuid.UUID | None, now: dt.datetime
    ) -> tuple[dict[str, Any], bool]:
        direction = self._direction(event)
        party = {"inbound": event.from_number, "outbound": event.to_number}.get(direction)
        number = self._number(party)
        new_lead = False
        if contact_id is None and number is not None:
            contact_id, new_lead = await self._match(event.provider, number)
        row: dict[str, Any] = {
            "id": new_id(),
            "provider": event.provider,
            "call_id": event.call_id,
            "contact_id": contact_id,
            "interaction_id": None,
            "direction": direction,
            "number": None,
            "extension": None,
            "user_id": None,
            "queue": None,
            "started_at": None,
            "answered_at": None,
            "ended_at": None,
            "duration_s": None,
            "talk_s": None,
            "provider_outcome": None,
            "outcome": None,
            "transfers": [],
            "recording_ref": None,
            "recording_seconds": None,
            "recording_at": None,
            "recording_type": None,
            "recording_bytes": None,
            "recording_stored_at": None,
            "recording_deleted_at": None,
            "callback_task_id": None,
            "callback_closed_by": None,
            "published": [],
            "created_at": now,
            "updated_at": now,
        }
        if contact_id is not None and number is not None:
            sealed = await self.kith.protector.protect(
                contact_id, TABLE, row["id"], {"number": number}
            )
            row["number"] = sealed["number"]
        return row, new_lead

    async def _apply(self, row: dict[str, Any], event: CallEvent) -> None:
        """Merge one event into the call: earliest start and answer, latest end, the
        provider's outcome when it gives one, inferred otherwise."""
        at = _utc(event.at)
        assert at is not None
        row["started_at"] = min(filter(None, [_utc(row["started_at"]), at]))
        if event.queue and not row["queue"]:
            row["queue"] = event.queue
        if event.kind == "ringing" and event.extension and not row["extension"]:
            row["extension"] = event.extension
        elif event.kind == "answered":
            row["answered_at"] = min(filter(None, [_utc(row["answered_at"]), at]))
            row["extension"] = event.extension or row["extension"]
        elif event.kind == "transferred":
            row["transfers"] = [
                *row["transfers"],
                {"at": at.isoformat(), "to": event.transferred_to, "from": row["extension"]},
            ]
            row["extension"] = event.transferred_to or row["extension"]
        elif event.kind == "ended":
            row["ended_at"] = max(filter(None, [_utc(row["ended_at"]), at]))
            row["provider_outcome"] = event.outcome or row["provider_outcome"]
            row["extension"] = row["extension"] or event.extension
            talk = event.detail.get("talk_seconds", "")
            if talk.isdigit():
                row["talk_s"] = int(talk)
        elif event.kind == "recording_ready" and event.recording_ref:
            await self._keep_recording(row, event)
        answered, ended = _utc(row["answered_at"]), _utc(row["ended_at"])
        if ended is not None:
            row["duration_s"] = _seconds(_utc(row["started_at"]), ended)
            # The provider's own talk time, when it gave one, wins.
            if answered is not None and not row["talk_s"]:
                row["talk_s"] = _seconds(answered, ended)
            row["outcome"] = row["provider_outcome"] or (
                "answered"
                if answered is not None
                else "missed"
                if row["direction"] == "inbound"
                else "cancelled"
            )
        row["user_id"] = await self._user_for(row["extension"]) if row["extension"] else None

    async def _keep_recording(self, row: dict[str, Any], event: CallEvent) -> None:
        row["recording_seconds"] = event.recording_seconds
        row["recording_at"] = utcnow()
        if row["contact_id"] is None:
            # Nobody to seal it for: the reference is not kept (the provider still has it).
            return
        sealed = await self.kith.protector.protect(
            row["contact_id"], TABLE, row["id"], {"recording_ref": event.recording_ref or ""}
        )
        row["recording_ref"] = sealed["recording_ref"]

    # -- what a change sets off ----------------------------------------------------------------

    def _payload(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "call_id": str(row["id"]),
            "provider": row["provider"],
            "provider_call_id": row["call_id"],
            "interaction_id": str(row["interaction_id"]) if row["interaction_id"] else None,
            "contact_id": str(row["contact_id"]) if row["contact_id"] else None,
            "extension": row["extension"],
            "user_id": str(row["user_id"]) if row["user_id"] else None,
            "direction": row["direction"],
        }

    async def _follow_up(self, row: dict[str, Any], uow: Any, new_lead: bool) -> None:
        """The timeline entry, callbacks and ``call.*`` events, each once."""
        published: list[str] = list(row["published"])
        contact_id = row["contact_id"]
        interactions = InteractionService(self.kith, CHANNEL)
        if contact_id is not None and row["interaction_id"] is None:
            logged, _ = await interactions.log(
                contact_id,
                InteractionCreate(
                    kind="call",
                    direction=row["direction"] if row["direction"] != "internal" else None,
                    occurred_at=row["started_at"],
                    summary=summary_of(row),
                    channel=row["provider"][:50],
                    duration_s=row["talk_s"],
                    source=source_of(row["provider"]),
                    external_id=row["call_id"],
                ),
                ACTOR,
            )
            row["interaction_id"] = logged.id
        if "call.started" not in published:
            uow.publish("call.started", contact_id, **self._payload(row), new_lead=new_lead)
            published.append("call.started")
        if row["answered_at"] is not None and "call.answered" not in published:
            uow.publish("call.answered", contact_id, **self._payload(row))
            published.append("call.answered")
        if row["ended_at"] is not None and "call.ended" not in published:
            uow.publish(
                "call.ended",
                contact_id,
                **self._payload(row),
                outcome=row["outcome"],
                duration_s=row["duration_s"],
                talk_s=row["talk_s"],
            )
            published.append("call.ended")
        missed = row["outcome"] == "missed" and row["direction"] == "inbound"
        if missed and contact_id is not None and row["callback_task_id"] is None:
            row["callback_task_id"] = await self._callback_task(row)
        if missed and "call.missed" not in published:
            uow.publish(
                "call.missed",
                contact_id,
                **self._payload(row),
                callback_task_id=str(row["callback_task_id"]) if row["callback_task_id"] else None,
            )
            published.append("call.missed")
        if row["outcome"] == "answered" and contact_id is not None:
            await self._close_callbacks(row)
        if row["recording_at"] is not None and "call.recording_ready" not in published:
            uow.publish(
                "call.recording_ready",
                contact_id,
                **self._payload(row),
                recording_seconds=row["recording_seconds"],
            )
            published.append("call.recording_ready")
        row["published"] = published

    async def _callback_task(self, row: dict[str, Any]) -> uuid.UUID:
        contact = await ContactService(self.kith, CHANNEL).get(row["contact_id"], ACTOR)
        assignee = contact.owner_id
        if assignee is None and self.settings.callback_assignee:
            try:
                assignee = (
                    await UserService(self.kith).by_email(self.settings.callback_assignee)
                ).id
            except NotFound:
                log.warning("telephony.callback_assignee_unknown")
        ended = _utc(row["ended_at"]) or utcnow()
        task, _ = await InteractionService(self.kith, CHANNEL).log(
            row["contact_id"],
            InteractionCreate(
                kind="task",
                summary="Call back: missed call",
                due_at=callback_due(ended, self.settings, self.kith.settings.timezone),
                assignee_id=assignee,
                source=source_of(row["provider"]),
                external_id=f"callback:{row['call_id']}"[:200],
            ),
            ACTOR,
        )
        return task.id

    async def _close_callbacks(self, row: dict[str, Any]) -> None:
        """An answered call with the contact, either way, closes their open callbacks (this
        call's own too, when its answer arrived after its end) and is linked to them."""
        open_calls = await (
            TelephonyCall.select(TelephonyCall.id, TelephonyCall.callback_task_id)
            .where(
                (TelephonyCall.contact_id == row["contact_id"])
                & TelephonyCall.callback_task_id.is_not_null()
                & TelephonyCall.callback_closed_by.is_null()
                & (TelephonyCall.id != row["id"])
            )
            .run()
        )
        interactions = InteractionService(self.kith, CHANNEL)
        answered = _utc(row["answered_at"]) or utcnow()
        for missed in open_calls:
            await interactions.complete(missed["callback_task_id"], ACTOR, at=answered)
            await TelephonyCall.update({TelephonyCall.callback_closed_by: row["id"]}).where(
                TelephonyCall.id == missed["id"]
            )
        if row["callback_task_id"] is not None and row["callback_closed_by"] is None:
            await interactions.complete(row["callback_task_id"], ACTOR, at=answered)
            row["callback_closed_by"] = row["id"]

    async def _save(self, row: dict[str, Any], before: dict[str, Any], now: dt.datetime) -> None:
        row["updated_at"] = now
        if not before:
            await TelephonyCall.insert(TelephonyCall(**row))
        else:
            changed = {
                TelephonyCall._meta.get_column_by_name(name): value
                for name, value in row.items()
                if name != "id" and value != before.get(name)
            }
            await TelephonyCall.update(changed).where(TelephonyCall.id == row["id"])
        if before and row["interaction_id"] is not None:
            previous = {**before, "interaction_id": row["interaction_id"]}
            if (summary_of(previous), before["talk_s"], before["started_at"]) != (
                summary_of(row),
                row["talk_s"],
                row["started_at"],
            ):
                await InteractionService(self.kith, CHANNEL).update(
                    row["interaction_id"],
                    InteractionPatch(
                        summary=summary_of(row),
                        duration_s=row["talk_s"],
                        occurred_at=row["started_at"],
                    ),
                    ACTOR,
                )

    # -- reading -------------------------------------------------------------------------------

    async def get(self, call_id: uuid.UUID) -> CallOut:
        row = await TelephonyCall.select().where(TelephonyCall.id == call_id).first()
        if row is None:
            raise NotFound(f"call {call_id} does not exist")
        return call_out(_load_json(dict(row)))

    async def find(self, provider: str, call_id: str) -> CallOut | None:
        row = (
            await TelephonyCall.select()
            .where((TelephonyCall.provider == provider) & (TelephonyCall.call_id == call_id))
            .first()
        )
        return None if row is None else call_out(_load_json(dict(row)))

    async def status(self, providers: list[CallProvider]) -> list[ProviderStatus]:
        """Per provider: enabled, events taken in, the last one and how late it came."""
        settings = self.settings
        enabled = {
            "twilio": settings.twilio.enabled,
            "zadarma": settings.zadarma.enabled,
            "mango": settings.mango.enabled,
        }
        for provider in providers:
            enabled[provider.name] = True
        seen = await TelephonyEvent.select(TelephonyEvent.provider).distinct().run()
        names = sorted({*enabled, *(row["provider"] for row in seen)})
        found = []
        for name in names:
            count = await TelephonyEvent.count().where(TelephonyEvent.provider == name)
            last = (
                await TelephonyEvent.select(TelephonyEvent.at, TelephonyEvent.received_at)
                .where(TelephonyEvent.provider == name)
                .order_by(TelephonyEvent.received_at, ascending=False)
                .first()
            )
            received = _utc(last["received_at"]) if last else None
            happened = _utc(last["at"]) if last else None
            lag = (
                (received - happened).total_seconds()
                if received is not None and happened is not None
                else None
            )
            found.append(
                ProviderStatus(
                    provider=name,
                    enabled=enabled.get(name, False),
                    events=int(count),
                    last_event_at=received,
                    lag_seconds=lag,
                )
            )
        return found

    async def calls_since(self, since: dt.datetime) -> int:
        """How many calls began (or were first heard of) since then."""
        return int(await TelephonyCall.count().where(TelephonyCall.created_at >= since))

    # -- click-to-call -------------------------------------------------------------------------

    def _provider(self, providers: list[CallProvider]) -> CallProvider:
        chosen = self.settings.click_to_call_provider
        if chosen:
            for provider in providers:
                if provider.name == chosen:
                    return provider
            raise Conflict(f"the click-to-call provider {chosen!r} is not enabled")
        if not providers:
            raise Conflict("no telephony provider is enabled; see [telephony] in kith.toml")
        if len(providers) > 1:
            names = ", ".join(sorted(p.name for p in providers))
            raise Conflict(
                f"several telephony providers are enabled ({names}); choose one with "
                "[telephony] click_to_call_provider"
            )
        return providers[0]

    async def extension_of(self, user_id: uuid.UUID) -> str:
        user = await UserService(self.kith).get(user_id)
        for extension, email in self.settings.extensions.items():
            if email.lower() == user.email.lower():
                return extension
        raise InvalidInput(
            "you have no extension; map one to your email in [telephony] extensions",
            field="extension",
        )

    async def call(
        self,
        contact_id: uuid.UUID,
        actor: Actor,
        providers: list[CallProvider],
        *,
        user_id: uuid.UUID | None = None,
    ) -> CallOut:
        """Place a call from the user's extension to the contact's primary phone through the
        configured provider, and log it as an outbound call."""
        provider = self._provider(providers)
        caller = user_id or (actor.id if actor.kind == "user" else None)
        if caller is None:
            raise InvalidInput("say which user places the call", field="user")
        extension = await self.extension_of(caller)
        contact = await ContactService(self.kith, CHANNEL).get(contact_id, actor)
        await check_processing(self.kith, contact_id, "telephony.call")
        phones = sorted(contact.phones, key=lambda phone: not phone.primary)
        if not phones:
            raise InvalidInput(f"contact {contact_id} has no phone number", field="contact_id")
        number = phones[0].number
        provider_call_id = await provider.originate(extension=extension, number=number)
        placed = await self.record(
            CallEvent(
                provider=provider.name,
                call_id=provider_call_id,
                key=f"{provider_call_id}:originate",
                kind="ringing",
                at=utcnow(),
                direction="outbound",
                to_number=number,
                extension=extension,
            ),
            contact_id=contact_id,
        )
        assert placed is not None
        return placed

    async def forget_old_recordings(self, now: dt.datetime | None = None) -> int:
        """Delete recordings (references and stored audio) past
        ``recording_retention_days``; how many calls lost theirs."""
        from kith.plugins.telephony.recordings import RecordingService

        return await RecordingService(self.kith).delete_old(now)
