"""The providers of this installation: every plugin's answer to ``kith_telephony_providers``."""

from __future__ import annotations

from kith import Kith
from kith.plugins.telephony.providers import CallProvider
from kith.plugins.telephony.settings import settings_of


def providers_of(kith: Kith) -> list[CallProvider]:
    """Every configured provider, from every plugin (this one's built-in ones included)."""
    if kith.plugins is None:
        return []
    found: list[CallProvider] = []
    for answer in kith.plugins.hook.kith_telephony_providers(kith=kith):
        found.extend(answer or [])
    return found


def built_in(kith: Kith) -> list[CallProvider]:
    """The providers this plugin brings, those enabled in ``[telephony]``."""
    from kith.plugins.telephony.asterisk.worker import provider_of
    from kith.plugins.telephony.mango import MangoProvider
    from kith.plugins.telephony.twilio import TwilioProvider
    from kith.plugins.telephony.zadarma import ZadarmaProvider

    settings = settings_of(kith)
    found: list[CallProvider] = []
    if settings.twilio.enabled:
        found.append(TwilioProvider(settings.twilio))
    if settings.zadarma.enabled:
        found.append(ZadarmaProvider(settings.zadarma))
    if settings.mango.enabled:
        found.append(MangoProvider(settings.mango))
    if settings.asterisk.enabled:
        found.append(provider_of(kith, settings.asterisk))
    return found
