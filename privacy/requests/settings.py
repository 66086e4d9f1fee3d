"""The requests plugin's keys of ``[privacy]`` in ``kith.toml``::

    [privacy]
    four_eyes = true                 # a second compliance user approves every request

``KITH_PRIVACY_FOUR_EYES=1`` sets it too. The other keys of ``[privacy]`` belong to the
encryption and rights plugins.
"""

from __future__ import annotations

import msgspec
from kith import Settings

SECTION = "privacy"


class RequestSettings(msgspec.Struct, frozen=True, kw_only=True):
    four_eyes: bool = False


def request_settings(settings: Settings) -> RequestSettings:
    return settings.parsed(SECTION, RequestSettings)
