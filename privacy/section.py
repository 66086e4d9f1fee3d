"""The keys of ``[privacy]`` in ``kith.toml``, declared so that Kith knows the section and a
misspelt key is refused at start-up ("[privacy] four_eye: unknown setting").

Each half of the privacy module validates its own keys with messages of its own
(:mod:`kith.privacy.key_settings`, :mod:`kith.privacy.workflow_settings`), so the types here
are left open; a new key is added here and validated where it is used.
"""

from __future__ import annotations

from typing import Any

import msgspec


class PrivacySection(msgspec.Struct, kw_only=True):
    # Encryption and keys (kith.privacy.key_settings).
    key_file: Any = None
    key_cache_size: Any = None
    key_cache_ttl_seconds: Any = None
    # The request workflow (kith.privacy.workflow_settings).
    four_eyes: Any = None
    withdraw_link_days: Any = None
    controller: Any = None
    purposes: Any = None
    retention: Any = None
    # Data subject rights (kith.privacy.subject_settings, kith.privacy.suppression).
    legal_holds: Any = None
    exports_kept_days: Any = None
    retention_interval_minutes: Any = None
    marketing_purposes: Any = None
