"""The Asterisk call provider: a kept-alive AMI login whose events become call events."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Callable

import msgspec
from kith import Conflict, InvalidInput, KithError, SettingsError, get_logger, new_id, utcnow
from kith.plugins.telephony.asterisk.connection import AmiSession, LoginRefused
from kith.plugins.telephony.asterisk.settings import AsteriskSettings
from kith.plugins.telephony.asterisk.translator import AmiTranslator
from kith.plugins.telephony.providers import EmitCallEvent
from panoramisk.message import Message

# What Kith passes to the dialplan: nothing that could end an AMI header or a dial string.
_EXTENSION = re.compile(r"^[0-9A-Za-z*#_.+-]{1,40}$")
_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")


class AsteriskStatus(msgspec.Struct, kw_only=True):
    """What ``kith telephony status`` shows of the AMI connection."""

    connected: bool
    since: dt.datetime | None
    last_event_at: dt.datetime | None
    # Receipt time less the event's own time; only when Asterisk stamps its events
    # (``timestampevents = yes`` in manager.conf).
    lag_seconds: float | None
    events_received: int
    reconnects: int
    last_error: str | None
    ami_version: str | None


class AsteriskProvider:
    """Asterisk through its Manager Interface: ``run`` inside ``kith worker``, ``originate``
    for click-to-call."""

    name = "asterisk"

    def __init__(
        self,
        settings: AsteriskSettings,
        *,
        translator: AmiTranslator | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self.translator = translator or AmiTranslator(
            extension_pattern=settings.extension_pattern, clock=clock
        )
        self._log = get_logger("kith.telephony.asterisk")
        self._session: AmiSession | None = None
        self._since: dt.datetime | None = None
        self._last_event_at: dt.datetime | None = None
        self._lag: float | None = None
        self._events = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._failed_types: set[str] = set()

    @classmethod
    def from_settings(cls, settings: AsteriskSettings) -> AsteriskProvider:
        """The provider for the ``[telephony.asterisk]`` section; raises SettingsError naming
        what is missing or wrong."""
        problems = settings.problems()
        if problems:
            raise SettingsError("[telephony.asterisk] " + "; ".join(problems))
        return cls(settings)

    def status(self) -> AsteriskStatus:
        session = self._session
        return AsteriskStatus(
            connected=session is not None,
            since=self._since,
            last_event_at=self._last_event_at,
            lag_seconds=self._lag,
            events_received=self._events,
            reconnects=self._reconnects,
            last_error=self._last_error,
            ami_version=session.version if session is not None else None,
        )

    # -- the connection -----------------------------------------------------------------------

    async def run(self, emit: EmitCallEvent) -> None:
        """Keep a login to the AMI and hand on every call event, in order, until cancelled.

        A refused login or a lost connection is logged and tried again after a backoff that
        doubles from ``reconnect_min_seconds`` to ``reconnect_max_seconds``. ``emit`` refusing
        an event with a :class:`kith.KithError` skips that event; any other error ends ``run``.
        """
        settings = self._settings
        delay = settings.reconnect_min_seconds
        attempts = 0
        while True:
            if attempts:
                self._reconnects += 1
            attempts += 1
            if await self._one_session(emit):
                delay = settings.reconnect_min_seconds
            self._log.info("asterisk reconnect scheduled", in_seconds=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.reconnect_max_seconds)

    async def _one_session(self, emit: EmitCallEvent) -> bool:
        """One connection from connect to loss; whether it logged in."""
        settings = self._settings
        queue: asyncio.Queue[Message | None] = asyncio.Queue()
        session = AmiSession(settings, queue.put_nowait)
        try:
            try:
                await session.open()
            except LoginRefused as exc:
                self._last_error = f"login refused: {exc}"
                self._log.error(
                    "asterisk refused the login", username=settings.username, reason=str(exc)
                )
                return False
            except (OSError, TimeoutError) as exc:
                self._last_error = f"cannot connect to {settings.host}:{settings.port}: {exc!r}"
                self._log.warning("asterisk not reachable", host=settings.host, port=settings.port)
                return False
            self._session = session
            self._since = self._clock()
            self._last_error = None
            self._log.info(
                "asterisk connected",
                host=settings.host,
                port=settings.port,
                ami_version=session.version,
            )
            pinger = asyncio.create_task(self._keep_alive(session))
            try:
                while (message := await queue.get()) is not None:
                    await self._handle(message, emit)
            finally:
                pinger.cancel()
            self._last_error = "connection lost"
            self._log.warning("asterisk connection lost", host=settings.host)
            return True
        finally:
            self._session = None
            session.drop()

    async def _keep_alive(self, session: AmiSession) -> None:
        settings = self._settings
        while True:
            await asyncio.sleep(settings.ping_interval_seconds)
            try:
                await session.act({"Action": "Ping"}, settings.ping_timeout_seconds)
            except TimeoutError:
                self._log.warning(
                    "asterisk did not answer a ping; reconnecting",
                    timeout_seconds=settings.ping_timeout_seconds,
                )
                session.drop()
                return
            except ConnectionError:
                return

    async def _handle(self, message: Message, emit: EmitCallEvent) -> None:
        self._events += 1
        received = self._clock()
        self._last_event_at = received
        stamp = message.get("timestamp")
        if stamp:
            try:
                self._lag = max(0.0, time.time() - float(stamp))
            except ValueError:
                self._lag = None
        try:
            events = self.translator.feed(message)
        except Exception as exc:
            # One unreadable event never stops the stream; each kind of failure is told once.
            kind = f"{message.get('event', '?')}:{type(exc).__name__}"
            if kind not in self._failed_types:
                self._failed_types.add(kind)
                self._log.error(
                    "asterisk event could not be read; skipped",
                    ami_event=message.get("event"),
                    error=type(exc).__name__,
                )
            return
        for event in events:
            try:
                await emit(event)
            except KithError as exc:
                self._log.warning(
                    "call event refused; skipped", key=event.key, kind=event.kind, reason=exc.detail
                )

    # -- click-to-call ------------------------------------------------------------------------

    async def originate(self, *, extension: str, number: str) -> str:
        """Ring ``extension`` through a Local channel; once it answers, Asterisk dials
        ``number`` in ``originate_context``. Returns the call id its events carry."""
        if not _EXTENSION.match(extension):
            raise InvalidInput("not an extension Asterisk can dial", field="extension")
        if not _NUMBER.match(number):
            raise InvalidInput("not a phone number Asterisk can dial", field="number")
        settings = self._settings
        call_id = str(new_id())
        action_id = f"kith-originate-{call_id}"
        self.translator.expect_originate(
            call_id, extension=extension, number=number, action_id=action_id
        )
        action = {
            "Action": "Originate",
            "ActionID": action_id,
            "Channel": settings.originate_channel.replace("{extension}", extension),
            "Context": settings.originate_context,
            "Exten": number,
            "Priority": "1",
            "Timeout": str(int(settings.originate_ring_seconds * 1000)),
            # The agent's phone shows whom it is about to call; the outbound route sets the
            # firm's own caller id towards the other party.
            "CallerID": number,
            "Async": "true",
            # Asterisk 12 and later name the call (its Linkedid) after this; Asterisk 11 reports
            # the variable instead.
            "ChannelId": call_id,
            "Variable": f"KITH_CALL_ID={call_id}",
        }
        try:
            response = await self._originate(action)
        except (TimeoutError, OSError, LoginRefused):
            self.translator.forget_originate(call_id)
            raise Conflict("Asterisk did not take the call; try again") from None
        if not response.success:
            self.translator.forget_originate(call_id)
            reason = str(response.get("message") or "refused")
            raise InvalidInput(f"Asterisk refused the call: {reason}", field="extension")
        self._log.info("asterisk call originated", call_id=call_id)
        return call_id

    async def _originate(self, action: dict[str, str]) -> Message:
        """Send the Originate on the running connection, or, in a process that keeps none
        (``kith call``), on one opened for it: the worker's connection sees its events."""
        timeout = self._settings.connect_timeout_seconds
        session = self._session
        if session is not None:
            return await session.act(action, timeout)
        session = AmiSession(self._settings, lambda _message: None)
        try:
            await session.open()
            return await session.act(action, timeout)
        finally:
            session.drop()
