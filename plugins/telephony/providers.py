"""The provider adapter interface: what another package implements to bring its telephony to Kith.

A provider turns its own protocol into :class:`~kith.plugins.telephony.provider_events.CallEvent`
values. A provider that holds a connection (Asterisk's AMI) also has ``run``, which the worker
keeps alive; one that is called by webhooks (Twilio, Zadarma, Mango Office) has routes instead.
Both may originate calls for click-to-call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from kith.plugins.telephony.provider_events import CallEvent

EmitCallEvent = Callable[[CallEvent], Awaitable[None]]


@runtime_checkable
class CallProvider(Protocol):
    """A telephony provider Kith can place calls through."""

    name: str

    async def originate(self, *, extension: str, number: str) -> str:
        """Ring ``extension`` and, once it answers, dial ``number`` (E.164).

        Returns the provider's id of the call it placed, the ``call_id`` its events will carry.
        Raises :class:`kith.InvalidInput` when the provider refuses (unknown extension, bad number)
        and :class:`kith.Conflict` when it cannot be reached.
        """
        ...


@runtime_checkable
class ConnectedProvider(CallProvider, Protocol):
    """A provider whose events arrive over a connection Kith keeps open (``kith worker``)."""

    async def run(self, emit: EmitCallEvent) -> None:
        """Connect, hand every call event to ``emit`` in the order received, and reconnect with
        backoff when the connection drops; return only when cancelled."""
        ...
