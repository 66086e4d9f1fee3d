"""The telephony plugin's own hooks: what another package implements to bring its telephony.

Declared through :func:`kith_add_hookspecs` when the telephony plugin registers; implemented
like any Kith hook, with a function of the same name decorated with ``kith.hookimpl``. The
reference in docs/plugins/telephony-hooks.md is generated from this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy
from kith.plugins.telephony.providers import CallProvider

if TYPE_CHECKING:
    from kith import Kith

# The marker of Kith's project name: these hooks live beside core's.
hookspec = pluggy.HookspecMarker("kith")


@hookspec
def kith_telephony_providers(kith: Kith) -> list[CallProvider]:
    """Return the telephony providers this plugin offers, configured for this installation
    (an empty list when its settings leave them off). Each is a :class:`CallProvider`; one that
    holds a connection (Asterisk's AMI) is also a ``ConnectedProvider``. Click-to-call places
    calls through them (``[telephony] click_to_call_provider`` picks one by ``name`` when there
    are several), and their events reach Kith through ``CallService.record``. Collecting: the
    lists of every plugin are joined. Sync only (the providers' own methods are async)."""
    raise NotImplementedError
