"""The channels of this installation: every plugin's answer to ``kith_messenger_adapters``."""

from __future__ import annotations

from kith import Kith
from kith.plugins.messengers.adapters import MessengerAdapter
from kith.plugins.messengers.settings import settings_of


def adapters_of(kith: Kith) -> dict[str, MessengerAdapter]:
    """Every configured channel by name, from every plugin (this one's built-in ones included)."""
    if kith.plugins is None:
        return {}
    found: dict[str, MessengerAdapter] = {}
    for answer in kith.plugins.hook.kith_messenger_adapters(kith=kith):
        for adapter in answer or []:
            found.setdefault(adapter.channel, adapter)
    return found


def built_in(kith: Kith) -> list[MessengerAdapter]:
    """The channels this plugin brings, those enabled in ``[messengers]``."""
    from kith.plugins.messengers.telegram import TelegramAdapter
    from kith.plugins.messengers.whatsapp import WhatsAppAdapter

    settings = settings_of(kith)
    found: list[MessengerAdapter] = []
    if settings.telegram.enabled:
        found.append(TelegramAdapter(settings.telegram))
    if settings.whatsapp.enabled:
        found.append(WhatsAppAdapter(settings.whatsapp))
    return found
