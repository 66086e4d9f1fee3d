"""The ``[messengers]`` section of ``kith.toml``: one table per channel."""

from __future__ import annotations

import msgspec
from kith import Kith
from msgspec import Struct

SECTION = "messengers"


class TelegramSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """``[messengers.telegram]``: a bot made with BotFather."""

    enabled: bool = False
    bot_token: str = ""
    # Sent by Telegram in X-Telegram-Bot-Api-Secret-Token with every update (setWebhook's
    # secret_token): 1-256 of A-Z, a-z, 0-9, _ and -.
    secret_token: str = ""
    api_url: str = "https://api.telegram.org"


class WhatsAppSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """``[messengers.whatsapp]``: a WhatsApp Business Cloud API number of a Meta app."""

    enabled: bool = False
    # The Meta app's secret: X-Hub-Signature-256 is an HMAC of each webhook body under it.
    app_secret: str = ""
    # What Kith expects in hub.verify_token when Meta checks the callback URL.
    verify_token: str = ""
    access_token: str = ""
    phone_number_id: str = ""
    api_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"


class MessengersSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``[messengers]`` section of ``kith.toml``."""

    telegram: TelegramSettings = msgspec.field(default_factory=TelegramSettings)
    whatsapp: WhatsAppSettings = msgspec.field(default_factory=WhatsAppSettings)


def settings_of(kith: Kith) -> MessengersSettings:
    return kith.settings.parsed(SECTION, MessengersSettings)
