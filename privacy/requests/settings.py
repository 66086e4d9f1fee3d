"""The requests plugin's keys of ``[privacy]`` in ``kith.toml``::

    [privacy]
    four_eyes = true                 # a second compliance user approves every request
    request_lease_seconds = 300      # how long a run holds a request without renewing

``KITH_PRIVACY_FOUR_EYES=1`` sets it too. The other keys of ``[privacy]`` belong to the
encryption and rights plugins.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from kith import Settings

SECTION = "privacy"

# A run renews its lease three times per period; a worker looks for lapsed leases at least
# this often (and twice per period when the period is shorter).
RESUME_CHECK_SECONDS = 60.0


class RequestSettings(msgspec.Struct, frozen=True, kw_only=True):
    four_eyes: bool = False
    request_lease_seconds: Annotated[float, msgspec.Meta(ge=1, le=86_400)] = 300.0

    @property
    def resume_check_seconds(self) -> float:
        """How often the worker looks for requests whose run stopped."""
        return min(RESUME_CHECK_SECONDS, self.request_lease_seconds / 2)


def request_settings(settings: Settings) -> RequestSettings:
    return settings.parsed(SECTION, RequestSettings)
