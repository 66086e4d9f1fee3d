"""The ``[telephony]`` section of ``kith.toml``: extensions, working hours, providers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from kith import Kith
from kith.plugins.telephony.asterisk.settings import AsteriskSettings
from msgspec import Meta, Struct

SECTION = "telephony"
Clock = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM")]


class TwilioSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """``[telephony.twilio]``: voice status and recording callbacks, and click-to-call."""

    enabled: bool = False
    account_sid: str = ""
    auth_token: str = ""
    # The address Twilio calls, as Twilio sees it (behind a proxy, the proxy's); signatures are
    # computed over it. Empty: Kith's public_url, else the address the request came in at.
    public_url: str = ""
    api_url: str = "https://api.twilio.com"
    # The number click-to-call calls from (a number of the Twilio account).
    caller_id: str = ""


class ZadarmaSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """``[telephony.zadarma]``: PBX call notifications, and click-to-call."""

    enabled: bool = False
    api_key: str = ""
    api_secret: str = ""
    api_url: str = "https://api.zadarma.com"


class MangoSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """``[telephony.mango]``: Mango Office VPBX events, and click-to-call."""

    enabled: bool = False
    api_key: str = ""
    api_salt: str = ""
    api_url: str = "https://app.mango-office.ru/vpbx"


class RecordingSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """``[telephony.recordings]``: recordings fetched from the provider and kept sealed."""

    # Off: Kith keeps only the provider's reference, as before, and plays nothing back.
    fetch: bool = True
    # A larger recording is refused (its fetch fails and ends in the dead letters).
    max_megabytes: Annotated[int, Meta(ge=1, le=4096)] = 200
    # Where the PBX's web server serves Asterisk's MixMonitor files (the file name is added);
    # empty: Asterisk recordings stay on the PBX.
    asterisk_url: str = ""


class TelephonySettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``[telephony]`` section of ``kith.toml``."""

    # Office extension -> the email of the Kith user who answers it.
    extensions: dict[str, str] = msgspec.field(default_factory=dict)
    # The provider click-to-call uses when several are enabled.
    click_to_call_provider: str = ""
    # Working hours for callback tasks; the time zone defaults to the installation's.
    timezone: str = ""
    work_days: Annotated[list[Annotated[int, Meta(ge=1, le=7)]], Meta(max_length=7)] = (
        msgspec.field(default_factory=lambda: [1, 2, 3, 4, 5])
    )
    work_start: Clock = "09:00"
    work_end: Clock = "18:00"
    holidays: list[dt.date] = msgspec.field(default_factory=list)
    callback_delay_minutes: Annotated[int, Meta(ge=0, le=7 * 24 * 60)] = 15
    # Who gets a callback task when the contact has no owner (a user's email); empty: nobody.
    callback_assignee: str = ""
    # Call recordings (the reference and the fetched audio) are deleted after this many days
    # (0: kept until erasure).
    recording_retention_days: Annotated[int, Meta(ge=0, le=36600)] = 90
    recordings: RecordingSettings = msgspec.field(default_factory=RecordingSettings)
    twilio: TwilioSettings = msgspec.field(default_factory=TwilioSettings)
    zadarma: ZadarmaSettings = msgspec.field(default_factory=ZadarmaSettings)
    mango: MangoSettings = msgspec.field(default_factory=MangoSettings)
    asterisk: AsteriskSettings = msgspec.field(default_factory=AsteriskSettings)

    def __post_init__(self) -> None:
        if self.work_end <= self.work_start:
            raise ValueError("work_end must come after work_start")


def settings_of(kith: Kith) -> TelephonySettings:
    return kith.settings.parsed(SECTION, TelephonySettings)
