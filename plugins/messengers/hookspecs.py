"""The messengers plugin's own hook: what another package implements to bring a messenger.

Declared through :func:`kith_add_hookspecs` when the messengers plugin registers; implemented
like any Kith hook, with a function of the same name decorated with ``kith.hookimpl``. The
reference in docs/plugins/messengers-hooks.md is generated from this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy
from kith.plugins.messengers.adapters import MessengerAdapter

if TYPE_CHECKING:
    from kith import Kith

# The marker of Kith's project name: these hooks live beside core's.
hookspec = pluggy.HookspecMarker("kith")


@hookspec
def kith_messenger_adapters(kith: Kith) -> list[MessengerAdapter]:
    """Return the messenger channels this plugin offers, configured for this installation
    (an empty list when its settings leave them off). Each is a :class:`MessengerAdapter`
    with its own ``channel`` name; its webhook is ``/api/messengers/<channel>``, and replies
    to a conversation on it are sent through its ``send``. Collecting: the lists of every
    plugin are joined (a channel name offered twice: the first wins). Sync only (the
    adapters' own methods may be async)."""
    raise NotImplementedError
